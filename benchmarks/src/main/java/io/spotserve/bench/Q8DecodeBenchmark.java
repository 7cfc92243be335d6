package io.spotserve.bench;

import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.GgufModel;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.TensorType;
import io.spotserve.model.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
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
 * F32 vs Q8_0 decode tokens/s of the CPU executor on one Q8_0 GGUF file: the model is written once as Q8_0 by our
 * {@link GgufWriter} (in {@code java.io.tmpdir}); {@code weights=fp32} serves it dequantized to fp32,
 * {@code weights=q8_0} keeps its blocks int8 ({@link WeightPrecision#Q8_0}). Same values, same workload as
 * {@link CpuDecodeBenchmark} (one op = one decode step of {@code batch} sequences at staggered positions in
 * [0, 256); tokens/s = ops/s × batch), P = 1, M = 1.
 *
 * <p>Models: "25M" — the random 25M-parameter benchmark checkpoint (dim 512, hidden 1376, 8 layers, 8 heads / 4 KV
 * heads, vocab 512: every matrix on whole 32-weight blocks, 24.7 MB of fp32 matrices, 6.6 MB as Q8_0);
 * "stories260K" — the real llama2.c model (its w2, 172 columns, is not on blocks and stays fp32 in both). Both use
 * {@code ../shared/models/tok512.bin} for the file's tokenizer: run from the repository root, or pass
 * {@code -jvmArgsAppend -Dspotserve.shared.dir=...}.
 *
 * <pre>java -jar benchmarks/target/benchmarks.jar Q8Decode -f 1 -wi 2 -i 3 -p threads=1,2</pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
public class Q8DecodeBenchmark {
    @Param({"25M"})
    public String model;

    @Param({"fp32", "q8_0"})
    public String weights;

    @Param({"1"})
    public int batch;

    @Param({"2"})
    public int threads;

    private DecodeWorkload workload;

    /** The Q8_0 GGUF of {@code model}, written once per machine. */
    static Path q8File(String model) throws IOException {
        Path shared = Path.of(System.getProperty("spotserve.shared.dir", "../shared"));
        Path tok = shared.resolve("models/tok512.bin");
        if (!Files.exists(tok)) {
            throw new IllegalStateException("tok512.bin not found at " + tok.toAbsolutePath()
                    + "; run from the repository root or pass -Dspotserve.shared.dir");
        }
        LlamaCheckpoint ckpt = switch (model) {
            case "25M" -> DecodeWorkload.checkpoint25M();
            case "stories260K" -> LlamaCheckpoint.load(shared.resolve("models/stories260K.bin"));
            default -> throw new IllegalArgumentException("model " + model + " unknown; expected 25M or stories260K");
        };
        Path file = Path.of(System.getProperty("java.io.tmpdir"), "spotserve-bench-" + model + "-q8_0.gguf");
        if (!Files.exists(file)) {
            Path tmp = Files.createTempFile(file.getParent(), "spotserve-bench", ".tmp");
            GgufWriter.write(tmp, ckpt, Tokenizer.load(tok, ckpt.config().vocabSize()), TensorType.Q8_0);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        return file;
    }

    @Setup(Level.Trial)
    public void setup() throws IOException {
        GgufModel g = GgufModel.load(q8File(model));
        ExecutorOptions options = new ExecutorOptions(threads, true).withWeights(WeightPrecision.parse(weights));
        workload = new DecodeWorkload(new CpuExecutor(options), g.weights(), 1, batch);
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
