package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import io.spotserve.testing.SharedData;
import io.spotserve.worker.proto.Ack;
import io.spotserve.worker.proto.BulkTicket;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import io.spotserve.worker.proto.WorkerGrpc;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The step socket ({@link StepServer}, {@link StepSocket}): on a real worker its steps give the stream's logits and a
 * refused step keeps it open; only a ticket issued over the authenticated gRPC call opens it, once; a frame out of
 * bounds or not a step request ends the connection and runs nothing; a reply that comes after the step timed out or
 * was cancelled is never read as the answer to a later step.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class StepSocketTest {
    private static final WireSecurity TOKEN = WireSecurity.token("socket-token-0123456789abcdef");
    private static final String LOOPBACK = InetAddress.getLoopbackAddress().getHostAddress();

    @Test
    void stepsOnTheSocketMatchTheStreamAndARefusalKeepsItOpen() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             Channels channels = new Channels(TOKEN, Wire.DEFAULT_MAX_MESSAGE_BYTES)) {
            WorkerProcess w = WorkerProcess.builder().controller(controller.address()).devices(1).warmUp(0,
                            java.time.Duration.ofSeconds(1)).deviceMemory(64L << 20).security(TOKEN)
                    .executor(new CpuExecutor(new ExecutorOptions(1, false))).build().start();
            WorkerProcess off = WorkerProcess.builder().controller(controller.address()).devices(1).warmUp(0,
                            java.time.Duration.ofSeconds(1)).deviceMemory(64L << 20).security(TOKEN)
                    .bulkTransfer(false).executor(new CpuExecutor(new ExecutorOptions(1, false))).build().start();
            try {
                RemoteExecutor ex = controller.executor();
                Pipeline p = ex.createPipeline(ShardLayout.of(ckpt.config(), 1, 1),
                        List.of(ex.createDevice(new DeviceId(w.instanceId(), 0), 64L << 20)), 1);
                p.loadWeights(ckpt);
                p.openSequence(1, 16);
                long id = ((RemotePipeline) p).segmentOf(0).id();
                StepLink link = StepSocket.open(channels.to(w.address()), w.address());
                assertInstanceOf(StepSocket.class, link);
                StepStream stream = new StepStream(channels.to(w.address()));
                StepRequest step = StepRequest.newBuilder().setPipeline(id).addSequences(1).addTokens(1)
                        .addPositions(0).addLogitsFor(0).build();
                float[] viaSocket = logits(link.tryStep(step, 10), ckpt.config().vocabSize());
                float[] viaStream = logits(stream.tryStep(step, 10), ckpt.config().vocabSize());
                assertArrayEquals(viaStream, viaSocket);
                // the pipeline's own steps take the socket too and give the same logits
                assertArrayEquals(viaStream, p.decode(new long[] {1}, new int[] {1}, new int[] {0})[0]);

                StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> link.tryStep(
                        step.toBuilder().setPipeline(id + 1000).build(), 10));
                assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
                assertTrue(e.getStatus().getDescription().contains("does not exist"), e.getStatus().getDescription());
                assertFalse(link.broken());
                assertArrayEquals(viaStream, logits(link.tryStep(step, 10), ckpt.config().vocabSize()));

                // a worker without raw sockets: the link is the gRPC stream
                assertInstanceOf(StepStream.class, StepSocket.open(channels.to(off.address()), off.address()));

                // the worker goes away: the link fails at once and stays broken
                w.close();
                long t0 = System.nanoTime();
                StatusRuntimeException gone = assertThrows(StatusRuntimeException.class, () -> link.tryStep(step, 30));
                assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(5), "a dead worker fails the step fast");
                assertEquals(Status.Code.UNAVAILABLE, gone.getStatus().getCode(), gone.getStatus().toString());
                assertTrue(link.broken());
                assertThrows(StatusRuntimeException.class, () -> link.tryStep(step, 10));
                stream.close();
            } finally {
                off.close();
                w.close(); // again (a no-op after the close above) when an assertion failed before it
            }
        }
    }

    @Test
    void onlyATicketFromTheAuthenticatedCallOpensTheSocketAndOnlyOnce() throws Exception {
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             Channels channels = new Channels(TOKEN, Wire.DEFAULT_MAX_MESSAGE_BYTES);
             Channels strangers = new Channels(WireSecurity.token("wrong-token-0123456789abcdef"),
                     Wire.DEFAULT_MAX_MESSAGE_BYTES)) {
            WorkerProcess w = WorkerProcess.builder().controller(controller.address()).devices(1).warmUp(0,
                            java.time.Duration.ofSeconds(1)).deviceMemory(64L << 20).security(TOKEN)
                    .executor(new CpuExecutor(new ExecutorOptions(1, false))).build().start();
            try {
                StatusRuntimeException denied = assertThrows(StatusRuntimeException.class, () -> WorkerGrpc
                        .newBlockingStub(strangers.to(w.address())).openSteps(Ack.getDefaultInstance()));
                assertEquals(Status.Code.UNAUTHENTICATED, denied.getStatus().getCode());
                BulkTicket t = WorkerGrpc.newBlockingStub(channels.to(w.address())).openSteps(Ack.getDefaultInstance());
                // a made-up ticket, the wrong magic: refused with the reason
                BulkTicket forged = t.toBuilder().setTicket(ByteString.copyFrom(new byte[StepServer.TICKET_BYTES]))
                        .build();
                assertTrue(assertThrows(IOException.class, () -> StepSocket.connect(LOOPBACK, forged, 1 << 20))
                        .getMessage().contains("unknown or already used ticket"));
                assertTrue(refusal(t.getPort(), 0x12345678, new byte[StepServer.TICKET_BYTES])
                        .contains("bad magic"));
                // the real ticket opens it once
                StepSocket.connect(LOOPBACK, t, 1 << 20).close();
                assertTrue(assertThrows(IOException.class, () -> StepSocket.connect(LOOPBACK, t, 1 << 20))
                        .getMessage().contains("unknown or already used ticket"));
            } finally {
                w.close();
            }
        }
    }

    @Test
    void aFencedWorkerDropsItsStepConnectionsAndIssuesNoMoreTickets() throws Exception {
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN)
                .leaseTimeout(java.time.Duration.ofMillis(400)).build();
             Channels channels = new Channels(TOKEN, Wire.DEFAULT_MAX_MESSAGE_BYTES)) {
            controller.start(e -> { });
            try (WorkerProcess w = WorkerProcess.builder().controller(controller.address()).devices(1).warmUp(0,
                            java.time.Duration.ofSeconds(1)).deviceMemory(1 << 20).security(TOKEN)
                    .executor(new CpuExecutor(new ExecutorOptions(1, false))).build().start()) {
                StepLink link = StepSocket.open(channels.to(w.address()), w.address());
                assertInstanceOf(StepSocket.class, link);
                StepRequest step = StepRequest.newBuilder().setPipeline(77).addSequences(1).addTokens(1)
                        .addPositions(0).build();
                // answered (no such pipeline here): the link works and stays open
                assertEquals(Status.Code.INVALID_ARGUMENT, assertThrows(StatusRuntimeException.class,
                        () -> link.tryStep(step, 10)).getStatus().getCode());
                assertFalse(link.broken());
                controller.release(w.instanceId()); // declared dead: fenced at its next heartbeat
                w.terminated().get(10, TimeUnit.SECONDS);
                StatusRuntimeException dropped = assertThrows(StatusRuntimeException.class,
                        () -> link.tryStep(step, 10));
                assertEquals(Status.Code.UNAVAILABLE, dropped.getStatus().getCode(), dropped.getStatus().toString());
                assertTrue(link.broken());
                StatusRuntimeException noTicket = assertThrows(StatusRuntimeException.class, () -> WorkerGrpc
                        .newBlockingStub(channels.to(w.address())).openSteps(Ack.getDefaultInstance()));
                assertEquals(Status.Code.FAILED_PRECONDITION, noTicket.getStatus().getCode());
            }
        }
    }

    @Test
    void framesOutOfBoundsOrNotAStepEndTheConnectionAndRunNothing() throws Exception {
        AtomicInteger ran = new AtomicInteger();
        try (StepServer server = new StepServer(InetAddress.getLoopbackAddress(), 1 << 10, r -> {
            ran.incrementAndGet();
            return StepReply.newBuilder().setActivationBytes(r.getTokens(0)).build();
        })) {
            // too long a frame: closed before its bytes are read
            assertEquals(-1, afterFrame(server, new byte[] {0, 0, 8, 0}, new byte[0]));
            // a negative length
            assertEquals(-1, afterFrame(server, new byte[] {(byte) 0x80, 0, 0, 0}, new byte[0]));
            // bytes that are not a StepRequest (a truncated varint)
            assertEquals(-1, afterFrame(server, new byte[] {0, 0, 0, 2}, new byte[] {0x10, (byte) 0xff}));
            assertEquals(0, ran.get());
            assertEquals(3, server.refused());
            // a well-formed step on a fresh connection runs and answers
            try (StepSocket s = StepSocket.connect(LOOPBACK, server.issue(), 1 << 20)) {
                StepReply r = s.tryStep(StepRequest.newBuilder().addSequences(1).addTokens(42).addPositions(0)
                        .build(), 10);
                assertEquals(42, r.getActivationBytes());
            }
            assertEquals(1, ran.get());
            // an expired ticket is refused
            BulkTicket late = server.issue();
            server.expireAll();
            assertTrue(assertThrows(IOException.class, () -> StepSocket.connect(LOOPBACK, late, 1 << 20))
                    .getMessage().contains("expired ticket"));
            // a reply longer than the caller's bound breaks the link instead of being buffered
            try (StepServer big = new StepServer(InetAddress.getLoopbackAddress(), 1 << 10, r -> StepReply
                    .newBuilder().setLogits(ByteString.copyFrom(new byte[4096])).build());
                 StepSocket s = StepSocket.connect(LOOPBACK, big.issue(), 1024)) {
                StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> s.tryStep(
                        StepRequest.getDefaultInstance(), 10));
                assertEquals(Status.Code.INTERNAL, e.getStatus().getCode());
                assertTrue(s.broken());
            }
        }
    }

    @Test
    void aReplyAfterTheTimeoutOrACancellationIsNeverTakenForALaterStep() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        Function<StepRequest, StepReply> slowFirst = r -> {
            if (r.getTokens(0) == 1) {
                try {
                    release.await(20, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return StepReply.newBuilder().setActivationBytes(r.getTokens(0)).build();
        };
        StepRequest first = StepRequest.newBuilder().addSequences(1).addTokens(1).addPositions(0).build();
        StepRequest second = first.toBuilder().setTokens(0, 2).build();
        try (StepServer server = new StepServer(InetAddress.getLoopbackAddress(), 1 << 20, slowFirst)) {
            // timed out: the link is broken, the late reply to step 1 is never read as step 2's
            try (StepSocket s = StepSocket.connect(LOOPBACK, server.issue(), 1 << 20)) {
                StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> s.tryStep(first, 1));
                assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
                release.countDown();
                assertTrue(s.broken());
                assertThrows(StatusRuntimeException.class, () -> s.tryStep(second, 10));
            }
            // cancelled (a worker involved was declared dead): the wait ends at once, and so does the link
            CountDownLatch hold = new CountDownLatch(1);
            try (StepServer hung = new StepServer(InetAddress.getLoopbackAddress(), 1 << 20, r -> {
                try {
                    hold.await(20, TimeUnit.SECONDS);
                } catch (InterruptedException ex) {
                    Thread.currentThread().interrupt();
                }
                return StepReply.newBuilder().setActivationBytes(r.getTokens(0)).build();
            }); StepSocket s = StepSocket.connect(LOOPBACK, hung.issue(), 1 << 20)) {
                Context.CancellableContext ctx = Context.ROOT.withCancellation();
                Thread killer = new Thread(() -> {
                    try {
                        Thread.sleep(300);
                    } catch (InterruptedException ignored) {
                        // cancel now
                    }
                    ctx.cancel(new IllegalStateException("worker declared dead"));
                });
                killer.start();
                long t0 = System.nanoTime();
                StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                        () -> ctx.call(() -> s.tryStep(first, 30)));
                assertEquals(Status.Code.CANCELLED, e.getStatus().getCode());
                assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(5));
                hold.countDown();
                assertTrue(s.broken());
                assertThrows(StatusRuntimeException.class, () -> s.tryStep(second, 10));
                killer.join();
            }
        }
    }

    private static float[] logits(StepReply r, int vocab) {
        float[] out = new float[vocab];
        Wire.floats(r.getLogits(), out, 0, vocab);
        return out;
    }

    /** Connects with {@code magic} and {@code ticket}; returns the refusal's reason. */
    private static String refusal(int port, int magic, byte[] ticket) throws IOException {
        try (Socket s = new Socket(LOOPBACK, port)) {
            s.setSoTimeout(10_000);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            out.writeInt(magic);
            out.write(ticket);
            out.flush();
            DataInputStream in = new DataInputStream(s.getInputStream());
            assertEquals(StepServer.REFUSED, in.readByte());
            return in.readUTF();
        }
    }

    /** Opens a connection with a good ticket, sends {@code header} and {@code body}; returns what is read next. */
    private static int afterFrame(StepServer server, byte[] header, byte[] body) throws IOException {
        BulkTicket t = server.issue();
        try (Socket s = new Socket(LOOPBACK, t.getPort())) {
            s.setSoTimeout(10_000);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            out.writeInt(StepServer.MAGIC);
            out.write(t.getTicket().toByteArray());
            out.write(header);
            out.write(body);
            out.flush();
            DataInputStream in = new DataInputStream(s.getInputStream());
            assertEquals(StepServer.OK, in.readByte());
            try {
                return in.read();
            } catch (java.net.SocketException e) {
                return -1; // reset: closed as well
            }
        }
    }
}
