package io.spotserve.worker;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.SliceImport;
import io.spotserve.worker.proto.Ack;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.ImportReply;
import io.spotserve.worker.proto.OpenBulkRequest;
import io.spotserve.worker.proto.PositionRef;
import io.spotserve.worker.proto.SendSliceReply;
import io.spotserve.worker.proto.SendSliceRequest;
import io.spotserve.worker.proto.SendSlicesRequest;
import io.spotserve.worker.proto.SendStagedRequest;
import io.spotserve.worker.proto.SliceChunk;
import io.spotserve.worker.proto.SliceRequest;
import io.spotserve.worker.proto.StagedRef;
import io.spotserve.worker.proto.StagingState;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The migration RPCs of a worker: context slices (weights and KV) exported from, imported into and released from the
 * hosted positions; moved worker to worker over the bulk socket or gRPC streams ({@code Worker/SendSlice(s)},
 * {@code Peer/PushSlice}, {@code Peer/OpenBulk}); and staged here until the controller sends them on.
 */
final class SliceMoves {
    private final WorkerState state;
    private final Function<String, ManagedChannel> peers;
    /** Migration slices exported here and waiting to be sent to their target. */
    private final StagingArea staging;
    /** This worker's bulk socket, or null (slices then travel over gRPC streams only). */
    private volatile BulkTransfer bulk;

    SliceMoves(WorkerState state, Function<String, ManagedChannel> peers, StagingArea staging) {
        this.state = state;
        this.peers = peers;
        this.staging = staging;
    }

    /** Serves and sends bulk transfers through {@code b} from now on. */
    void bulk(BulkTransfer b) {
        this.bulk = b;
    }

    // the worker's checks, under the names the handlers below use

    private <R> void unary(StreamObserver<R> out, Supplier<R> body) {
        state.unary(out, body);
    }

    private void checkLive() {
        state.checkLive();
    }

    private static StatusRuntimeException error(RuntimeException e) {
        return WorkerService.error(e);
    }

    private Pipeline pipeline(long id) {
        return state.pipeline(id);
    }

    private ContextSlice slice(Pipeline p, SliceRequest r) {
        return Wire.slice(r.getSlice(), p.config());
    }

    /** Imports a reassembled slice into its target position; shared by the controller's and the peers' streams. */
    private ImportReply importAssembled(Wire.Assembly a) {
        checkLive();
        byte[] bytes = a.bytes();
        PositionRef t = a.target();
        Pipeline p = pipeline(t.getPipeline());
        ContextSlice s;
        synchronized (p) {
            s = p.importSlice(t.getStage(), t.getShard(), bytes);
        }
        return ImportReply.newBuilder().setSliceHeader(Wire.sliceHeader(s)).setBytes(bytes.length).build();
    }

    private StreamObserver<SliceChunk> importStream(StreamObserver<ImportReply> out) {
        return new StreamObserver<>() {
            private final Wire.Assembly assembly = new Wire.Assembly();
            private boolean failed;

            @Override
            public void onNext(SliceChunk chunk) {
                if (failed) {
                    return;
                }
                try {
                    checkLive();
                    assembly.add(chunk);
                } catch (RuntimeException e) {
                    failed = true;
                    out.onError(error(e));
                }
            }

            @Override
            public void onError(Throwable t) {
                failed = true; // the sender gave up: nothing was imported
            }

            @Override
            public void onCompleted() {
                if (failed) {
                    return;
                }
                ImportReply r;
                try {
                    r = importAssembled(assembly);
                } catch (RuntimeException e) {
                    out.onError(error(e));
                    return;
                }
                out.onNext(r);
                out.onCompleted();
            }
        };
    }

    /**
     * Moves slices of one hosted position to a position of the worker at {@code peer}: over the bulk socket when both
     * sides have one (the next slice exported while the previous one travels), else over {@code Peer/PushSlice}.
     * {@code ticket}: one the controller obtained from the peer for these slices, or null.
     */
    private SendSliceReply moveSlices(PositionRef from, List<ByteString> headers, String peer, PositionRef target,
                                      BulkTicket ticket) {
        Pipeline p = pipeline(from.getPipeline());
        if (headers.isEmpty() || headers.size() > BulkTransfer.MAX_SLICES_PER_TICKET) {
            throw new IllegalArgumentException("a transfer moves 1 to " + BulkTransfer.MAX_SLICES_PER_TICKET
                    + " slices, got " + headers.size());
        }
        List<ContextSlice> slices = new ArrayList<>();
        for (ByteString h : headers) {
            slices.add(Wire.slice(h, p.config()));
        }
        int stage = from.getStage();
        int shard = from.getShard();
        BulkTransfer.Source export = new BulkTransfer.Source() {
            @Override
            public ByteBuffer export(int i, ByteBuffer reuse) {
                checkLive();
                synchronized (p) {
                    return p.exportSlice(stage, shard, slices.get(i), reuse);
                }
            }

            @Override
            public long length(int i) {
                checkLive();
                synchronized (p) {
                    return p.exportLength(stage, shard, slices.get(i));
                }
            }

            @Override
            public void part(int i, long offset, ByteBuffer dst) {
                checkLive();
                synchronized (p) { // chunk by chunk: steps on this pipeline may run between two chunks
                    p.exportPart(stage, shard, slices.get(i), offset, dst);
                }
            }
        };
        return SliceSender.send(peers, bulk, headers, export, peer, target, ticket);
    }

