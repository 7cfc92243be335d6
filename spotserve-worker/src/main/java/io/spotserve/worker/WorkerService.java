package io.spotserve.worker;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.ModelSource;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import io.spotserve.worker.proto.Ack;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.CreateDeviceRequest;
import io.spotserve.worker.proto.CreateStagesRequest;
import io.spotserve.worker.proto.DeviceRef;
import io.spotserve.worker.proto.DeviceState;
import io.spotserve.worker.proto.GroupMember;
import io.spotserve.worker.proto.PartialsMessage;
import io.spotserve.worker.proto.ImportReply;
import io.spotserve.worker.proto.LoadSliceRequest;
import io.spotserve.worker.proto.LoadWeightsRequest;
import io.spotserve.worker.proto.OpenBulkRequest;
import io.spotserve.worker.proto.PeerGrpc;
import io.spotserve.worker.proto.PipelineRef;
import io.spotserve.worker.proto.PositionRef;
import io.spotserve.worker.proto.PositionStateReply;
import io.spotserve.worker.proto.SendSliceReply;
import io.spotserve.worker.proto.SendSliceRequest;
import io.spotserve.worker.proto.SendSlicesRequest;
import io.spotserve.worker.proto.SendStagedRequest;
import io.spotserve.worker.proto.StagedRef;
import io.spotserve.worker.proto.StagingState;
import io.spotserve.worker.proto.SequenceRequest;
import io.spotserve.worker.proto.SliceChunk;
import io.spotserve.worker.proto.SliceRequest;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import io.spotserve.worker.proto.WorkerGrpc;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * What a worker process serves: the executor SPI over its own devices (Worker service, for the controller) and
 * the data plane between workers (Peer service). Every request is checked before anything changes; a refused
 * request leaves the worker as it was.
 */
final class WorkerService {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(WorkerService.class);
    /** Trailer keys carrying a {@link DeviceMemoryException}'s numbers back to the controller. */
    static final Metadata.Key<String> MEMORY = Metadata.Key.of("spotserve-device-memory", Metadata.ASCII_STRING_MARSHALLER);

    private final Executor executor;
    private final int deviceCount;
    private final long deviceMemory;
    private final Function<String, ManagedChannel> peers;
    private final Map<DeviceId, Device> devices = new ConcurrentHashMap<>();
    private final Map<Long, Pipeline> pipelines = new ConcurrentHashMap<>();
    private final Map<Path, ModelWeights> checkpoints = new ConcurrentHashMap<>();
    private volatile String instanceId;
    private volatile boolean fenced;
    /** This worker's bulk socket, or null (slices then travel over gRPC streams only). */
    private volatile BulkTransfer bulk;
    /** This worker's step socket, or null (steps then come over gRPC only). */
    private volatile StepServer stepServer;
    /** The step streams to the next stage's workers. */
    private final StepStream.Hops hops;
    /** The tensor groups split over workers that this worker hosts members of, and their partials. */
    private final GroupExchange groups;
    /** Forward steps through the hosted stages (and warm-up calls). */
    private final StageStep steps;
    /** Migration slices exported here and waiting to be sent to their target. */
    private final StagingArea staging;

    WorkerService(Executor executor, int deviceCount, long deviceMemory, Function<String, ManagedChannel> peers,
                  StagingArea staging) {
        this.executor = executor;
        this.staging = staging;
        this.deviceCount = deviceCount;
        this.deviceMemory = deviceMemory;
        this.peers = peers;
        this.hops = new StepStream.Hops(peers);
        this.groups = new GroupExchange(peers);
        this.steps = new StageStep(this::pipeline, hops, groups, peers);
    }

    /** Serves and sends bulk transfers through {@code b} from now on. */
    void bulk(BulkTransfer b) {
        this.bulk = b;
    }

    /** Serves steps over {@code s} from now on ({@code Worker/OpenSteps} issues its tickets). */
    void stepServer(StepServer s) {
        this.stepServer = s;
    }

    /**
     * Runs one step and answers it, a refusal included (its status in the reply): what the {@code Steps} stream and
     * the step socket send back for each request.
     */
    StepReply answer(StepRequest r) {
        try {
            checkLive();
            return steps.step(r);
        } catch (RuntimeException e) {
            Status s = error(e).getStatus();
            return StepReply.newBuilder().setErrorCode(s.getCode().value())
                    .setError(s.getDescription() == null ? s.getCode().toString() : s.getDescription()).build();
        }
    }

