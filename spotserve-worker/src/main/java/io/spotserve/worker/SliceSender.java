package io.spotserve.worker;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.ImportReply;
import io.spotserve.worker.proto.OpenBulkRequest;
import io.spotserve.worker.proto.PeerGrpc;
import io.spotserve.worker.proto.PositionRef;
import io.spotserve.worker.proto.SendSliceReply;
import io.spotserve.worker.proto.SliceChunk;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The sending side of a worker-to-worker slice move: a ticket from the receiver and the bulk socket when both sides
 * have one, else (no bulk socket on either side, or the receiver's unreachable) the receiver's gRPC
 * {@code Peer/PushSlice} stream, slice by slice.
 */
final class SliceSender {
    private static final Logger LOG = LoggerFactory.getLogger(SliceSender.class);

    private SliceSender() {
    }

    /**
     * Moves the slices named by {@code headers} ({@code export} gives slice i's SliceFormat bytes) to
     * {@code target} at the worker at {@code peer}.
     *
     * @param bulk this worker's bulk socket, or null
     */
    static SendSliceReply send(Function<String, ManagedChannel> peers, BulkTransfer bulk, List<ByteString> headers,
                               BulkTransfer.Source export, String peer, PositionRef target) {
        return send(peers, bulk, headers, export, peer, target, null);
    }

    /**
     * {@link #send(Function, BulkTransfer, List, BulkTransfer.Source, String, PositionRef)} with a ticket the controller
     * already obtained from {@code peer} for these slices (null: none): used when no connection to {@code peer} is
     * kept, which saves opening a gRPC channel to a worker this one has not talked to yet just to ask for one.
     */
    static SendSliceReply send(Function<String, ManagedChannel> peers, BulkTransfer bulk, List<ByteString> headers,
                               BulkTransfer.Source export, String peer, PositionRef target, BulkTicket given) {
        BulkTicket ticket = null;
        if (bulk != null) {
            // a connection kept from the last transfer to this worker takes the slices without a ticket call
            BulkTransfer.Sent again = bulk.sendKept(peer, target, headers, export);
            if (again != null) {
                return SendSliceReply.newBuilder().setBytes(again.bytes()).setChunks(again.chunks())
                        .setSlices(again.slices()).setBulk(true).build();
            }
            ticket = given;
            if (ticket == null) {
                try {
                    ticket = PeerGrpc.newBlockingStub(peers.apply(peer)).withDeadlineAfter(10, TimeUnit.SECONDS)
                            .openBulk(OpenBulkRequest.newBuilder().setTarget(target).addAllSlices(headers).build());
                } catch (StatusRuntimeException e) {
                    if (e.getStatus().getCode() != Status.Code.UNIMPLEMENTED) {
                        throw e; // the receiver's own refusal (no such position, bad slice), passed on as it said it
                    }
                }
            }
        }
        if (ticket != null) {
            try {
                BulkTransfer.Sent sent = bulk.send(Servers.address(peer).getHostString(), ticket, headers.size(),
                        export, peer);
                return SendSliceReply.newBuilder().setBytes(sent.bytes()).setChunks(sent.chunks())
                        .setSlices(sent.slices()).setBulk(true).build();
            } catch (BulkTransfer.Unreachable e) {
                // nothing was sent (the unused ticket expires): the gRPC stream below carries the slices instead
                LOG.warn("{}; moving {} slices over gRPC instead (open the port, or run with --bulk-transfer off)",
                        e.getMessage(), headers.size());
            }
        }
        long bytes = 0;
        int chunks = 0;
        for (int i = 0; i < headers.size(); i++) {
            byte[] data = Wire.bytes(export.export(i, null));
            chunks += push(peers, peer, Wire.chunks(data, target));
            bytes += data.length;
        }
        return SendSliceReply.newBuilder().setBytes(bytes).setChunks(chunks).setSlices(headers.size()).build();
    }

    /** Streams one slice's chunks to {@code peer}'s {@code PushSlice} and waits for its import; returns the chunks. */
    private static int push(Function<String, ManagedChannel> peers, String peer, List<SliceChunk> chunks) {
        CompletableFuture<ImportReply> done = Wire.streamChunks(
                PeerGrpc.newStub(peers.apply(peer)).withDeadlineAfter(120, TimeUnit.SECONDS)::pushSlice, chunks,
                () -> new IllegalStateException("peer answered nothing"));
        try {
            done.get(130, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while streaming a slice to " + peer);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof StatusRuntimeException sre) {
                throw sre; // the receiver's own refusal, passed on as it said it
            }
            throw new IllegalStateException("streaming a slice to " + peer + " failed", e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException("streaming a slice to " + peer + " timed out");
        }
        return chunks.size();
    }
}
