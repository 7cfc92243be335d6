package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Device arenas: weights and KV caches are accounted exactly, overflow throws and changes nothing, close frees. */
public abstract class DeviceArenaContract {
    /** The executor under test (CPU, CUDA, ...). */
    protected abstract Executor executor(ExecutorOptions options);

    private static LlamaCheckpoint ckpt;

    @BeforeAll
    static void load() throws IOException {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
    }

    @Test
    void weightsAndKvAreAccountedAndFreed() {
        LlamaConfig c = ckpt.config();
        ShardLayout layout = ShardLayout.balanced(c, List.of(3, 2), 2);
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            List<Device> devs = TestPipelines.devices(ex, layout, "acct", 1 << 20);
            Pipeline p = ex.createPipeline(layout, devs, 4);
            assertEquals(0, devs.get(0).usedBytes());
            p.loadWeights(ckpt);
            for (int s = 0; s < 2; s++) {
                for (int m = 0; m < 2; m++) {
                    assertEquals(layout.weightBytes(s, m), p.device(s, m).usedBytes(), "stage " + s + " shard " + m);
                }
            }
            p.openSequence(9, 100);
            assertEquals(layout.weightBytes(1, 1) + 100 * layout.kvBytesPerPosition(1, 1), p.device(1, 1).usedBytes());
            assertEquals(2L * 2 * 100 * (2 * 8) * 4, layout.kvBytesPerPosition(1, 1) * 100); // 2 layers, K+V, 2 kv heads
            p.closeSequence(9);
            assertEquals(layout.weightBytes(1, 1), p.device(1, 1).usedBytes());
            p.close();
            for (Device d : devs) {
                assertEquals(0, d.usedBytes(), d.toString());
            }
        }
    }

    @Test
    void unshardedSharedClassifierIsStoredOnce() {
        LlamaConfig c = ckpt.config();
        ShardLayout layout = ShardLayout.of(c, 1, 1);
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            Pipeline p = TestPipelines.loaded(ex, ckpt, layout, "one", 1);
            assertEquals(c.parameterCount() * 4, p.device(0, 0).usedBytes());
        }
    }

    @Test
    void overflowThrowsAndLeavesEveryArenaUnchanged() {
        LlamaConfig c = ckpt.config();
        ShardLayout layout = ShardLayout.of(c, 1, 2);
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            long weights = layout.weightBytes(0, 0);
            Device small = ex.createDevice(new DeviceId("small", 0), weights - 1);
            Device big = ex.createDevice(new DeviceId("big", 0), 1 << 20);
            Pipeline p = ex.createPipeline(layout, List.of(big, small), 2);
            DeviceMemoryException e = assertThrows(DeviceMemoryException.class, () -> p.loadWeights(ckpt));
            assertEquals(new DeviceId("small", 0), e.device());
            assertEquals(weights, e.requested());
            assertEquals(0, e.used());
            assertEquals(weights - 1, e.capacity());
            assertTrue(e.getMessage().contains("small/0") && e.getMessage().contains(weights + " bytes"), e.getMessage());
            assertEquals(0, small.usedBytes());
            assertEquals(0, big.usedBytes(), "load is all-or-nothing across devices");
            assertFalse(p.isReady());

            // a KV reservation that fits on one device but not the other rolls back on both
            Device a = ex.createDevice(new DeviceId("a", 0), weights + 10 * layout.kvBytesPerPosition(0, 0));
            Device b = ex.createDevice(new DeviceId("b", 0), weights + 1000 * layout.kvBytesPerPosition(0, 1));
            Pipeline q = ex.createPipeline(layout, List.of(b, a), 2);
            q.loadWeights(ckpt);
            long usedA = a.usedBytes();
            long usedB = b.usedBytes();
            DeviceMemoryException kv = assertThrows(DeviceMemoryException.class, () -> q.openSequence(1, 11));
            assertEquals(new DeviceId("a", 0), kv.device());
            assertEquals(usedA, a.usedBytes());
            assertEquals(usedB, b.usedBytes());
            assertTrue(q.sequences().isEmpty());
            q.openSequence(1, 10);
            assertEquals(a.capacityBytes(), a.usedBytes());

            // importing a slice whose storage does not fit fails without marking anything present
            Device tiny = ex.createDevice(new DeviceId("tiny", 0), 100);
            Pipeline r = ex.createPipeline(ShardLayout.of(c, 1, 1), List.of(tiny), 1);
            byte[] layer0 = q.exportSlice(0, 0, new ContextSlice.LayerWeights(0, layout.heads(0), layout.hidden(0)));
            assertThrows(DeviceMemoryException.class, () -> r.importSlice(0, 0, layer0));
            assertEquals(0, tiny.usedBytes());
            assertFalse(r.hasAllWeights(0, 0));
        }
    }

    @Test
    void devicesAndPipelinesRejectBadArguments() {
        LlamaConfig c = ckpt.config();
        try (Executor ex = executor(new ExecutorOptions(1, false));
             Executor other = executor(new ExecutorOptions(1, false))) {
            Device d = ex.createDevice(new DeviceId("x", 0), 10);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ex.createDevice(new DeviceId("x", 0), 10));
            assertTrue(e.getMessage().contains("device x/0 already exists"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> ex.createDevice(new DeviceId("y", 0), -1));
            assertTrue(e.getMessage().contains("capacity must be >= 0 bytes, was -1"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> ex.createPipeline(ShardLayout.of(c, 1, 2), List.of(d), 1));
            assertTrue(e.getMessage().contains("has 2 positions but 1 devices"), e.getMessage());
            Device foreign = other.createDevice(new DeviceId("z", 0), 10);
            e = assertThrows(IllegalArgumentException.class,
                    () -> ex.createPipeline(ShardLayout.of(c, 1, 1), List.of(foreign), 1));
            assertTrue(e.getMessage().contains("was not created by this executor"), e.getMessage());
            Device roomy = ex.createDevice(new DeviceId("roomy", 0), 1 << 20);
            Pipeline p = ex.createPipeline(ShardLayout.of(c, 1, 1), List.of(roomy), 1);
            IllegalStateException notReady = assertThrows(IllegalStateException.class, () -> {
                p.openSequence(1, 1);
                p.decode(new long[] {1}, new int[] {1}, new int[] {0});
            });
            assertTrue(notReady.getMessage().contains("lacks weights"), notReady.getMessage());
        }
    }

    @Test
    void releasingUnitsFreesTheirBytesAndTheyCanComeBack() {
        LlamaConfig c = ckpt.config();
        for (ShardLayout layout : List.of(ShardLayout.of(c, 1, 2), ShardLayout.balanced(c, List.of(3, 2), 1))) {
            try (Executor ex = executor(new ExecutorOptions(1, false))) {
                Pipeline src = TestPipelines.loaded(ex, ckpt, layout, "src", 1);
                Pipeline dst = ex.createPipeline(layout, TestPipelines.devices(ex, layout, "dst", 1 << 20), 1);
                // move unit by unit, the sender freeing each as soon as it is sent (memory-optimised migration)
                for (int p = 0; p < layout.stages(); p++) {
                    for (int m = 0; m < layout.shards(); m++) {
                        long before = src.device(p, m).usedBytes();
                        long sent = 0;
                        for (ContextSlice s : layout.weightSlices(p, m)) {
                            dst.importSlice(p, m, src.exportSlice(p, m, s));
                            src.releaseSlice(p, m, s);
                            assertFalse(src.hasAllWeights(p, m));
                            sent += s.bytes(c);
                        }
                        assertEquals(0, src.device(p, m).usedBytes(), layout + " stage " + p + " shard " + m);
                        assertEquals(before, dst.device(p, m).usedBytes());
                        assertTrue(sent >= before);
                        assertTrue(dst.hasAllWeights(p, m));
                    }
                }
                // the released source can be refilled from the receiver and runs again
                for (int p = 0; p < layout.stages(); p++) {
                    for (int m = 0; m < layout.shards(); m++) {
                        for (ContextSlice s : layout.weightSlices(p, m)) {
                            src.importSlice(p, m, dst.exportSlice(p, m, s));
                        }
                    }
                }
                assertTrue(src.isReady());
                int[] a = TestPipelines.greedy(src, 1, 1, 20);
                int[] b = TestPipelines.greedy(dst, 1, 1, 20);
                org.junit.jupiter.api.Assertions.assertArrayEquals(a, b);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> src.releaseSlice(0, 0,
                        new ContextSlice.LayerWeights(0, io.spotserve.exec.IndexRange.of(0, 2), layout.hidden(0))));
                assertTrue(e.getMessage().contains("is not a weight unit"), e.getMessage());
            }
        }
    }

    @Test
    void devicesCanBeDestroyedOnlyWhenEmpty() {
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
            Device d = ex.createDevice(new DeviceId("i-1", 0), 1 << 20);
            Pipeline p = ex.createPipeline(layout, List.of(d), 1);
            p.loadWeights(ckpt);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> ex.destroyDevice(d));
            assertTrue(e.getMessage().contains("still holds " + d.usedBytes() + " bytes"), e.getMessage());
            p.close();
            ex.destroyDevice(d);
            Device again = ex.createDevice(new DeviceId("i-1", 0), 10);
            assertEquals(10, again.capacityBytes());
        }
    }
}
