package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.ConfigEstimate;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.Decision;
import io.spotserve.plan.Hardware;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.MemoryRule;
import io.spotserve.plan.ParallelConfigOptimizer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Structural checks of profiles of our CPU executor (no timing assertions: the numbers depend on the machine). */
class ExecutorProfilerTest {
    /** 3 layers, 4 query / 2 KV heads: M in {1, 2}; P = 2 splits unevenly as [2, 1]. */
    static final LlamaConfig TINY = new LlamaConfig(16, 24, 3, 4, 2, 40, 24, true);

    static CpuExecutor executor;

    @BeforeAll
    static void open() {
        executor = new CpuExecutor(new ExecutorOptions(2, true));
    }

    @AfterAll
    static void close() {
        executor.close();
    }

    static ExecutorProfiler quick(int promptTokens) {
        return ExecutorProfiler.builder(executor).promptTokens(promptTokens).warmup(0).repeats(1).decodeSteps(2)
                .build();
    }

    @Test
    void tinyRandomModelHasEveryCellPositiveAndRoundTrips() {
        CountingExecutor counting = new CountingExecutor(executor);
        LatencyProfile p = ExecutorProfiler.builder(counting).promptTokens(8).warmup(0).repeats(1).decodeSteps(2)
                .build().profile("tiny", TINY, 7);
        assertEquals(List.of(1, 2), new ArrayList<>(p.layerTimes().keySet()), "tensor degrees of 4 heads / 2 KV heads");
        checkStructure(p, TINY, 8, List.of(1, 2));
        assertEquals(p, LatencyProfile.parse(p.toJson()), "JSON round trip");
        // M=1 (1 device), the P=2 comparison (2 devices), M=2 (2 devices): all created, all destroyed
        assertEquals(5, counting.created, "devices created");
        assertEquals(counting.created, counting.destroyed, "devices destroyed");
    }

    @Test
    void stories260kProfilePlansOnInstances() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        LatencyProfile p = quick(16).profile("stories260K", ckpt);
        // n_heads 8, n_kv_heads 4, hidden_dim 172 = 4 * 43: M in {1, 2, 4}
        checkStructure(p, ckpt.config(), 16, List.of(1, 2, 4));
        assertEquals(4, p.maxTensorParallel());

