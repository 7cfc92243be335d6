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
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
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
 * Pipelines side by side: {@code ServingEngine} on the random 25M-parameter checkpoint of {@link CpuDecodeBenchmark}
 * with D = {@code pipelines} data-parallel pipelines (one single-GPU virtual instance each, P = M = 1) on a CPU
 * executor with ONE thread, so each pipeline computes on its own dispatcher thread and nothing else. One op submits
 * {@value #REQUESTS} greedy requests (32-token seeded random prompts, 32 new tokens, maxBatch 8) and waits for all;
 * the {@code tokens} counter is the generated tokens per second. With the pipelines stepped in turn by one thread
 * D = 2 would serve about the tokens/s of D = 1; side by side on two cores it should serve close to twice as many.
 * The outputs are the same for every D (the engine's invariant), so tokens per op are equal.
 *
 * <p>Run: {@code java -jar benchmarks/target/benchmarks.jar EngineSideBySide -f 1 -wi 2 -i 5}
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 5, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
public class EngineSideBySideBenchmark {
    static final int REQUESTS = 16;

    /** D: the number of pipelines (single-GPU instances). */
    @Param({"1", "2"})
    public int pipelines;

    private Executor executor;
    private ServingEngine engine;
    private List<GenerationRequest> requests;

    /** Generated tokens, reported per second by JMH. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Tokens {
        public long tokens;

        @Setup(Level.Iteration)
        public void reset() {
            tokens = 0;
        }
    }

    @Setup
    public void setUp() throws IOException {
        LlamaCheckpoint checkpoint = DecodeWorkload.checkpoint25M();
        executor = new CpuExecutor(ExecutorOptions.defaults().withThreads(1));
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        for (int i = 0; i < pipelines; i++) {
            provider.add(new InstanceType("bench.1x", 1, 1L << 30, 1.0, InstanceType.Market.SPOT));
        }
        engine = ServingEngine.builder().model(io.spotserve.exec.WeightSource.of(checkpoint)).instances(provider)
                .executor(executor).clock(clock).maxBatch(8).maxBatchTokens(64).build();
        requests = DecodeWorkload.engineRequests(checkpoint.config().vocabSize(), REQUESTS);
        // the fleet is configured before the first op: wait until a warm-up request has been served
        serve(new Tokens());
        String config = engine.configuration();
        long running = config.chars().filter(ch -> ch == '@').count();
        if (running != pipelines) {
            throw new IllegalStateException("expected " + pipelines + " pipelines, the engine runs " + config);
        }
    }

    @TearDown
    public void tearDown() {
        engine.close();
        executor.close();
    }

    /** Serves all requests; returns the number of generated tokens. */
    @Benchmark
    public int serve(Tokens counter) {
        List<CompletableFuture<Completion>> futures = new ArrayList<>(REQUESTS);
        for (GenerationRequest r : requests) {
            futures.add(engine.submit(r));
        }
        int tokens = 0;
        for (CompletableFuture<Completion> f : futures) {
            tokens += f.join().tokens().length;
        }
        counter.tokens += tokens;
        return tokens;
    }
}