    /** The instance id the controller gave this worker (devices must be named after it). */
    void registeredAs(String id) {
        this.instanceId = id;
    }

    /** The controller declared this worker dead: drop everything and answer nothing any more. */
    void fence() {
        fenced = true;
        hops.closeAll();
        groups.clear();
        StepServer ss = stepServer;
        if (ss != null) {
            ss.closeConnections();
        }
        for (Pipeline p : pipelines.values()) {
            synchronized (p) {
                p.close();
            }
        }
        pipelines.clear();
        staging.clear();
    }

    /** Frees the staged slices that waited longer than the staging timeout. */
    void sweepStaging() {
        int n = staging.sweep();
        if (n > 0) {
            LOG.warn("{} staged migration slices were never sent; freed after the staging timeout", n);
        }
    }

    boolean fenced() {
        return fenced;
    }

    /** Opens ({@code true}) or closes the warm-up window in which {@code WarmUp} calls are answered. */
    void warming(boolean on) {
        steps.warming(on);
    }

    /** How many {@code WarmUp} calls this service answered (all of them passed the server's security check). */
    long warmUpServed() {
        return steps.warmUpServed();
    }

    Worker worker() {
        return new Worker();
    }

    Peer peer() {
        return new Peer();
    }

    // ------------------------------------------------------------------ helpers

    private <R> void unary(StreamObserver<R> out, Supplier<R> body) {
        R reply;
        try {
            checkLive();
            reply = body.get();
        } catch (RuntimeException e) {
            out.onError(error(e));
            return;
        }
        out.onNext(reply);
        out.onCompleted();
    }

    private void checkLive() {
        if (fenced) {
            throw new StatusRuntimeException(Status.FAILED_PRECONDITION.withDescription(
                    "this worker was declared dead by its controller (fenced); it serves nothing more"));
        }
    }

    static StatusRuntimeException error(RuntimeException e) {
        StatusRuntimeException s = Wire.status(e);
        if (e instanceof DeviceMemoryException d) {
            Metadata trailers = new Metadata();
            trailers.put(MEMORY, d.device().instance() + "," + d.device().gpu() + "," + d.requested() + "," + d.used()
                    + "," + d.capacity());
            return s.getStatus().asRuntimeException(trailers);
        }
        return s;
    }

    private Pipeline pipeline(long id) {
        Pipeline p = pipelines.get(id);
        if (p == null) {
            throw new IllegalArgumentException("pipeline " + id + " does not exist on this worker");
        }
        return p;
    }

    private Device device(DeviceRef ref) {
        DeviceId id = Wire.id(ref);
        Device d = devices.get(id);
        if (d == null) {
            throw new IllegalArgumentException("device " + id + " does not exist on this worker");
        }
        return d;
    }