        Hardware cpu = new Hardware("cpu", 4, 64L << 20, 10.0, 0.0, 1.0, 2.0);
        CostModel model = CostModel.of(LatencyProfile.parse(p.toJson()), "stories260K", ckpt.config(), cpu);
        for (int instances : new int[] {1, 2, 3}) {
            Decision d = ParallelConfigOptimizer.builder(model).memoryRule(MemoryRule.DEVICE_MEMORY)
                    .promptTokens(16).outputTokens(16).maxBatch(8).build().decide(instances, 0.0);
            ConfigEstimate e = d.choice().orElseThrow(() -> new AssertionError("no configuration on " + instances
                    + " instances: " + d.reason()));
            var c = e.config();
            assertTrue(c.dataParallel() * c.pipelineStages() * c.tensorShards() <= instances * 4,
                    "uses at most the " + instances * 4 + " devices: " + c);
            assertTrue(p.layerTimes().containsKey(c.tensorShards()), "M is a profiled degree: " + c);
            assertTrue(e.executionSeconds() > 0 && Double.isFinite(e.executionSeconds()), "latency " + e);
        }
    }

    @Test
    void tensorDegreesAreExactlyTheLayoutsTheExecutorAccepts() {
        List<LlamaConfig> configs = List.of(TINY, new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true),
                new LlamaConfig(48, 96, 2, 6, 6, 3, 16, false), new LlamaConfig(32, 64, 1, 16, 16, 64, 8, true));
        for (LlamaConfig c : configs) {
            List<Integer> expected = new ArrayList<>();
            for (int m = 1; m <= 16; m *= 2) {
                try {
                    ShardLayout.of(c, 1, m);
                    expected.add(m);
                } catch (IllegalArgumentException rejected) {
                    // not a valid degree for this model
                }
            }
            assertEquals(expected, ExecutorProfiler.tensorDegrees(c, 16), c.toString());
            assertEquals(List.of(1), ExecutorProfiler.tensorDegrees(c, 1), c + " capped at 1");
        }
    }

    @Test
    void callerCpuTimerProfilesWithOneThreadOnly() {
        try (CpuExecutor single = new CpuExecutor(new ExecutorOptions(1, true))) {
            LatencyProfile p = ExecutorProfiler.builder(single).promptTokens(6).maxBatch(4).warmup(0).repeats(1)
                    .decodeSteps(2).timer(ExecutorProfiler.Timer.CALLER_CPU).build().profile("cpu-time", TINY, 5);
            checkStructure(p, TINY, 6, List.of(1, 2));
        }
        assertMessage(() -> ExecutorProfiler.builder(executor).timer(ExecutorProfiler.Timer.CALLER_CPU).build(),
                "timer CALLER_CPU counts only the calling thread; it needs an executor with 1 thread, this one has 2");
    }

    @Test
    void oneLayerModelHasNoStageBoundary() {
        LlamaConfig one = new LlamaConfig(16, 32, 1, 2, 2, 16, 12, false);
        LatencyProfile p = ExecutorProfiler.builder(executor).promptTokens(4).maxBatch(2).maxTensorParallel(1)
                .warmup(0).repeats(1).decodeSteps(1).build().profile("one", one, 3);
        checkStructure(p, one, 4, List.of(1));
        assertEquals(2, p.embedMs().size(), "embed for B = 1, 2");
        assertEquals(0.0, p.ppInitCommMs());
        assertEquals(0.0, p.ppIncrCommMs());
    }

    @Test
    void rejectsBadSettingsWithTheValue() {
        assertMessage(() -> quick(23).profile("long", TINY, 1), "prompt tokens 23 + decode steps 2 exceed the model's seq_len 24");
        ExecutorProfiler.Builder b = ExecutorProfiler.builder(executor);
        assertMessage(() -> b.maxBatch(6), "maxBatch must be a power of two >= 1, was 6");
        assertMessage(() -> b.repeats(0), "repeats must be >= 1, was 0");
        assertMessage(() -> b.warmup(-1), "warmup must be >= 0, was -1");
        assertMessage(() -> b.promptTokens(0), "promptTokens must be >= 1, was 0");
        assertMessage(() -> b.maxTensorParallel(0), "maxTensorParallel must be >= 1, was 0");
        assertMessage(() -> b.decodeSteps(0), "decodeSteps must be >= 1, was 0");
        assertMessage(() -> ExecutorProfiler.tensorDegrees(TINY, 0), "maxTensorParallel must be >= 1, was 0");
        assertThrows(NullPointerException.class, () -> ExecutorProfiler.builder(null));
    }

    @Test
    void costModelRejectsAProfileOfAnotherModel() {
        LatencyProfile p = quick(4).profile("tiny", TINY, 7);
        LlamaConfig other = new LlamaConfig(16, 24, 4, 4, 2, 40, 24, true);
        assertMessage(() -> CostModel.of(p, "other", other, Hardware.G4DN_12XLARGE),
                "is for 3 layers of width 16 but model 'other' has 4 layers of width 16");
    }

    @Test
    void medianOfOddAndEvenCounts() {
        assertEquals(2.0, ExecutorProfiler.median(new double[] {3, 1, 2}));
        assertEquals(2.5, ExecutorProfiler.median(new double[] {4, 1, 3, 2}));
        assertEquals(5.0, ExecutorProfiler.median(new double[] {5}));
    }

    /** Delegates to a real executor and counts device creation and destruction (the profiler uses only the SPI). */
    static final class CountingExecutor implements Executor {
        final Executor inner;
        int created;
        int destroyed;

        CountingExecutor(Executor inner) {
            this.inner = inner;
        }

        @Override
        public String name() {
            return "counting-" + inner.name();
        }

        @Override
        public ExecutorOptions options() {
            return inner.options();
        }

        @Override
        public Device createDevice(io.spotserve.plan.DeviceId id, long capacityBytes) {
            created++;
            return inner.createDevice(id, capacityBytes);
        }

        @Override
        public void destroyDevice(Device device) {
            inner.destroyDevice(device);
            destroyed++;
        }

        @Override
        public Pipeline createPipeline(ShardLayout layout, List<? extends Device> devices, int maxBatch) {
            return inner.createPipeline(layout, devices, maxBatch);
        }

        @Override
        public void close() {
        }
    }

    static void checkStructure(LatencyProfile p, LlamaConfig c, int promptTokens, List<Integer> degrees) {
        assertEquals(c.layers(), p.layerNum());
        assertEquals(c.layers(), p.paddedLayerNum());
        assertEquals(c.dim(), p.hiddenSize());
        assertEquals(1.0, p.finalFixFactor());
        assertEquals(promptTokens, p.promptTokens());
        assertEquals(degrees.get(degrees.size() - 1), p.maxTensorParallel());
        assertEquals(degrees, new ArrayList<>(p.layerTimes().keySet()));
        int batches = p.embedMs().size();
        for (int m : degrees) {
            assertEquals(batches, p.layerTimes().get(m).size(), "tp-" + m + " has a cell per embed entry");
            for (int i = 0; i < batches; i++) {
                LatencyProfile.LayerTimes t = p.times(m, 1 << i);
                assertTrue(t.initMs() > 0 && Double.isFinite(t.initMs()), "tp-" + m + " bsz-" + (1 << i) + " " + t);
                assertTrue(t.incrMs() > 0 && Double.isFinite(t.incrMs()), "tp-" + m + " bsz-" + (1 << i) + " " + t);
            }
        }
        for (double e : p.embedMs()) {
            assertTrue(e >= 0 && Double.isFinite(e), "embed " + p.embedMs());
        }
        assertTrue(p.ppInitCommMs() >= 0 && p.ppIncrCommMs() >= 0);
    }

    static void assertMessage(Executable call, String fragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }
}
