package io.spotserve.exec.cpu;

import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * One decode token's attention over {@code len} cached positions for heads of {@code vectors} vectors (eight: 128
 * floats with AVX-512, Llama 2 / 3's head size, or 64 with AVX2, {@code -XX:MaxVectorSize=32}; sixteen: 128 with AVX2,
 * {@code -p vectors=16}): 4 layers × 32 query heads sharing 8
 * KV heads, KV caches of 1,024 positions laid out as {@code StageShard} does, one thread. {@code generic} is the
 * dot/axpy loop such heads ran before session 17 ({@link VectorKernels#attendAnySize}), {@code registers} what
 * {@link VectorKernels#attendHead} runs now; both give the same bits ({@code KernelsTest}).
 *
 * <pre>java -jar benchmarks/target/benchmarks.jar AttentionBenchmark -f 2 -wi 3 -i 5 -w 1 -r 1
 * java -jar benchmarks/target/benchmarks.jar AttentionBenchmark -f 2 -wi 3 -i 5 -w 1 -r 1 \
 *     -jvmArgsAppend "--add-modules=jdk.incubator.vector -XX:MaxVectorSize=32"    (256-bit vectors: heads of 64)</pre>
 * (a {@code -jvmArgsAppend} on the command line replaces the annotation's, so it must name the module again)
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = "--add-modules=jdk.incubator.vector")
public class AttentionBenchmark {
    private static final int LAYERS = 4;
    private static final int HEADS = 32;
    private static final int KV_HEADS = 8;
    private static final int CAP = 1024;

    @State(Scope.Benchmark)
    public static class Step {
        @Param({"128", "1000"})
        int len;
        /** Vectors per head: 8 (head 128 with AVX-512, 64 with AVX2) or 16 (head 128 with AVX2). */
        @Param({"8"})
        int vectors;
        int hs;
        int kvDim;
        float[][] cache = new float[LAYERS][];
        float[] q;
        float[] out;
        float[] scores = new float[CAP];
        VectorKernels kernels;

        @Setup
        public void setUp() {
            Kernels k = Kernels.create(true);
            if (!(k instanceof VectorKernels v)) {
                throw new IllegalStateException("the Vector API module is not loaded (--add-modules jdk.incubator.vector)");
            }
            kernels = v;
            hs = vectors * v.packLanes();
            kvDim = KV_HEADS * hs;
            Random r = new Random(1);
            for (int l = 0; l < LAYERS; l++) {
                float[] c = new float[2 * CAP * kvDim]; // keys, then values
                for (int i = 0; i < c.length; i++) {
                    c[i] = (float) (r.nextGaussian() * 0.5);
                }
                cache[l] = c;
            }
            q = new float[HEADS * hs];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) (r.nextGaussian() * 0.5);
            }
            out = new float[HEADS * hs];
        }
    }

    @Benchmark
    public float generic(Step s) {
        float scale = (float) Math.sqrt(s.hs);
        for (int l = 0; l < LAYERS; l++) {
            for (int h = 0; h < HEADS; h++) {
                int kvh = (h / (HEADS / KV_HEADS)) * s.hs;
                s.kernels.attendAnySize(s.q, h * s.hs, s.cache[l], kvh, CAP * s.kvDim + kvh, s.kvDim, s.len, s.hs,
                        scale, s.scores, s.out, h * s.hs);
            }
        }
        return s.out[0];
    }

    @Benchmark
    public float registers(Step s) {
        float scale = (float) Math.sqrt(s.hs);
        for (int l = 0; l < LAYERS; l++) {
            for (int h = 0; h < HEADS; h++) {
                int kvh = (h / (HEADS / KV_HEADS)) * s.hs;
                s.kernels.attendHead(s.q, h * s.hs, s.cache[l], kvh, CAP * s.kvDim + kvh, s.kvDim, s.len, s.hs, scale,
                        s.scores, s.out, h * s.hs);
            }
        }
        return s.out[0];
    }
}