    /** Issues a bulk ticket for slices into a position this worker hosts. */
    private BulkTicket issueBulk(OpenBulkRequest r) {
        if (bulk == null) {
            throw new StatusRuntimeException(Status.UNIMPLEMENTED.withDescription("this worker has no bulk socket"));
        }
        BulkTransfer.Admitted a = admit(r.getTarget(), r.getSlicesList());
        return bulk.issue(r.getTarget(), a.slices(), a.config());
    }

    /** Checks a bulk transfer's target (a position hosted here) and slice headers: what a ticket is issued for. */
    private BulkTransfer.Admitted admit(PositionRef t, List<ByteString> headers) {
        checkLive();
        Pipeline p = pipeline(t.getPipeline());
        if (!p.hostedStages().contains(t.getStage()) || t.getShard() < 0 || t.getShard() >= p.layout().shards()) {
            throw new IllegalArgumentException("position (stage " + t.getStage() + ", shard " + t.getShard()
                    + ") is not hosted by pipeline " + t.getPipeline() + " here (stages " + p.hostedStages() + ")");
        }
        List<ContextSlice> slices = new ArrayList<>();
        for (ByteString h : headers) {
            slices.add(Wire.slice(h, p.config()));
        }
        return new BulkTransfer.Admitted(slices, p.config());
    }

    /** The bulk socket's imports: whole slices, or piece by piece where the target pipeline allows it. */
    BulkTransfer.Importer importer() {
        return new BulkTransfer.Importer() {
            @Override
            public ContextSlice importSlice(PositionRef target, ByteBuffer bytes) {
                return importBulk(target, bytes);
            }

            @Override
            public SliceImport begin(PositionRef target, ContextSlice slice, long length) {
                checkLive();
                Pipeline p = pipeline(target.getPipeline());
                SliceImport in;
                synchronized (p) {
                    in = p.beginImport(target.getStage(), target.getShard(), slice, length);
                }
                return in == null ? null : new LockedImport(p, in);
            }

            @Override
            public BulkTransfer.Admitted admit(PositionRef target, List<ByteString> headers) {
                return SliceMoves.this.admit(target, headers);
            }
        };
    }

    /** A piece-by-piece import whose every call holds its pipeline's lock (steps may run between two pieces). */
    private final class LockedImport implements SliceImport {
        private final Pipeline p;
        private final SliceImport in;

        LockedImport(Pipeline p, SliceImport in) {
            this.p = p;
            this.in = in;
        }

        @Override
        public ContextSlice slice() {
            return in.slice();
        }

        @Override
        public long length() {
            return in.length();
        }

        @Override
        public long received() {
            synchronized (p) {
                return in.received();
            }
        }

        @Override
        public void put(ByteBuffer bytes) {
            checkLive();
            synchronized (p) {
                in.put(bytes);
            }
        }

        @Override
        public ContextSlice finish() {
            checkLive();
            synchronized (p) {
                return in.finish();
            }
        }

        @Override
        public void close() {
            synchronized (p) {
                in.close();
            }
        }
    }

    /** The bulk socket's import of one complete, checked slice, straight from the buffer it was read into. */
    ContextSlice importBulk(PositionRef t, ByteBuffer bytes) {
        checkLive();
        Pipeline p = pipeline(t.getPipeline());
        synchronized (p) {
            return p.importSlice(t.getStage(), t.getShard(), bytes);
        }
    }

    /** A staged slice's import into a position of this worker. */
    ContextSlice importBulk(PositionRef t, byte[] bytes) {
        checkLive();
        Pipeline p = pipeline(t.getPipeline());
        synchronized (p) {
            return p.importSlice(t.getStage(), t.getShard(), bytes);
        }
    }

