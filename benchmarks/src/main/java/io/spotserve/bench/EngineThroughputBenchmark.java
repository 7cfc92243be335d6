package io.spotserve.bench;

import io.spotserve.engine.Completion;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.SystemEngineClock;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * End-to-end serving throughput of {@code ServingEngine} with iteration-level batching: one op submits
 * {@value #REQUESTS} greedy requests (32-token prompts, up to 32 new tokens, seeded random ids) and waits for all
 * of them, on one virtual instance with one CPU device running the random 25M-parameter checkpoint of
 * {@link CpuDecodeBenchmark} (tokenizer: shared/models/tok512.bin, found via {@code -Dspotserve.shared.dir},
 * default {@code ../shared}). Compare {@code maxBatch=1} (one request at a time) with 8 (continuous batching).
 *
 * <p>Run: {@code java -Dspotserve.shared.dir=../shared -jar benchmarks/target/benchmarks.jar EngineThroughput -f 1 -wi 2 -i 5}
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 5, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
public class EngineThroughputBenchmark {
    static final int REQUESTS = 16;

    @Param({"1", "8"})
    public int maxBatch;

    @Param({"2"})
    public int threads;

    private Executor executor;
    private ServingEngine engine;
    private List<GenerationRequest> requests;

    @Setup
    public void setUp() throws IOException {
        LlamaCheckpoint checkpoint = DecodeWorkload.checkpoint25M();
        Path shared = Path.of(System.getProperty("spotserve.shared.dir", "../shared"));
        Tokenizer tokenizer = Tokenizer.load(shared.resolve("models/tok512.bin"), checkpoint.config().vocabSize());
        executor = new CpuExecutor(ExecutorOptions.defaults().withThreads(threads));
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        provider.add(new InstanceType("bench.1x", 1, 1L << 30, 1.0, InstanceType.Market.SPOT));
        engine = ServingEngine.builder().model(checkpoint, tokenizer).instances(provider).executor(executor)
                .clock(clock).maxBatch(maxBatch).maxBatchTokens(64).build();
        requests = DecodeWorkload.engineRequests(checkpoint.config().vocabSize(), REQUESTS);
    }

    @TearDown
    public void tearDown() {
        engine.close();
        executor.close();
    }

    /** Serves all requests; returns the number of generated tokens. */
    @Benchmark
    public int serve() {
        List<CompletableFuture<Completion>> futures = new ArrayList<>(REQUESTS);
        for (GenerationRequest r : requests) {
            futures.add(engine.submit(r));
        }
        int tokens = 0;
        for (CompletableFuture<Completion> f : futures) {
            tokens += f.join().tokens().length;
        }
        return tokens;
    }
}
