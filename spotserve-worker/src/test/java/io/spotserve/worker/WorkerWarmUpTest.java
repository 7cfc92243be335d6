package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.worker.proto.PeerGrpc;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A worker warms its own call path up before it registers: its warm-up calls go through its own authenticated
 * server (and are counted there), stop at the call or time bound, are refused outside the warm-up window and from
 * callers without the cluster's credentials, and a worker with warm-up 0 makes none.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WorkerWarmUpTest {
    private static final String SECRET = "warm-token-0123456789abcdef";
    private static final WireSecurity TOKEN = WireSecurity.token(SECRET);

    private static WorkerProcess.Builder worker(RemoteInstanceProvider controller) {
        return WorkerProcess.builder().controller(controller.address()).devices(1).deviceMemory(1 << 20).security(TOKEN)
                .executor(new CpuExecutor(new ExecutorOptions(1, false)));
    }

    private static StepRequest step(float... hidden) {
        return StepRequest.newBuilder().setPipeline(1).addSequences(1).addTokens(1).addPositions(0).setStage(1)
                .setHidden(Wire.floats(hidden, hidden.length)).build();
    }

    private static <T> T withChannel(String address, WireSecurity security, Function<ManagedChannel, T> body)
            throws Exception {
        ManagedChannel ch = security != null ? new Channels(security, Wire.DEFAULT_MAX_MESSAGE_BYTES).create(address)
                : NettyChannelBuilder.forTarget(address, InsecureChannelCredentials.create()).build();
        try {
            return body.apply(ch);
        } finally {
            ch.shutdownNow();
            ch.awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    private static Status.Code codeOf(String address, WireSecurity security) throws Exception {
        return withChannel(address, security, ch -> assertThrows(StatusRuntimeException.class,
                () -> PeerGrpc.newBlockingStub(ch).withDeadlineAfter(5, TimeUnit.SECONDS).warmUp(step(1f, 2f)))
                .getStatus().getCode());
    }

    @Test
    void aWorkerWarmsItsOwnAuthenticatedServerUpBeforeItRegisters() throws Exception {
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             WorkerProcess w = worker(controller).warmUp(300, Duration.ofSeconds(30)).build().start()) {
            assertEquals(300, w.warmUpCalls(), "every warm-up call was answered by the worker's own server");
            assertEquals(List.of(w.instanceId()), controller.liveWorkers());
            // after registration the warm-up RPC answers nobody, not even an authenticated caller
            assertEquals(Status.Code.FAILED_PRECONDITION, codeOf(w.address(), TOKEN));
            assertEquals(Status.Code.UNAUTHENTICATED, codeOf(w.address(), WireSecurity.token("wrong-token-0123456789ab")));
            assertEquals(Status.Code.UNAUTHENTICATED, codeOf(w.address(), null));
            assertEquals(300, w.warmUpCalls());
        }
    }

    @Test
    void warmUpZeroMakesNoCalls() throws Exception {
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             WorkerProcess w = worker(controller).warmUp(0).build().start()) {
            assertEquals(0, w.warmUpCalls());
            assertEquals(List.of(w.instanceId()), controller.liveWorkers());
        }
    }

    @Test
    void theTimeBoundEndsTheWarmUpBeforeTheCallBound() throws Exception {
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             WorkerProcess w = worker(controller).warmUp(Integer.MAX_VALUE, Duration.ofMillis(300)).build().start()) {
            assertTrue(w.warmUpCalls() > 0 && w.warmUpCalls() < Integer.MAX_VALUE, w.warmUpCalls() + " calls");
            assertEquals(List.of(w.instanceId()), controller.liveWorkers());
        }
    }

    /** Inside the warm-up window: the server's interceptor still refuses callers without the token. */
    @Test
    void duringTheWindowOnlyAuthenticatedCallsAreAnswered() throws Exception {
        WorkerService service = new WorkerService(new CpuExecutor(new ExecutorOptions(1, false)), 1, 1 << 20, a -> {
            throw new IllegalStateException("no peers");
        }, new StagingArea(1 << 20, java.time.Duration.ofMinutes(1), System::nanoTime));
        Server server = Servers.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), TOKEN,
                Wire.DEFAULT_MAX_MESSAGE_BYTES, "test-worker", List.of(service.worker(), service.peer()));
        try {
            String address = "127.0.0.1:" + server.getPort();
            service.warming(true);
            assertEquals(Status.Code.UNAUTHENTICATED, codeOf(address, WireSecurity.token("wrong-token-0123456789ab")));
            assertEquals(Status.Code.UNAUTHENTICATED, codeOf(address, null));
            assertEquals(0, service.warmUpServed());
            StepReply r = withChannel(address, TOKEN, ch -> PeerGrpc.newBlockingStub(ch)
                    .withDeadlineAfter(5, TimeUnit.SECONDS).warmUp(step(1f, -2.5f, 3f)));
            float[] echoed = new float[3];
            Wire.floats(r.getLogits(), echoed, 0, 3);
            assertArrayEquals(new float[] {1f, -2.5f, 3f}, echoed);
            assertEquals(12, r.getActivationBytes());
            assertEquals(1, service.warmUpServed());
            // a malformed warm-up step is refused like a malformed real one
            assertEquals(Status.Code.INVALID_ARGUMENT, withChannel(address, TOKEN, ch -> assertThrows(
                    StatusRuntimeException.class, () -> PeerGrpc.newBlockingStub(ch).warmUp(step(1f).toBuilder()
                            .addTokens(2).build())).getStatus().getCode()));
            service.warming(false);
            assertEquals(Status.Code.FAILED_PRECONDITION, codeOf(address, TOKEN));
            assertEquals(1, service.warmUpServed());
        } finally {
            Servers.stop(server);
        }
    }

    @Test
    void badWarmUpSettingsAreRefused() throws Exception {
        WorkerProcess.Builder b = WorkerProcess.builder();
        assertThrows(IllegalArgumentException.class, () -> b.warmUp(-1));
        assertThrows(IllegalArgumentException.class, () -> b.warmUp(10, Duration.ZERO));
        assertThrows(IllegalArgumentException.class, () -> b.warmUp(10, Duration.ofMinutes(2)));
        Path token = Files.createTempFile("warm-up-test", ".token");
        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        try {
            Files.writeString(token, SECRET);
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            assertEquals(2, WorkerMain.run(new String[] {"--controller", "127.0.0.1:1", "--warm-up", "-5",
                "--token-file", token.toString()}));
            assertEquals(2, WorkerMain.run(new String[] {"--controller", "127.0.0.1:1", "--warm-up", "10",
                "--warm-up-time", "0", "--token-file", token.toString()}));
        } finally {
            System.setErr(err);
            Files.deleteIfExists(token);
        }
        String said = captured.toString(StandardCharsets.UTF_8);
        assertTrue(said.contains("warm-up calls must be >= 0 (0 = off), got -5"), said);
        assertTrue(said.contains("warm-up time must be in (0, 1 min], got PT0S"), said);
    }
}
