package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.instance.InstanceEvent;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Leases in one JVM: released workers are fenced, and a worker whose controller went away stops by itself. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class WorkerLeaseTest {
    private static final WireSecurity TOKEN = WireSecurity.token("lease-token-0123456789abcdef");

    private static WorkerProcess worker(RemoteInstanceProvider controller) throws Exception {
        return WorkerProcess.builder().controller(controller.address()).devices(1).deviceMemory(1 << 20).security(TOKEN)
                .executor(new CpuExecutor(new ExecutorOptions(1, false))).build().start();
    }

    @Test
    void aReleasedWorkerIsTerminatedAndFenced() throws Exception {
        BlockingQueue<InstanceEvent> events = new LinkedBlockingQueue<>();
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN)
                .leaseTimeout(Duration.ofMillis(400)).build()) {
            controller.start(events::add);
            try (WorkerProcess w = worker(controller)) {
                assertInstanceOf(InstanceEvent.Acquired.class, events.poll(10, TimeUnit.SECONDS));
                Thread.sleep(800); // two leases: heartbeats keep it alive
                assertEquals(1, controller.liveWorkers().size());
                controller.release(w.instanceId());
                InstanceEvent.Terminated t = (InstanceEvent.Terminated) events.poll(5, TimeUnit.SECONDS);
                assertEquals(w.instanceId(), t.instanceId());
                String why = w.terminated().get(5, TimeUnit.SECONDS);
                assertTrue(why.contains("declared worker " + w.instanceId()), why);
            }
        }
    }

    @Test
    void aWorkerWhoseControllerIsGoneStopsAfterFiveLeases() throws Exception {
        RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN)
                .leaseTimeout(Duration.ofMillis(200)).build();
        try (WorkerProcess w = worker(controller)) {
            controller.close();
            long t0 = System.nanoTime();
            String why = w.terminated().get(10, TimeUnit.SECONDS);
            double s = (System.nanoTime() - t0) / 1e9;
            assertTrue(why.contains("no answer from controller"), why);
            assertTrue(s >= 0.9 && s < 5, "stopped after " + s + " s (5 leases of 200 ms, at least 1 s)");
        } finally {
            controller.close();
        }
    }
}