    private static DeviceState state(Device d) {
        return DeviceState.newBuilder().setDevice(Wire.ref(d.id())).setCapacityBytes(d.capacityBytes())
                .setUsedBytes(d.usedBytes()).build();
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
     */
    private SendSliceReply moveSlices(PositionRef from, List<ByteString> headers, String peer, PositionRef target) {
        Pipeline p = pipeline(from.getPipeline());
        if (headers.isEmpty() || headers.size() > BulkTransfer.MAX_SLICES_PER_TICKET) {
            throw new IllegalArgumentException("a transfer moves 1 to " + BulkTransfer.MAX_SLICES_PER_TICKET
                    + " slices, got " + headers.size());
        }
        List<ContextSlice> slices = new ArrayList<>();
        for (ByteString h : headers) {
            slices.add(Wire.slice(h, p.config()));
        }
        // the sender passes back the buffer of slice i - 2 once it is sent: slices of one size reuse two buffers
        BulkTransfer.Source export = (i, reuse) -> {
            checkLive();
            synchronized (p) {
                return p.exportSlice(from.getStage(), from.getShard(), slices.get(i), reuse);
            }
        };
        return SliceSender.send(peers, bulk, headers, export, peer, target);
    }

    /** Issues a bulk ticket for slices into a position this worker hosts. */
    private BulkTicket issueBulk(OpenBulkRequest r) {
        if (bulk == null) {
            throw new StatusRuntimeException(Status.UNIMPLEMENTED.withDescription("this worker has no bulk socket"));
        }
        PositionRef t = r.getTarget();
        Pipeline p = pipeline(t.getPipeline());
        if (!p.hostedStages().contains(t.getStage()) || t.getShard() < 0 || t.getShard() >= p.layout().shards()) {
            throw new IllegalArgumentException("position (stage " + t.getStage() + ", shard " + t.getShard()
                    + ") is not hosted by pipeline " + t.getPipeline() + " here (stages " + p.hostedStages() + ")");
        }
        List<ContextSlice> slices = new ArrayList<>();
        for (ByteString h : r.getSlicesList()) {
            slices.add(Wire.slice(h, p.config()));
        }
        return bulk.issue(t, slices, p.config());
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

    /**
     * The checkpoint at {@code path} on this machine, loaded once (memory-mapped).
     *
     * @throws StatusRuntimeException NOT_FOUND when it is not a readable file here
     */
    private ModelWeights checkpoint(String path) {
        Path file = Path.of(path).toAbsolutePath().normalize();
        if (!Files.exists(file) || !Files.isReadable(file)) {
            throw new StatusRuntimeException(Status.NOT_FOUND.withDescription("checkpoint " + file
                    + " is not a readable file on this worker"));
        }
        return checkpoints.computeIfAbsent(file, f -> {
            try {
                return ModelSource.open(f); // llama2.c, GGUF or a Hugging Face folder, memory-mapped
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot read checkpoint " + f + ": " + e.getMessage(), e);
            }
        });
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
        return SliceSender.send(peers, bulk, List.of(e.header()), (i, reuse) -> ByteBuffer.wrap(e.data()),
                r.getPeerAddress(), r.getTarget());
    }

    // ------------------------------------------------------------------ services

    final class Worker extends WorkerGrpc.WorkerImplBase {
        @Override
        public void createDevice(CreateDeviceRequest r, StreamObserver<DeviceState> out) {
            unary(out, () -> {
                DeviceId id = Wire.id(r.getDevice());
                if (instanceId == null || !instanceId.equals(id.instance())) {
                    throw new IllegalArgumentException("device " + id + " is not on this worker (instance "
                            + instanceId + ")");
                }
                if (id.gpu() >= deviceCount) {
                    throw new IllegalArgumentException("device index " + id.gpu() + " outside [0, " + deviceCount
                            + ") of this worker");
                }
                if (r.getCapacityBytes() < 0 || r.getCapacityBytes() > deviceMemory) {
                    throw new IllegalArgumentException("device capacity " + r.getCapacityBytes() + " outside [0, "
                            + deviceMemory + "] bytes this worker offers per device");
                }
                synchronized (devices) {
                    Device d = executor.createDevice(id, r.getCapacityBytes());
                    devices.put(id, d);
                    return state(d);
                }
            });
        }

        @Override
        public void destroyDevice(DeviceRef r, StreamObserver<Ack> out) {
            unary(out, () -> {
                synchronized (devices) {
                    Device d = device(r);
                    executor.destroyDevice(d);
                    devices.remove(d.id());
                }
                return Ack.getDefaultInstance();
            });
        }

        @Override
        public void deviceUsage(DeviceRef r, StreamObserver<DeviceState> out) {
            unary(out, () -> state(device(r)));
        }

        @Override
        public void createStages(CreateStagesRequest r, StreamObserver<Ack> out) {
            unary(out, () -> {
                LlamaConfig c = Wire.config(r.getModel());
                ShardLayout layout = ShardLayout.balanced(c, r.getStageLayersList(), r.getShards());
                IndexRange stages = new IndexRange(r.getFirstStage(), r.getEndStage());
                List<Device> ds = new ArrayList<>();
                for (DeviceRef ref : r.getDevicesList()) {
                    ds.add(device(ref));
                }
                if (r.getMaxBatch() < 1 || r.getMaxBatch() > 4096) {
                    throw new IllegalArgumentException("max_batch " + r.getMaxBatch() + " outside [1, 4096]");
                }
                IndexRange shards = r.getFirstShard() == 0 && r.getEndShard() == 0 ? new IndexRange(0, r.getShards())
                        : new IndexRange(r.getFirstShard(), r.getEndShard());
                boolean split = shards.length() != r.getShards();
                GroupExchange.Group group = null;
                if (split) { // checked before anything is built
                    group = new GroupExchange.Group(r.getPipeline(), r.getGroupList(), r.getShards(),
                            r.getMaxBatch() * c.dim());
                    GroupMember mine = r.getGroup(group.index());
                    if (mine.getFirstShard() != shards.from() || mine.getEndShard() != shards.to()) {
                        throw new IllegalArgumentException("this member's group entry " + GroupExchange.shards(mine)
                                + " differs from its hosted shards " + shards);
                    }
                } else if (r.getGroupCount() != 0) {
                    throw new IllegalArgumentException("a group of all M shards in one worker has no group members");
                }
                synchronized (pipelines) {
                    if (pipelines.containsKey(r.getPipeline())) {
                        throw new IllegalArgumentException("pipeline " + r.getPipeline() + " already exists here");
                    }
                    pipelines.put(r.getPipeline(), split
                            ? executor.createShardGroup(layout, stages, shards, ds, r.getMaxBatch())
                            : executor.createStages(layout, stages, ds, r.getMaxBatch()));
                    if (group != null) {
                        groups.register(group);
                    }
                }
                return Ack.getDefaultInstance();
            });
        }

        @Override
        public void closePipeline(PipelineRef r, StreamObserver<Ack> out) {
            unary(out, () -> {
                Pipeline p = pipelines.remove(r.getPipeline());
                hops.close(r.getPipeline());
                groups.remove(r.getPipeline());
                if (p != null) {
                    synchronized (p) {
                        p.close();
                    }
                }
                return Ack.getDefaultInstance();
            });
        }

        @Override
        public void loadWeights(LoadWeightsRequest r, StreamObserver<Ack> out) {
            unary(out, () -> {
                Pipeline p = pipeline(r.getPipeline());
                ModelWeights ck = checkpoint(r.getCheckpointPath());
                synchronized (p) {
                    p.loadWeights(ck);
                }
                return Ack.getDefaultInstance();
            });
        }

        @Override
        public void loadSlice(LoadSliceRequest r, StreamObserver<ImportReply> out) {
            unary(out, () -> {
                Pipeline p = pipeline(r.getPosition().getPipeline());
                ModelWeights ck = checkpoint(r.getCheckpointPath());
                ContextSlice slice = Wire.slice(r.getSlice(), p.config());
                if (!ck.config().equals(p.config())) {
                    throw new IllegalArgumentException("checkpoint " + r.getCheckpointPath() + " has shape "
                            + ck.config() + ", the pipeline " + p.config());
                }
                byte[] bytes = io.spotserve.exec.SliceFormat.encodeWeights(ck, slice);
                ContextSlice done;
                synchronized (p) {
                    done = p.importSlice(r.getPosition().getStage(), r.getPosition().getShard(), bytes);
                }
                return ImportReply.newBuilder().setSliceHeader(Wire.sliceHeader(done)).setBytes(bytes.length).build();
            });
        }

        @Override
        public void positionState(PositionRef r, StreamObserver<PositionStateReply> out) {
            unary(out, () -> {
                Pipeline p = pipeline(r.getPipeline());
                synchronized (p) {
                    return PositionStateReply.newBuilder().setHasAllWeights(p.hasAllWeights(r.getStage(), r.getShard()))
                            .setDevice(state(p.device(r.getStage(), r.getShard()))).build();
                }
            });
        }

        @Override
        public StreamObserver<SliceChunk> importSlice(StreamObserver<ImportReply> out) {
            return importStream(out);
        }

        @Override
        public void exportSlice(SliceRequest r, StreamObserver<SliceChunk> out) {
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

        @Override
        public void sendSlice(SendSliceRequest r, StreamObserver<SendSliceReply> out) {
            unary(out, () -> moveSlices(r.getSource().getPosition(), List.of(r.getSource().getSlice()),
                    r.getPeerAddress(), r.getTarget()));
        }

        @Override
        public void sendSlices(SendSlicesRequest r, StreamObserver<SendSliceReply> out) {
            unary(out, () -> moveSlices(r.getPosition(), r.getSlicesList(), r.getPeerAddress(), r.getTarget()));
        }

        @Override
        public void releaseSlice(SliceRequest r, StreamObserver<Ack> out) {
            unary(out, () -> {
                Pipeline p = pipeline(r.getPosition().getPipeline());
                synchronized (p) {
                    p.releaseSlice(r.getPosition().getStage(), r.getPosition().getShard(), slice(p, r));
                }
                return Ack.getDefaultInstance();
            });
        }

        @Override
        public void stageSlice(SliceRequest r, StreamObserver<StagedRef> out) {
            unary(out, () -> stage(r));
        }

        @Override
        public void sendStaged(SendStagedRequest r, StreamObserver<SendSliceReply> out) {
            unary(out, () -> sendStagedSlice(r));
        }

        @Override
        public void fetchStaged(StagedRef r, StreamObserver<SliceChunk> out) {
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

        @Override
        public void releaseStaged(StagedRef r, StreamObserver<Ack> out) {
            unary(out, () -> {
                staging.release(r.getHandle());
                return Ack.getDefaultInstance();
            });
        }

        @Override
        public void stagingUsage(Ack r, StreamObserver<StagingState> out) {
            unary(out, () -> StagingState.newBuilder().setBytes(staging.usedBytes()).setSlices(staging.size())
                    .setCapacityBytes(staging.capacity()).build());
        }

        @Override
        public void openSequence(SequenceRequest r, StreamObserver<Ack> out) {
            unary(out, () -> {
                Pipeline p = pipeline(r.getPipeline());
                synchronized (p) {
                    p.openSequence(r.getSequence(), r.getCapacity());
                }
                return Ack.getDefaultInstance();
            });
        }

        @Override
        public void closeSequence(SequenceRequest r, StreamObserver<Ack> out) {
            unary(out, () -> {
                Pipeline p = pipeline(r.getPipeline());
                synchronized (p) {
                    p.closeSequence(r.getSequence());
                }
                return Ack.getDefaultInstance();
            });
        }

        @Override
        public void forward(StepRequest r, StreamObserver<StepReply> out) {
            unary(out, () -> steps.step(r));
        }

        @Override
        public void openSteps(Ack r, StreamObserver<BulkTicket> out) {
            unary(out, () -> {
                StepServer ss = stepServer;
                if (ss == null) {
                    throw new StatusRuntimeException(Status.UNIMPLEMENTED.withDescription(
                            "this worker has no step socket"));
                }
                return ss.issue();
            });
        }

        @Override
        public StreamObserver<StepRequest> steps(StreamObserver<StepReply> out) {
            return new StreamObserver<>() {
                @Override
                public void onNext(StepRequest r) {
                    out.onNext(answer(r));
                }

                @Override
                public void onError(Throwable t) {
                    // the caller gave up on the stream; nothing is pending here
                }

                @Override
                public void onCompleted() {
                    out.onCompleted();
                }
            };
        }
    }

    final class Peer extends PeerGrpc.PeerImplBase {
        @Override
        public void stageForward(StepRequest r, StreamObserver<StepReply> out) {
            unary(out, () -> steps.step(r));
        }

        @Override
        public StreamObserver<SliceChunk> pushSlice(StreamObserver<ImportReply> out) {
            return importStream(out);
        }

        @Override
        public void openBulk(OpenBulkRequest r, StreamObserver<BulkTicket> out) {
            unary(out, () -> issueBulk(r));
        }

        @Override
        public void warmUp(StepRequest r, StreamObserver<StepReply> out) {
            unary(out, () -> steps.warmStep(r));
        }

        @Override
        public StreamObserver<PartialsMessage> partialsStream(StreamObserver<Ack> out) {
            return new StreamObserver<>() {
                private boolean failed;

                @Override
                public void onNext(PartialsMessage m) {
                    if (failed) {
                        return;
                    }
                    try {
                        checkLive();
                        groups.deposit(m);
                    } catch (RuntimeException e) {
                        failed = true;
                        out.onError(error(e));
                    }
                }

                @Override
                public void onError(Throwable t) {
                    failed = true; // the sender is gone: nothing pending here
                }

                @Override
                public void onCompleted() {
                    if (!failed) {
                        out.onNext(Ack.getDefaultInstance());
                        out.onCompleted();
                    }
                }
            };
        }

        @Override
        public void partials(PartialsMessage r, StreamObserver<Ack> out) {
            unary(out, () -> {
                groups.deposit(r);
                return Ack.getDefaultInstance();
            });
        }
    }
}
