package io.spotserve.bench;

import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
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
 * Decode throughput of the CPU executor (also on the real stories260K, {@code -p model=stories260K}) on a random 25M-parameter llama2.c checkpoint (dim 512, hidden 1376,
 * 8 layers, 8 heads, 4 KV heads, vocab 512, seq_len 1024; written once to the temp directory). One benchmark
 * op is one decode step of {@code batch} sequences at staggered positions in [0, 256) (continuous batching);
 * tokens/s = ops/s × batch.
 *
 * <p>Run: {@code java -jar benchmarks/target/benchmarks.jar CpuDecode -f 1 -wi 3 -i 5 -p threads=2}
 * (add {@code -p batch=1,8 -p vector=true,false -p shards=1,2 -p model=25M,stories260K} to choose variants;
 * run from the repository root so that {@code ../shared/models/stories260K.bin} is found).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
public class CpuDecodeBenchmark {
    @Param({"1", "8"})
    public int batch;

    @Param({"2"})
    public int threads;

    @Param({"true", "false"})
    public boolean vector;

    /**
     * "25M": the random 25M-parameter checkpoint; "stories260K": the real model from
     * {@code ../shared/models} (run from the repository root, or pass {@code -jvmArgsAppend -Dspotserve.shared.dir=...}).
     */
    @Param({"25M"})
    public String model;

    /** Tensor shards M of a P = 1 layout (all on this CPU): shows the cost of the explicit all-reduce. */
    @Param({"1"})
    public int shards;

    /**
     * Positions each sequence cycles through, [0, window): 256 (the default, mean position ≈ 128) is what the
     * comparisons with run.c's 256-step runs use; 1024 (the 25M model's seq_len, mean ≈ 512) shows the attention over
     * long contexts, against run.c with {@code -n 1024}.
     */
    @Param({"256"})
    public int window;

    private DecodeWorkload workload;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        LlamaCheckpoint ckpt;
        if (model.equals("25M")) {
            ckpt = DecodeWorkload.checkpoint25M();
        } else if (model.equals("stories260K")) {
            Path shared = Path.of(System.getProperty("spotserve.shared.dir", "../shared"));
            Path file = shared.resolve("models/stories260K.bin");
            if (!Files.exists(file)) {
                throw new IllegalStateException("stories260K checkpoint not found at " + file.toAbsolutePath()
                        + "; run from the repository root or pass -Dspotserve.shared.dir");
            }
            ckpt = LlamaCheckpoint.load(file);
        } else {
            throw new IllegalArgumentException("model " + model + " unknown; expected 25M or stories260K");
        }
        workload = new DecodeWorkload(new CpuExecutor(new ExecutorOptions(threads, vector)), ckpt, shards, batch,
                window);
    }

    @Benchmark
    public float[][] decodeStep() {
        return workload.step();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (workload != null) {
            workload.close();
        }
    }
}
