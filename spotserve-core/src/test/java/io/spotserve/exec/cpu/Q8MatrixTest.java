package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.spotserve.model.HalfFloats;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The Q8_0 matrix: quantization as GGUF stores it, the product checked against a brute-force double-precision
 * evaluation of the same quantized operands, and the Vector API kernel bit-identical to the scalar one.
 */
class Q8MatrixTest {
    private static float[] random(Random r, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian() * scale);
        }
        return a;
    }

    @Test
    void quantizationKeepsEachElementWithinHalfAStepAndScalesAreHalves() {
        Random r = new Random(1);
        int rows = 7;
        int n = 96;
        float[] w = random(r, rows * n, 0.1f);
        Q8Matrix m = Q8Matrix.quantize(w, 0, rows, n);
        for (int i = 0; i < rows; i++) {
            for (int b = 0; b < n / 32; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++) {
                    amax = Math.max(amax, Math.abs(w[i * n + b * 32 + j]));
                }
                float d = m.d[i * 3 + b];
                assertEquals(HalfFloats.round(amax / 127f), d);
                for (int j = 0; j < 32; j++) {
                    // q = round(x · 127 / amax); d is that step rounded to fp16 (relative error < 2^-11)
                    assertEquals(w[i * n + b * 32 + j], m.get(i, b * 32 + j), d * (0.5 + 127.0 / 2048) + 1e-12);
                }
            }
        }
    }

    @Test
    void requantizingDequantizedBlocksGivesTheSameBytes() {
        // a Q8_0 tensor read from a GGUF file arrives as floats d·q; quantizing those again must give back exactly
        // (q, d), so int8 weights survive a float round trip (a slice migrated as floats, a file loaded as floats)
        Random r = new Random(5);
        int rows = 11;
        int n = 128;
        float[] w = random(r, rows * n, 0.3f);
        for (int i = 0; i < 32; i++) {
            w[i] = 0f; // an all-zero block
        }
        Q8Matrix a = Q8Matrix.quantize(w, 0, rows, n);
        float[] deq = new float[rows * n];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < n; j++) {
                deq[i * n + j] = a.get(i, j);
            }
        }
        Q8Matrix b = Q8Matrix.quantize(deq, 0, rows, n);
        assertArrayEquals(a.q, b.q);
        assertArrayEquals(a.d, b.d);
    }

    @Test
    void productEqualsBruteForceOnTheQuantizedOperands() {
        Random r = new Random(2);
        int rows = 33;
        int n = 256;
        int batch = 3;
        Q8Matrix m = Q8Matrix.quantize(random(r, rows * n, 0.05f), 0, rows, n);
        float[] x = random(r, batch * n, 1f);
        byte[] qx = new byte[batch * n];
        float[] dx = new float[batch * n / 32];
        Q8Matrix.quantizeActivation(x, n, batch, n, qx, dx);
        float[] out = new float[batch * rows];
        m.matmulScalar(0, rows, qx, dx, batch, out, 0, rows);
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < rows; i++) {
                double want = 0;
                double mag = 0;
                for (int j = 0; j < n; j++) {
                    double xv = (double) dx[b * n / 32 + j / 32] * qx[b * n + j];
                    want += m.get(i, j) * xv;
                    mag += Math.abs(m.get(i, j) * xv);
                }
                assertEquals(want, out[b * rows + i], 1e-5 * mag + 1e-7, "row " + i + " entry " + b);
            }
        }
    }

    @Test
    void vectorKernelIsBitIdenticalToTheScalarOne() {
        assumeTrue(Kernels.vectorModulePresent(), "jdk.incubator.vector not loaded");
        Random r = new Random(3);
        for (int n : new int[] {32, 64, 288, 768}) {
            int rows = 19;
            int batch = 4;
            Q8Matrix m = Q8Matrix.quantize(random(r, rows * n, 0.2f), 0, rows, n);
            float[] x = random(r, batch * n, 3f);
            byte[] qx = new byte[batch * n];
            float[] dx = new float[batch * n / 32];
            Q8Matrix.quantizeActivation(x, n, batch, n, qx, dx);
            float[] a = new float[batch * rows];
            float[] v = new float[batch * rows];
            m.matmulScalar(0, rows, qx, dx, batch, a, 0, rows);
            Q8VectorKernel.matmul(m, 0, rows, qx, dx, batch, v, 0, rows);
            assertArrayEquals(a, v, "n = " + n);
            // and against extreme quants (±127 everywhere: the largest products)
            java.util.Arrays.fill(m.q, (byte) -127);
            java.util.Arrays.fill(qx, (byte) 127);
            m.matmulScalar(0, rows, qx, dx, batch, a, 0, rows);
            Q8VectorKernel.matmul(m, 0, rows, qx, dx, batch, v, 0, rows);
            assertArrayEquals(a, v, "extremes n = " + n);
        }
    }
}
