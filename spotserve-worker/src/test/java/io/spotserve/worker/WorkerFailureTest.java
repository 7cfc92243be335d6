package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ReferenceLlama;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.StoriesGreedyContract;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Real process failures against a controller with the default 2 s lease: a hung worker (SIGSTOP) is declared dead
 * within the lease, the step waiting on it fails at once with {@link DeviceLostException}, and when it wakes up it
 * is fenced (its epoch is dead) and exits; a SIGTERM with {@code --notices signal} is a preemption notice with the
 * configured grace; a SIGKILLed worker fails the next step at once and is Terminated as soon as its connection
 * drops (before the lease would expire); a worker
 * with the wrong token is refused and never becomes an instance.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class WorkerFailureTest {
    /**
     * Blocking tasks each get a thread of their own: from JDK 25 on, {@code CompletableFuture}'s default executor is the
     * common pool even when its parallelism is 1 (2 CPUs), so a second task waited for the first to finish.
     */
    private static final Executor OWN_THREAD = r -> {
        Thread t = new Thread(r, "test-task");
        t.setDaemon(true);
        t.start();
    };

    private static final String TOKEN = "failure-token-0123456789abcdef";
    private final BlockingQueue<InstanceEvent> events = new LinkedBlockingQueue<>();
    private WorkerJvms jvms;
    private RemoteInstanceProvider controller;

    @AfterEach
    void cleanUp() {
        if (controller != null) {
            controller.close();
        }
        if (jvms != null) {
            jvms.close();
        }
    }

    private <E extends InstanceEvent> E next(Class<E> type, long seconds) throws InterruptedException {
        InstanceEvent e = events.poll(seconds, TimeUnit.SECONDS);
        assertInstanceOf(type, e, "expected " + type.getSimpleName() + ", got " + e);
        return type.cast(e);
    }

    private static int step(Pipeline p, long seq, int token, int pos) {
        return ReferenceLlama.argmax(p.decode(new long[] {seq}, new int[] {token}, new int[] {pos})[0]);
    }

    private static void signal(Process p, String sig) throws Exception {
        Process k = new ProcessBuilder("kill", "-" + sig, Long.toString(p.pid())).start();
        assertTrue(k.waitFor(5, TimeUnit.SECONDS) && k.exitValue() == 0, "kill -" + sig);
    }

    @Test
    void hungKilledAndNoticedWorkersAreDetectedFencedAndReported() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        jvms = new WorkerJvms("failure");
        controller = RemoteInstanceProvider.builder().security(WireSecurity.token(TOKEN)).build();
        controller.start(events::add);
        String token = jvms.tokenFile("token", TOKEN).toString();
        Map<String, Process> byId = new ConcurrentHashMap<>();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            Process p = jvms.start("worker" + i, "--controller", controller.address(), "--devices", "1",
                    "--device-memory", "16m", "--token-file", token, "--notices", "signal", "--notice-grace", "1.5",
                    "--label", "w" + i);
            String id = next(InstanceEvent.Acquired.class, 60).instanceId();
            ids.add(id);
            byId.put(id, p);
        }
        // a worker with the wrong token: refused, exits with 2, never an instance
        Process intruder = jvms.start("intruder", "--controller", controller.address(), "--devices", "1",
                "--device-memory", "16m", "--token-file", jvms.tokenFile("wrong", "not-the-token-0123456789").toString());
        assertTrue(intruder.waitFor(30, TimeUnit.SECONDS), "the refused worker exits");
        assertEquals(2, intruder.exitValue());
        assertTrue(jvms.log("intruder").contains("UNAUTHENTICATED"), jvms.log("intruder"));

        String a = ids.get(0);
        String b = ids.get(1);
        String c = ids.get(2);
        RemoteExecutor ex = controller.executor();
        ShardLayout layout = ShardLayout.balanced(ckpt.config(), List.of(3, 2), 1);
        List<Device> devices = List.of(ex.createDevice(new DeviceId(a, 0), 8L << 20),
                ex.createDevice(new DeviceId(b, 0), 8L << 20));
        Pipeline p = ex.createPipeline(layout, devices, 1);
        p.loadWeights(ckpt);
        p.openSequence(1, 32);
        int token0 = 1;
        for (int pos = 0; pos < 10; pos++) {
            token0 = step(p, 1, token0, pos);
            assertEquals(StoriesGreedyContract.FIRST_40[pos], token0);
        }

        // 1. b hangs (SIGSTOP) while a step is in flight through it
        signal(byId.get(b), "STOP");
        long stopped = System.nanoTime();
        int last = token0;
        CompletableFuture<Integer> inFlight = CompletableFuture.supplyAsync(() -> step(p, 1, last, 10), OWN_THREAD);
        InstanceEvent.Terminated dead = next(InstanceEvent.Terminated.class, 10);
        double detectS = (System.nanoTime() - stopped) / 1e9;
        assertEquals(b, dead.instanceId());
        assertTrue(detectS < 3.0, "hung worker declared dead " + detectS + " s after it stopped (lease 2 s)");
        ExecutionException failed = assertThrows(ExecutionException.class, () -> inFlight.get(1, TimeUnit.SECONDS),
                "the step waiting on the dead worker fails as soon as it is declared dead");
        assertInstanceOf(DeviceLostException.class, failed.getCause());
        assertTrue(((DeviceLostException) failed.getCause()).devices().contains(new DeviceId(b, 0)));
        assertNull(controller.live(b));
        // it wakes up: its epoch is fenced, it stops serving and exits with 3
        signal(byId.get(b), "CONT");
        assertTrue(byId.get(b).waitFor(10, TimeUnit.SECONDS), "the fenced worker exits");
        assertEquals(3, byId.get(b).exitValue());
        assertTrue(jvms.log("worker1").contains("fenced"), jvms.log("worker1"));
        assertThrows(DeviceLostException.class, () -> step(p, 1, last, 10), "nothing more is sent to a dead epoch");
        p.close();

        // 2. c gets SIGTERM: a notice with the configured grace, then it leaves and its lease runs out
        byId.get(c).destroy();
        InstanceEvent.PreemptionNotice notice = next(InstanceEvent.PreemptionNotice.class, 10);
        assertEquals(c, notice.instanceId());
        assertEquals(Duration.ofMillis(1500), notice.grace());
        assertEquals(c, next(InstanceEvent.Terminated.class, 10).instanceId());

        // 3. a is SIGKILLed: the next call fails at once, Terminated within the lease
        byId.get(a).destroyForcibly();
        assertTrue(byId.get(a).waitFor(5, TimeUnit.SECONDS));
        long killed = System.nanoTime();
        DeviceLostException lost = assertThrows(DeviceLostException.class, () -> devices.get(0).usedBytes());
        double failS = (System.nanoTime() - killed) / 1e9;
        assertTrue(failS < 1.0, "a call to a killed worker failed after " + failS + " s");
        assertTrue(lost.devices().contains(new DeviceId(a, 0)));
        InstanceEvent.Terminated gone = next(InstanceEvent.Terminated.class, 5);
        double terminatedS = (System.nanoTime() - killed) / 1e9;
        assertEquals(a, gone.instanceId());
        assertTrue(terminatedS < 1.0, "killed worker reported Terminated after " + terminatedS + " s: its dropped "
                + "connection, not the 2 s lease");
        assertFalse(controller.liveWorkers().contains(a));
        assertTrue(controller.liveWorkers().isEmpty());
        System.out.printf("hung worker declared dead after %.2f s; killed worker: call failed after %.3f s, "
                + "Terminated after %.2f s%n", detectS, failS, terminatedS);
    }
}
