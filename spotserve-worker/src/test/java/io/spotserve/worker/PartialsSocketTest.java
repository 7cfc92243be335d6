package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ReferenceLlama;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.StoriesGreedyContract;
import io.spotserve.exec.TensorReducer;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import io.spotserve.testing.SharedData;
import io.spotserve.worker.proto.Ack;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.WorkerGrpc;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The partials connections of a worker's step socket ({@link PartialsSocket}): only a ticket from the authenticated
 * {@code Worker/OpenSteps} opens one, once; a frame is checked before its payload is read, and every bad one (not a
 * peer member's shards, n beyond the group's bound, a payload length that does not match, an unknown pipeline or
 * point, a payload beyond the message bound, a second copy) is answered with its status and ends the connection with
 * nothing kept; a frame cut short keeps nothing either. The group's steps go on giving the greedy ids afterwards.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PartialsSocketTest {
    private static final WireSecurity TOKEN = WireSecurity.token("partials-token-0123456789abcdef");
    private static final String LOOPBACK = InetAddress.getLoopbackAddress().getHostAddress();
    private static final int MAX_BATCH = 2;
    private static final int DIM = 64;

    private static WorkerProcess worker(RemoteInstanceProvider controller) throws Exception {
        return WorkerProcess.builder().controller(controller.address()).devices(1).deviceMemory(64L << 20)
                .security(TOKEN).warmUp(0).executor(new CpuExecutor(new ExecutorOptions(1, true))).build().start();
    }


    private static byte[] frame(long pipeline, long step, int stage, int layer, int kind, int first, int end, int n,
                                int bytes, int payload) {
        ByteBuffer b = ByteBuffer.allocate(PartialsSocket.HEADER_BYTES + payload).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(pipeline).putLong(step).putInt(stage).putInt(layer).putInt(kind).putInt(first).putInt(end).putInt(n)
                .putInt(bytes);
        for (int i = 0; i < payload / Float.BYTES; i++) {
            b.putFloat(0.5f);
        }
        return b.array();
    }

    /** A raw partials connection with a fresh ticket (handshake answered OK). */
    private static Socket raw(Channels friends, WorkerProcess w) throws IOException {
        BulkTicket t = ticket(friends, w);
        Socket s = new Socket(LOOPBACK, t.getPort());
        s.setSoTimeout(10_000);
        DataOutputStream o = new DataOutputStream(s.getOutputStream());
        o.writeInt(PartialsSocket.MAGIC);
        t.getTicket().writeTo(o);
        o.flush();
        assertEquals(StepServer.OK, new DataInputStream(s.getInputStream()).readByte());
        return s;
    }

    private static BulkTicket ticket(Channels friends, WorkerProcess w) {
        return WorkerGrpc.newBlockingStub(friends.to(w.address())).withDeadlineAfter(10, TimeUnit.SECONDS)
                .openSteps(Ack.getDefaultInstance());
    }

    private static StatusRuntimeException failureWithin(PartialsSocket link, long ms) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
        while (link.failure() == null && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        return link.failure();
    }

    @Test
    void onlyATicketOpensAPartialsConnectionAndEveryBadFrameIsRefusedWithNothingKept() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             Channels friends = new Channels(TOKEN, Wire.DEFAULT_MAX_MESSAGE_BYTES);
             WorkerProcess w0 = worker(controller);
             WorkerProcess w1 = worker(controller)) {
            RemoteExecutor ex = controller.executor();
            Pipeline split = ex.createPipeline(ShardLayout.of(ckpt.config(), 1, 2), List.of(
                    ex.createDevice(new DeviceId(w0.instanceId(), 0), 16L << 20),
                    ex.createDevice(new DeviceId(w1.instanceId(), 0), 16L << 20)), MAX_BATCH);
            split.loadWeights(ckpt);
            split.openSequence(7, 16);
            assertEquals(StoriesGreedyContract.FIRST_40[0], ReferenceLlama.argmax(split.decode(new long[] {7},
                    new int[] {1}, new int[] {0})[0]));
            assertTrue(w0.partialsSends()[0] > 0 && w0.partialsSends()[1] == 0, "the members exchanged on sockets");
            long member0 = ((RemotePipeline) split).segmentOf(0, 0).id();

            // a forged ticket, and a used one, open nothing
            BulkTicket real = ticket(friends, w0);
            BulkTicket forged = real.toBuilder().setTicket(ByteString.copyFrom(new byte[StepServer.TICKET_BYTES]))
                    .build();
            IOException e = assertThrows(IOException.class, () -> PartialsSocket.connect(LOOPBACK, forged, () -> {
            }));
            assertTrue(e.getMessage().contains("unknown or already used ticket"), e.getMessage());
            AtomicInteger failures = new AtomicInteger();
            PartialsSocket link = PartialsSocket.connect(LOOPBACK, real, failures::incrementAndGet);
            e = assertThrows(IOException.class, () -> PartialsSocket.connect(LOOPBACK, real, () -> {
            }));
            assertTrue(e.getMessage().contains("unknown or already used ticket"), e.getMessage());

            // a good frame (member 1's shard, for a step that never runs) is kept: its second copy is refused
            TensorReducer.Point embedding = new TensorReducer.Point(0, -1, TensorReducer.Kind.EMBEDDING);
            float[][] halves = {new float[DIM]};
            java.util.Arrays.fill(halves[0], 0.5f);
            link.send(member0, 99, embedding, new IndexRange(1, 2), halves, DIM);
            assertNull(failureWithin(link, 300), "a good frame is not refused");
            link.send(member0, 99, embedding, new IndexRange(1, 2), halves, DIM);
            StatusRuntimeException dup = failureWithin(link, 5_000);
            assertNotNull(dup, "the second copy was refused");
            assertEquals(Status.Code.INVALID_ARGUMENT, dup.getStatus().getCode(), dup.getStatus().getDescription());
            assertTrue(dup.getStatus().getDescription().contains("already arrived"), dup.getStatus().getDescription());
            assertEquals(1, failures.get());
            assertThrows(StatusRuntimeException.class, () -> link.send(member0, 100, embedding, new IndexRange(1, 2),
                    halves, DIM), "a refused link stays broken");

            // bad frames, each on a fresh connection: refused with their status, the connection closed
            int n = DIM;
            int ok = n * Float.BYTES;
            List<byte[]> bad = List.of(
                    frame(member0, 98, 0, -1, 0, 0, 1, n, ok, 0), // the receiver's own shard
                    frame(member0, 98, 0, -1, 0, 1, 2, DIM * MAX_BATCH + 1, (DIM * MAX_BATCH + 1) * 4, 0), // n too big
                    frame(member0, 98, 0, -1, 0, 1, 2, n, ok - Float.BYTES, 0), // the length does not match n
                    frame(member0 + 100, 98, 0, -1, 0, 1, 2, n, ok, 0), // an unknown pipeline
                    frame(member0, 98, 0, -1, 3, 1, 2, n, ok, 0), // an unknown kind
                    frame(member0, 98, 0, 2, 0, 1, 2, n, ok, 0), // the embedding at a layer
                    frame(member0, 98, 0, -1, 0, 1, 2, n, Integer.MAX_VALUE, 0)); // beyond the message bound
            for (byte[] f : bad) {
                try (Socket s = raw(friends, w0)) {
                    s.getOutputStream().write(f);
                    DataInputStream in = new DataInputStream(s.getInputStream());
                    assertEquals(StepServer.REFUSED, in.readByte());
                    int code = in.readInt();
                    String why = in.readUTF();
                    assertEquals(Status.Code.INVALID_ARGUMENT.value(), code, why);
                    assertEquals(-1, in.read(), "the connection ends after a refusal: " + why);
                }
            }
            // a frame cut short keeps nothing: the same frame, whole, is then taken once (its copy is the duplicate)
            byte[] whole = frame(member0, 97, 0, -1, 0, 1, 2, n, ok, ok);
            try (Socket s = raw(friends, w0)) {
                s.getOutputStream().write(whole, 0, whole.length - 8);
            }
            try (Socket s = raw(friends, w0)) {
                s.getOutputStream().write(whole);
                s.getOutputStream().write(whole);
                DataInputStream in = new DataInputStream(s.getInputStream());
                assertEquals(StepServer.REFUSED, in.readByte());
                assertEquals(Status.Code.INVALID_ARGUMENT.value(), in.readInt());
                String why = in.readUTF();
                assertTrue(why.contains("step 97") && why.contains("already arrived"), why);
            }

            // nothing of that reached a real step: the group goes on with the greedy ids, on sockets
            long[] before = w0.partialsSends();
            int token = StoriesGreedyContract.FIRST_40[0];
            for (int pos = 1; pos < 4; pos++) {
                token = ReferenceLlama.argmax(split.decode(new long[] {7}, new int[] {token}, new int[] {pos})[0]);
                assertEquals(StoriesGreedyContract.FIRST_40[pos], token);
            }
            assertEquals(3 * (1 + 2 * ckpt.config().layers()), w0.partialsSends()[0] - before[0]);
            split.close();
        }
    }
}
