package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.clock.SystemEngineClock;
import io.spotserve.engine.Completion;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.ServingEngine;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.SamplingParams;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.GgufModel;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.TensorType;
import io.spotserve.model.Tokenizer;
import io.spotserve.testing.SharedData;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Workers say at registration how many bytes a weight takes on their devices, and the engine's planner counts a
 * remote worker's memory with it: a worker whose executor keeps Q8_0 blocks (1.0625 bytes per weight), with a device
 * that holds stories260K's Q8_0 weights and one full KV cache but would not hold them as halves, serves the Q8_0 model
 * alone with the in-process greedy tokens. When the controller counted every worker at 4 bytes per weight, Algorithm 1
 * found no configuration and the request waited.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class RemoteQ8MemoryTest {
    private static final WireSecurity TOKEN = WireSecurity.token("q8-token-0123456789abcdef");

    @TempDir
    Path dir;

    @Test
    void aWorkerThatKeepsQ8BlocksIsPlannedAtTheirRealSize() throws Exception {
        LlamaCheckpoint bin = LlamaCheckpoint.load(SharedData.stories260K());
        Path file = dir.resolve("stories260K-q8_0.gguf");
        GgufWriter.write(file, bin, Tokenizer.load(SharedData.tok512(), bin.config().vocabSize()), TensorType.Q8_0);
        GgufModel model = GgufModel.load(file);
        LlamaConfig config = model.config();
        ShardLayout one = ShardLayout.of(config, 1, 1);
        long kv = (long) Math.min(config.seqLen(), 4096) * one.kvBytesPerPosition(0, 0);
        long needQ8 = one.weightBytes(0, 0, WeightPrecision.Q8_0.bytesPerWeight()) + kv;
        long needHalves = one.weightBytes(0, 0, 2.0) + kv;
        long capacity = (needQ8 + needHalves) / 2;
        assertTrue(needQ8 <= capacity && capacity < needHalves, needQ8 + " <= " + capacity + " < " + needHalves);
        GenerationRequest request = GenerationRequest.builder().prompt("Once upon a time").maxNewTokens(24)
                .sampling(SamplingParams.greedy()).build();
        ExecutorOptions q8 = new ExecutorOptions(1, false).withWeights(WeightPrecision.Q8_0);

        int[] expected;
        try (Executor cpu = new CpuExecutor(q8)) {
            LocalInstanceProvider local = new LocalInstanceProvider(new SystemEngineClock(), null);
            local.add(new InstanceType("local", 1, capacity, 1, InstanceType.Market.SPOT));
            try (ServingEngine engine = ServingEngine.builder().model(model.weights(), model.tokenizer())
                    .instances(local).executor(cpu).parallelism(1, 1).maxBatch(1).fallbackLayouts(false).build()) {
                expected = engine.submit(request).get(30, TimeUnit.SECONDS).tokens();
            }
        }

        SystemEngineClock clock = new SystemEngineClock();
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(TOKEN).clock(clock::now)
                .build()) {
            RemoteExecutor ex = controller.executor();
            assertEquals(4.0, ex.storedBytesPerWeightExact(), "no worker yet: counted as floats");
            try (WorkerProcess w = WorkerProcess.builder().controller(controller.address()).devices(1)
                    .deviceMemory(capacity).security(TOKEN).executor(new CpuExecutor(q8)).build().start();
                 ServingEngine engine = ServingEngine.builder().model(model.weights(), model.tokenizer())
                         .instances(controller).executor(ex).clock(clock).parallelism(1, 1).maxBatch(1)
                         .fallbackLayouts(false).build()) {
                Completion c = engine.submit(request).get(60, TimeUnit.SECONDS);
                assertArrayEquals(expected, c.tokens());
                assertEquals(1.0625, ex.storedBytesPerWeightExact(), "what the worker's executor said");
                assertEquals(2, ex.storedBytesPerWeight());
            }
        }
    }
}
