package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.exec.Device;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ReferenceLlama;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import io.spotserve.testing.SharedData;
import io.spotserve.worker.proto.PipelineRef;
import io.spotserve.worker.proto.StepReply;
import io.spotserve.worker.proto.StepRequest;
import io.spotserve.worker.proto.WorkerGrpc;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The last stage's logits go straight to the controller ({@code StepRequest.logits_direct} and the collect on the
 * last worker's step socket, {@link LogitsOutbox}): a chain over in-JVM workers gives the one-process pipeline's
 * logits bit for bit with every step's logits collected from the last worker (and none when relaying is turned on);
 * a step that fails on the way fails at once, not at the collect's timeout; a collect is served on the step socket
 * only; the outbox matches deliveries and collects in either order, bounded.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class DirectLogitsTest {
    /**
     * Blocking tasks each get a thread of their own: from JDK 25 on, {@code CompletableFuture}'s default executor is the
     * common pool even when its parallelism is 1 (2 CPUs), so a second task waited for the first to finish.
     */
    private static final Executor OWN_THREAD = r -> {
        Thread t = new Thread(r, "test-task");
        t.setDaemon(true);
        t.start();
    };

    private static final WireSecurity TOKEN = WireSecurity.token("direct-token-0123456789abcdef");

    private static WorkerProcess worker(RemoteInstanceProvider controller, int devices) throws Exception {
        return WorkerProcess.builder().controller(controller.address()).devices(devices).deviceMemory(64L << 20)
                .security(TOKEN).warmUp(0).executor(new CpuExecutor(new ExecutorOptions(1, true))).build().start();
    }


    /** Greedy steps from token 1 on {@code p} (sequence 1), the logits of each. */
    private static List<float[]> greedy(Pipeline p, int steps) {
        List<float[]> out = new ArrayList<>();
        int token = 1;
        for (int pos = 0; pos < steps; pos++) {
            float[] l = p.decode(new long[] {1}, new int[] {token}, new int[] {pos})[0];
            out.add(l);
            token = ReferenceLlama.argmax(l);
        }
        return out;
    }

    @Test
    void chainsOverWorkersGetTheLastStagesLogitsStraightFromItBitForBit() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        int steps = 12;
        CpuExecutor cpu = new CpuExecutor(new ExecutorOptions(1, true));
        Pipeline local = cpu.createPipeline(ShardLayout.split(ckpt.config(), 3, 1), List.of(
                cpu.createDevice(new DeviceId("l", 0), 64L << 20), cpu.createDevice(new DeviceId("l", 1), 64L << 20),
                cpu.createDevice(new DeviceId("l", 2), 64L << 20)), 1);
        local.loadWeights(ckpt);
        local.openSequence(1, 32);
        List<float[]> expected = greedy(local, steps);
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             Channels channels = new Channels(TOKEN, Wire.DEFAULT_MAX_MESSAGE_BYTES)) {
            WorkerProcess a = worker(controller, 2);
            WorkerProcess b = worker(controller, 1);
            try {
                RemoteExecutor ex = controller.executor();
                // stage 0 on a, 1 on b, 2 on a again: the first and the last worker are the same process
                List<Device> ds = List.of(ex.createDevice(new DeviceId(a.instanceId(), 0), 16L << 20),
                        ex.createDevice(new DeviceId(b.instanceId(), 0), 16L << 20),
                        ex.createDevice(new DeviceId(a.instanceId(), 1), 16L << 20));
                Pipeline p = ex.createPipeline(ShardLayout.split(ckpt.config(), 3, 1), ds, 1);
                p.loadWeights(ckpt);
                p.openSequence(1, 32);
                List<float[]> got = greedy(p, steps);
                for (int i = 0; i < steps; i++) {
                    assertArrayEquals(expected.get(i), got.get(i), "step " + i);
                }
                assertEquals(steps, a.logitsCollected(), "every step's logits came from the last worker");
                assertEquals(0, b.logitsCollected());
                // relayed through the chain instead: the same logits, nothing collected
                RemotePipeline.directLogits = false;
                try {
                    p.openSequence(2, 32);
                    int token = 1;
                    for (int pos = 0; pos < steps; pos++) {
                        float[] l = p.decode(new long[] {2}, new int[] {token}, new int[] {pos})[0];
                        assertArrayEquals(expected.get(pos), l, "relayed step " + pos);
                        token = ReferenceLlama.argmax(l);
                    }
                } finally {
                    RemotePipeline.directLogits = true;
                }
                assertEquals(steps, a.logitsCollected());

                // the last stage's pipeline closes under the controller: the step fails at once, not at the
                // collect's 60 s timeout, and the next pipeline steps normally again
                long lastId = ((RemotePipeline) p).segmentOf(2).id();
                WorkerGrpc.newBlockingStub(channels.to(a.address()))
                        .closePipeline(PipelineRef.newBuilder().setPipeline(lastId).build());
                long t0 = System.nanoTime();
                assertThrows(RuntimeException.class, () -> p.decode(new long[] {1}, new int[] {1},
                        new int[] {steps}));
                assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(5), "a failed step fails fast");
                Pipeline q = ex.createPipeline(ShardLayout.split(ckpt.config(), 3, 1), ds, 1);
                q.loadWeights(ckpt);
                q.openSequence(1, 32);
                List<float[]> again = greedy(q, 3);
                for (int i = 0; i < 3; i++) {
                    assertArrayEquals(expected.get(i), again.get(i), "new pipeline, step " + i);
                }
                assertEquals(steps + 3, a.logitsCollected());
            } finally {
                a.close();
                b.close();
            }
        }
    }

    @Test
    void aCollectIsServedOnTheStepSocketOnly() throws Exception {
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).build();
             Channels channels = new Channels(TOKEN, Wire.DEFAULT_MAX_MESSAGE_BYTES)) {
            WorkerProcess w = worker(controller, 1);
            try {
                StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> WorkerGrpc
                        .newBlockingStub(channels.to(w.address())).forward(StepRequest.newBuilder().setPipeline(1)
                                .setStepId(1).setCollect(true).build()));
                assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
                assertTrue(e.getStatus().getDescription().contains("step socket only"),
                        e.getStatus().getDescription());
            } finally {
                w.close();
            }
        }
    }

    @Test
    void theOutboxMatchesDeliveriesAndCollectsInEitherOrderBounded() throws Exception {
        LogitsOutbox box = new LogitsOutbox();
        StepReply r1 = StepReply.newBuilder().setActivationBytes(1).build();
        StepReply r2 = StepReply.newBuilder().setActivationBytes(2).build();
        // delivered first, collected later
        box.deliver(7, 1, r1);
        assertSame(r1, box.collect(7, 1, 1000));
        assertEquals(0, box.size());
        // collected first: the collect waits for the delivery
        CompletableFuture<StepReply> waiting = CompletableFuture.supplyAsync(() -> box.collect(7, 2, 10_000), OWN_THREAD);
        while (box.size() == 0) {
            Thread.onSpinWait();
        }
        box.deliver(7, 2, r2);
        assertSame(r2, waiting.get(5, TimeUnit.SECONDS));
        assertEquals(2, box.collected());
        // a failed step fails its collect with the step's failure
        box.fail(7, 3, new IllegalStateException("stage failed"));
        assertEquals("stage failed", assertThrows(IllegalStateException.class, () -> box.collect(7, 3, 1000))
                .getMessage());
        // nothing comes: DEADLINE_EXCEEDED after the timeout, and the entry is gone
        StatusRuntimeException late = assertThrows(StatusRuntimeException.class, () -> box.collect(7, 4, 50));
        assertEquals(Status.Code.DEADLINE_EXCEEDED, late.getStatus().getCode());
        assertEquals(0, box.size());
        // a closed pipeline fails the collects waiting on it at once
        CompletableFuture<StepReply> closed = CompletableFuture.supplyAsync(() -> box.collect(8, 1, 30_000), OWN_THREAD);
        while (box.size() == 0) {
            Thread.onSpinWait();
        }
        box.close(8);
        StatusRuntimeException cancelled = (StatusRuntimeException) assertThrows(
                java.util.concurrent.ExecutionException.class, () -> closed.get(5, TimeUnit.SECONDS)).getCause();
        assertEquals(Status.Code.CANCELLED, cancelled.getStatus().getCode());
        // logits nobody collects are bounded: the oldest go first
        for (int i = 0; i < LogitsOutbox.MAX_KEPT + 10; i++) {
            box.deliver(9, 100 + i, r1);
        }
        assertEquals(LogitsOutbox.MAX_KEPT, box.size());
        assertEquals(Status.Code.DEADLINE_EXCEEDED, assertThrows(StatusRuntimeException.class,
                () -> box.collect(9, 100, 10)).getStatus().getCode());
        assertSame(r1, box.collect(9, 100 + LogitsOutbox.MAX_KEPT + 9, 10));
        assertEquals(3, box.collected());
        // and by bytes: 8 MiB logits each, at most MAX_BYTES of them
        box.close(9);
        assertEquals(0, box.bytes());
        StepReply big = StepReply.newBuilder().setLogits(com.google.protobuf.ByteString.copyFrom(new byte[8 << 20]))
                .build();
        for (int i = 0; i < 12; i++) {
            box.deliver(10, i, big);
        }
        assertEquals(LogitsOutbox.MAX_BYTES, box.bytes());
        assertEquals(LogitsOutbox.MAX_BYTES / (8 << 20), box.size());
        assertSame(big, box.collect(10, 11, 10));
        assertEquals(LogitsOutbox.MAX_BYTES - (8 << 20), box.bytes());
        assertThrows(IllegalStateException.class, () -> box.deliver(10, 10, big), "delivered twice");
    }
}
