package io.spotserve.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.TestPipelines;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.clock.VirtualClock;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.GgufModel;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.TensorType;
import io.spotserve.model.Tokenizer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The planner's memory model counts Q8_0 weights at their real size (34 bytes per 32 weights, 1.0625 per weight),
 * not rounded up to 2: a device that holds stories260K's Q8_0 blocks plus one full-length KV cache, but would not
 * hold the same weights as halves, serves the model on its own. Before the planner used the executor's exact size
 * it judged the device too small and the request waited forever.
 */
@Timeout(120)
class EngineQ8MemoryTest {
    @TempDir
    Path dir;

    @Test
    void aDeviceSizedForQ8BlocksServesTheQ8Model() throws Exception {
        Path file = dir.resolve("stories260K-q8_0.gguf");
        GgufWriter.write(file, EngineFixtures.CHECKPOINT, EngineFixtures.TOKENIZER, TensorType.Q8_0);
        GgufModel model = GgufModel.load(file);
        Tokenizer tokenizer = model.tokenizer();
        LlamaConfig config = model.config();
        ShardLayout one = ShardLayout.of(config, 1, 1);
        long kv = (long) ConfigPlanner.contextTokens(config) * one.kvBytesPerPosition(0, 0);
        long needQ8 = one.weightBytes(0, 0, WeightPrecision.Q8_0.bytesPerWeight()) + kv;
        long needHalves = one.weightBytes(0, 0, 2.0) + kv;
        long capacity = (needQ8 + needHalves) / 2;
        assertTrue(needQ8 <= capacity && capacity < needHalves, needQ8 + " <= " + capacity + " < " + needHalves);

        InstanceType small = new InstanceType("local.q8", 1, capacity, 1.0, InstanceType.Market.SPOT);
        VirtualClock clock = new VirtualClock(Duration.ofMillis(10), Duration.ofMillis(1));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        provider.add(small);
        GenerationRequest request = GenerationRequest.builder().prompt("Once upon a time").maxNewTokens(24)
                .sampling(EngineFixtures.greedy()).build();
        try (Executor executor = new CpuExecutor(new ExecutorOptions(1, false).withWeights(WeightPrecision.Q8_0))) {
            assertEquals(1.0625, executor.storedBytesPerWeightExact());
            int[] expected;
            try (Pipeline solo = TestPipelines.loaded(executor, model.weights(), one, "solo", 1)) {
                expected = TestPipelines.greedyAfterPrompt(solo, tokenizer.encode(request.prompt(), true, false),
                        request.maxNewTokens());
            }
            try (ServingEngine engine = ServingEngine.builder().model(model.weights(), tokenizer).instances(provider)
                    .executor(executor).clock(clock).parallelism(1, 1).maxBatch(1).fallbackLayouts(false).build()) {
                Completion c = engine.submit(request).get(30, TimeUnit.SECONDS);
                assertArrayEquals(expected, c.tokens());
            }
        }
    }

    /**
     * The engine counts the weights it keeps, moves and reloads at the size the executor stores them: two surviving
     * Q8_0 replicas keep 2 × (each weight slice's floats × 1.0625) bytes in place (plus the KV caches of the requests
     * they keep serving), not the fp32 size (4 bytes per weight, 3.8 times more), and the device mapper's prediction
     * of the bytes moved equals what moved.
     */
    @Test
    void reconfigurationsCountQ8WeightsAtTheirStoredSize() throws Exception {
        Path file = dir.resolve("stories260K-q8_0.gguf");
        GgufWriter.write(file, EngineFixtures.CHECKPOINT, EngineFixtures.TOKENIZER, TensorType.Q8_0);
        GgufModel model = GgufModel.load(file);
        LlamaConfig config = model.config();
        ShardLayout one = ShardLayout.of(config, 1, 1);
        long q8 = 0;
        long fp32 = 0;
        for (io.spotserve.exec.ContextSlice w : one.weightSlices(0, 0)) {
            q8 += Math.round(w.floats(config) * 1.0625);
            fp32 += w.bytes(config);
        }
        InstanceType gpu = new InstanceType("local.1x", 1, 32L << 20, 1.9, InstanceType.Market.SPOT);
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, gpu.on(InstanceType.Market.ON_DEMAND, 3.9));
        io.spotserve.instance.Instance a = provider.add(gpu);
        provider.add(gpu);
        provider.add(gpu);
        List<GenerationRequest> requests = EngineFixtures.requests(11, 6, 60, false);
        List<java.util.concurrent.CompletableFuture<Completion>> futures = new ArrayList<>();
        try (Executor executor = new CpuExecutor(new ExecutorOptions(1, false).withWeights(WeightPrecision.Q8_0));
             ServingEngine engine = ServingEngine.builder().model(model.weights(), model.tokenizer())
                     .instances(provider).executor(executor).clock(clock).parallelism(1, 1).maxBatch(4).build()) {
            EngineFixtures.submitThen(engine, requests, futures, 2, () -> provider.deliver(
                    new io.spotserve.instance.InstanceEvent.PreemptionNotice(a.id(), clock.now(),
                            clock.now().plusMillis(30))));
            for (var f : futures) {
                assertTrue(f.get(60, TimeUnit.SECONDS).tokens().length > 0);
            }
            Reconfiguration off = engine.metrics().reconfigurations().stream()
                    .filter(r -> r.reason().contains("notice " + a.id())).findFirst().orElseThrow();
            // kept = both survivors' weights + the KV caches of the requests they go on serving (fp32 positions)
            long kv = off.bytesKept() - 2 * q8;
            assertTrue(kv >= 0 && kv % config.kvBytesPerPosition() == 0 && kv < 2 * q8,
                    "two replicas' Q8_0 weights (2 x " + q8 + " B) kept in place, plus whole KV positions: " + off);
            assertTrue(off.bytesKept() < 2 * fp32, "counted at 4 bytes per weight that would be over " + 2 * fp32);
            assertEquals(0, off.bytesLoaded(), off.toString());
            assertEquals(off.plannedBytesMoved(), off.bytesMigrated(), off.toString());
        }
    }
}
