package io.spotserve.exec.cpu;

import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * One decode token's layer matrices of the 25M benchmark model (dim 512, hidden 1376, 8 layers, 8 heads / 4 KV
 * heads: per layer wqkv 1024×512, wo 512×512, w13 2752×512, w2 512×1376; 24.7 MB of f32 weights, 6.6 MB of Q8_0)
 * at batch 1 on one thread: our F32 vector kernel (packed rows) and scalar kernel, against the Q8_0 kernels
 * ({@link Q8Tiles}: GGUF's 34-byte blocks in tiles of 32 rows; activation quantization included). Kernel level
 * only; tokens/s of the whole decode step are {@code io.spotserve.bench.Q8DecodeBenchmark}. Lives in the executor's package
 * (package-private kernels).
 *
 * <pre>java --add-modules jdk.incubator.vector -jar benchmarks/target/benchmarks.jar Q8Matmul -f 1 -wi 3 -i 5</pre>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = "--add-modules=jdk.incubator.vector")
public class Q8MatmulBenchmark {
    private static final int LAYERS = 8;
    private static final int[][] SHAPES = {{1024, 512}, {512, 512}, {2752, 512}, {512, 1376}}; // rows, n

    @State(Scope.Benchmark)
    public static class Weights {
        float[][] f32 = new float[LAYERS * SHAPES.length][];
        float[][] packed = new float[LAYERS * SHAPES.length][];
        byte[][] q8 = new byte[LAYERS * SHAPES.length][];
        float[] x = new float[1376];
        float[] out = new float[2752];
        short[] qx = new short[1376];
        float[] dx = new float[1376 / 32];
        Kernels vector;
        Kernels scalar;

        @Setup
        public void setUp() {
            Random r = new Random(1);
            vector = Kernels.create(true);
            scalar = Kernels.create(false);
            for (int i = 0; i < f32.length; i++) {
                int[] s = SHAPES[i % SHAPES.length];
                float[] w = new float[s[0] * s[1]];
                for (int j = 0; j < w.length; j++) {
                    w[j] = (float) (r.nextGaussian() * 0.05);
                }
                f32[i] = w;
                q8[i] = Q8Tiles.quantizeMatrix(w, 0, s[0], s[1]);
                int lanes = vector.packLanes();
                float[] p = new float[w.length];
                if (lanes > 0) {
                    PackedRows.rows(p, 0, s[0], s[1], lanes, 0, s[0], CanonFloats.of(w), 0, true);
                }
                packed[i] = p;
            }
            for (int j = 0; j < x.length; j++) {
                x[j] = (float) r.nextGaussian();
            }
        }
    }

    @Benchmark
    public float f32Vector(Weights w) {
        for (int i = 0; i < w.f32.length; i++) {
            int[] s = SHAPES[i % SHAPES.length];
            if (w.vector.packLanes() > 0) {
                w.vector.matmulPacked(w.packed[i], 0, s[1], s[0], 0, s[0], w.x, s[1], 1, w.out, 0, s[0]);
            } else {
                w.vector.matmul(w.f32[i], 0, s[1], 0, s[0], w.x, s[1], 1, w.out, 0, s[0]);
            }
        }
        return w.out[0];
    }

    @Benchmark
    public float f32Scalar(Weights w) {
        for (int i = 0; i < w.f32.length; i++) {
            int[] s = SHAPES[i % SHAPES.length];
            w.scalar.matmul(w.f32[i], 0, s[1], 0, s[0], w.x, s[1], 1, w.out, 0, s[0]);
        }
        return w.out[0];
    }

    @Benchmark
    public float q8Vector(Weights w) {
        for (int i = 0; i < w.q8.length; i++) {
            int[] s = SHAPES[i % SHAPES.length];
            Q8Blocks.quantizeActivations(w.x, s[1], 1, s[1], w.qx, w.dx);
            Q8TiledKernel.matmul(w.q8[i], 0, s[1], s[0], 0, s[0], w.qx, null, w.dx, 1, w.out, 0, s[0]);
        }
        return w.out[0];
    }

    @Benchmark
    public float q8Scalar(Weights w) {
        for (int i = 0; i < w.q8.length; i++) {
            int[] s = SHAPES[i % SHAPES.length];
            Q8Blocks.quantizeActivations(w.x, s[1], 1, s[1], w.qx, w.dx);
            Q8Tiles.matmul(w.q8[i], 0, s[1], s[0], 0, s[0], w.qx, w.dx, 1, w.out, 0, s[0]);
        }
        return w.out[0];
    }
}