    /** Exports a slice of a hosted position into the staging area. */
    private StagedRef stage(SliceRequest r) {
        Pipeline p = pipeline(r.getPosition().getPipeline());
        byte[] bytes;
        synchronized (p) {
            bytes = Wire.bytes(p.exportSlice(r.getPosition().getStage(), r.getPosition().getShard(), slice(p, r),
                    (ByteBuffer) null)); // one pass from storage into the staged array
        }
        return StagedRef.newBuilder().setHandle(staging.put(r.getSlice(), bytes)).setBytes(bytes.length).build();
    }

    /** Sends a staged slice to its target: imported here when local, else to the peer worker over the bulk socket. */
    private SendSliceReply sendStagedSlice(SendStagedRequest r) {
        StagingArea.Entry e = staging.take(r.getHandle());
        if (r.getLocal()) {
            importBulk(r.getTarget(), e.data());
            return SendSliceReply.newBuilder().setBytes(e.data().length).setSlices(1).build();
        }
        byte[] data = e.data();
        BulkTransfer.Source staged = new BulkTransfer.Source() {
            @Override
            public ByteBuffer export(int i, ByteBuffer reuse) {
                return ByteBuffer.wrap(data);
            }

            @Override
            public long length(int i) {
                return data.length;
            }

            @Override
            public void part(int i, long offset, ByteBuffer dst) { // a chunk at a time into the sender's direct buffer
                dst.put(data, Math.toIntExact(offset), dst.remaining());
            }
        };
        return SliceSender.send(peers, bulk, List.of(e.header()), staged, r.getPeerAddress(), r.getTarget());
    }

    // ------------------------------------------------------------------ handlers

    StreamObserver<SliceChunk> importSlice(StreamObserver<ImportReply> out) {
        return importStream(out);
    }

    void exportSlice(SliceRequest r, StreamObserver<SliceChunk> out) {
        byte[] bytes;
        try {
            checkLive();
            Pipeline p = pipeline(r.getPosition().getPipeline());
            synchronized (p) {
                bytes = p.exportSlice(r.getPosition().getStage(), r.getPosition().getShard(), slice(p, r));
            }
        } catch (RuntimeException e) {
            out.onError(error(e));
            return;
        }
        for (SliceChunk c : Wire.chunks(bytes, r.getPosition())) {
            out.onNext(c);
        }
        out.onCompleted();
    }

    void sendSlice(SendSliceRequest r, StreamObserver<SendSliceReply> out) {
        unary(out, () -> moveSlices(r.getSource().getPosition(), List.of(r.getSource().getSlice()),
                r.getPeerAddress(), r.getTarget(), null));
    }

    void sendSlices(SendSlicesRequest r, StreamObserver<SendSliceReply> out) {
        unary(out, () -> moveSlices(r.getPosition(), r.getSlicesList(), r.getPeerAddress(), r.getTarget(),
                r.hasTicket() ? r.getTicket() : null));
    }

    void releaseSlice(SliceRequest r, StreamObserver<Ack> out) {
        unary(out, () -> {
            Pipeline p = pipeline(r.getPosition().getPipeline());
            synchronized (p) {
                p.releaseSlice(r.getPosition().getStage(), r.getPosition().getShard(), slice(p, r));
            }
            return Ack.getDefaultInstance();
        });
    }

    void stageSlice(SliceRequest r, StreamObserver<StagedRef> out) {
        unary(out, () -> stage(r));
    }

    void sendStaged(SendStagedRequest r, StreamObserver<SendSliceReply> out) {
        unary(out, () -> sendStagedSlice(r));
    }

    void fetchStaged(StagedRef r, StreamObserver<SliceChunk> out) {
        StagingArea.Entry e;
        try {
            checkLive();
            e = staging.get(r.getHandle());
        } catch (RuntimeException ex) {
            out.onError(error(ex));
            return;
        }
        for (SliceChunk c : Wire.chunks(e.data(), PositionRef.getDefaultInstance())) {
            out.onNext(c);
        }
        out.onCompleted();
    }

    void releaseStaged(StagedRef r, StreamObserver<Ack> out) {
        unary(out, () -> {
            staging.release(r.getHandle());
            return Ack.getDefaultInstance();
        });
    }

    void stagingUsage(Ack r, StreamObserver<StagingState> out) {
        unary(out, () -> StagingState.newBuilder().setBytes(staging.usedBytes()).setSlices(staging.size())
                .setCapacityBytes(staging.capacity()).build());
    }

    StreamObserver<SliceChunk> pushSlice(StreamObserver<ImportReply> out) {
        return importStream(out);
    }

    void openBulk(OpenBulkRequest r, StreamObserver<BulkTicket> out) {
        unary(out, () -> issueBulk(r));
    }
}
