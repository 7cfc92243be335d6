package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
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

    /**
     * A registration retried after its reply was lost (same registration id, same address) gets the same instance and
     * epoch and no second Acquired; another registration id is another worker; a registration id of another address
     * is not taken over; an oversized id is refused.
     */
    @Test
    void aRetriedRegistrationIsTheSameInstanceNotAGhost() throws Exception {
        BlockingQueue<InstanceEvent> events = new LinkedBlockingQueue<>();
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN)
                .leaseTimeout(Duration.ofSeconds(10)).build()) {
            controller.start(events::add);
            Channels channels = new Channels(TOKEN, 1 << 20);
            try {
                var stub = io.spotserve.worker.proto.ControllerGrpc.newBlockingStub(channels.to(controller.address()));
                java.util.function.BiFunction<String, String, io.spotserve.worker.proto.RegisterReply> register =
                        (rid, address) -> stub.withDeadlineAfter(5, TimeUnit.SECONDS).register(
                                io.spotserve.worker.proto.RegisterRequest.newBuilder().setRegistrationId(rid)
                                        .setAddress(address).setDevices(1).setDeviceMemoryBytes(1 << 20).build());
                var first = register.apply("reg-a", "127.0.0.1:40001");
                var retry = register.apply("reg-a", "127.0.0.1:40001");
                assertEquals(first.getInstanceId(), retry.getInstanceId());
                assertEquals(first.getEpoch(), retry.getEpoch());
                var other = register.apply("reg-b", "127.0.0.1:40002");
                var stolen = register.apply("reg-a", "127.0.0.1:40003");
                assertNotEquals(first.getInstanceId(), other.getInstanceId());
                assertNotEquals(first.getInstanceId(), stolen.getInstanceId(), "an id of another address is not reused");
                java.util.Set<String> acquired = new java.util.HashSet<>();
                InstanceEvent e;
                while ((e = events.poll(1, TimeUnit.SECONDS)) != null) {
                    if (e instanceof InstanceEvent.Acquired a) {
                        assertTrue(acquired.add(a.instance().id()), "acquired twice: " + a.instance().id());
                    }
                }
                assertEquals(java.util.Set.of(first.getInstanceId(), other.getInstanceId(), stolen.getInstanceId()),
                        acquired);
                io.grpc.StatusRuntimeException refused = org.junit.jupiter.api.Assertions.assertThrows(
                        io.grpc.StatusRuntimeException.class, () -> register.apply("x".repeat(65), "127.0.0.1:40004"));
                assertTrue(String.valueOf(refused.getStatus().getDescription()).contains("at most 64"),
                        refused.getStatus().toString());
            } finally {
                channels.close();
            }
        }
    }
}
