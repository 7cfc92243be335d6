package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.spotserve.model.HalfFloats;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The Q8_0 blocks: quantization as GGUF stores it (34-byte blocks, fp16 scale first), the product checked against
 * two independent references — a brute-force double evaluation of the same quantized operands (tight) and a float
 * dot product of the dequantized weights with the unquantized activations (within the activation quantization
 * bound) — and the Vector API kernel bit-identical to the scalar one.
 */
class Q8BlocksTest {
    private static float[] random(Random r, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian() * scale);
        }
        return a;
    }

    /** Element (r, j) of a Q8_0 matrix, decoded by hand from the GGUF block layout (not via Q8Blocks). */
    private static float element(byte[] m, int n, int r, int j) {
        int block = r * (n / 32) * 34 + (j / 32) * 34;
        short h = (short) ((m[block] & 0xff) | ((m[block + 1] & 0xff) << 8));
        return HalfFloats.toFloat(h) * m[block + 2 + j % 32];
    }

    @Test
    void quantizationKeepsEachElementWithinHalfAStepAndScalesAreHalves() {
        Random r = new Random(1);
        int rows = 7;
        int n = 96;
        float[] w = random(r, rows * n, 0.1f);
        byte[] m = Q8Blocks.quantizeMatrix(w, 0, rows, n);
        assertEquals(rows * 3 * 34, m.length);
        for (int i = 0; i < rows; i++) {
            for (int b = 0; b < n / 32; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++) {
                    amax = Math.max(amax, Math.abs(w[i * n + b * 32 + j]));
                }
                float d = Q8Blocks.scale(m, (i * 3 + b) * 34);
                assertEquals(HalfFloats.round(amax / 127f), d);
                for (int j = 0; j < 32; j++) {
                    // q = round(x · 127 / amax); d is that step rounded to fp16 (relative error < 2^-11)
                    assertEquals(w[i * n + b * 32 + j], element(m, n, i, b * 32 + j), d * (0.5 + 127.0 / 2048) + 1e-12);
                }
            }
        }
        float[] back = new float[n];
        Q8Blocks.dequantize(m, 2 * 3 * 34, n, back, 0);
        for (int j = 0; j < n; j++) {
            assertEquals(element(m, n, 2, j), back[j]);
        }
    }

    @Test
    void requantizingDequantizedBlocksGivesTheSameBytes() {
        // a Q8_0 tensor read from a GGUF file arrives as floats d·q; quantizing those again must give back exactly
        // the same bytes, so int8 weights survive a float round trip (a slice migrated as floats, a file loaded as floats)
        Random r = new Random(5);
        int rows = 11;
        int n = 128;
        float[] w = random(r, rows * n, 0.3f);
        for (int i = 0; i < 32; i++) {
            w[i] = 0f; // an all-zero block
        }
        w[40] = 1e-6f; // a block of tiny values: a subnormal fp16 scale
        for (int i = 41; i < 64; i++) {
            w[i] = 0f;
        }
        byte[] a = Q8Blocks.quantizeMatrix(w, 0, rows, n);
        float[] deq = new float[rows * n];
        for (int i = 0; i < rows; i++) {
            Q8Blocks.dequantize(a, i * Q8Blocks.rowBytes(n), n, deq, i * n);
        }
        assertArrayEquals(a, Q8Blocks.quantizeMatrix(deq, 0, rows, n));
    }

    private static void check(Kernels k, int n, int rows, int batch, Random r) {
        float[] wf = random(r, rows * n, 0.05f);
        byte[] m = Q8Blocks.quantizeMatrix(wf, 0, rows, n);
        float[] x = random(r, batch * n, 1f);
        byte[] qx = new byte[batch * n];
        float[] dx = new float[batch * n / 32];
        Q8Blocks.quantizeActivations(x, n, batch, n, qx, dx);
        float[] out = new float[batch * rows];
        k.matmulQ8(m, 0, n, 0, rows, qx, dx, batch, out, 0, rows);
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < rows; i++) {
                double sameOperands = 0;
                double mag = 0;
                double floatDot = 0;
                double bound = 0;
                for (int j = 0; j < n; j++) {
                    double w = element(m, n, i, j);
                    double xq = (double) dx[b * n / 32 + j / 32] * qx[b * n + j];
                    sameOperands += w * xq;
                    mag += Math.abs(w * xq);
                    floatDot += w * x[b * n + j];
                    // activation quantization: at most half a step, plus the fp16 rounding of the step
                    bound += Math.abs(w) * dx[b * n / 32 + j / 32] * (0.5 + 127.0 / 2048);
                }
                String where = k.name() + " n " + n + " row " + i + " entry " + b;
                assertEquals(sameOperands, out[b * rows + i], 1e-5 * mag + 1e-7, where);
                assertEquals(floatDot, out[b * rows + i], bound + 1e-5 * mag + 1e-7, where);
            }
        }
    }

    @Test
    void productMatchesBruteForceAndTheDequantizedFloatDotProduct() {
        Random r = new Random(2);
        for (int n : new int[] {32, 96, 512, 1376}) {
            check(new ScalarKernels(), n, 33, 3, r);
            if (Kernels.vectorModulePresent()) {
                check(Kernels.create(true), n, 17, 2, r);
            }
        }
    }

    @Test
    void vectorKernelIsBitIdenticalToTheScalarOne() {
        assumeTrue(Kernels.vectorModulePresent(), "jdk.incubator.vector not loaded");
        Random r = new Random(3);
        for (int n : new int[] {32, 64, 288, 768, 1376}) {
            int rows = 19;
            int batch = 4;
            byte[] m = Q8Blocks.quantizeMatrix(random(r, rows * n, 0.2f), 0, rows, n);
            float[] x = random(r, batch * n, 3f);
            byte[] qx = new byte[batch * n];
            float[] dx = new float[batch * n / 32];
            Q8Blocks.quantizeActivations(x, n, batch, n, qx, dx);
            float[] a = new float[batch * rows];
            float[] v = new float[batch * rows];
            Q8Blocks.matmul(m, 0, n, 0, rows, qx, dx, batch, a, 0, rows);
            Q8VectorKernel.matmul(m, 0, n, 0, rows, qx, dx, batch, v, 0, rows);
            assertArrayEquals(a, v, "n = " + n);
            // extreme quants: -128 in a file's weights (our quantizer never writes it, another might) times ±127
            for (int at = 0; at < m.length; at += 34) {
                java.util.Arrays.fill(m, at + 2, at + 34, (byte) -128);
            }
            for (int i = 0; i < qx.length; i++) {
                qx[i] = (byte) (i % 3 == 0 ? -127 : 127);
            }
            Q8Blocks.matmul(m, 0, n, 0, rows, qx, dx, batch, a, 0, rows);
            Q8VectorKernel.matmul(m, 0, n, 0, rows, qx, dx, batch, v, 0, rows);
            assertArrayEquals(a, v, "extremes n = " + n);
            // and the integer lanes stayed exact: every product is -128·(±127), summed in double
            float d = Q8Blocks.scale(m, 0);
            double want = 0;
            for (int j = 0; j < n; j++) {
                want += (double) Q8Blocks.scale(m, j / 32 * 34) * dx[j / 32] * -128 * qx[j];
            }
            assertEquals(want, a[0], 1e-4 * Math.abs(want) + 1e-6, "extremes n = " + n + " (d " + d + ")");
        }
    }

    @Test
    void blockScalesDecodeEveryHalfExactly() {
        byte[] b = new byte[2];
        for (int h = 0; h < 65536; h++) {
            b[0] = (byte) h;
            b[1] = (byte) (h >>> 8);
            float want = HalfFloats.toFloat((short) h);
            assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(Q8Blocks.scale(b, 0)),
                    "half 0x" + Integer.toHexString(h));
        }
    }

    @Test
    void rowRangesAndOutputStridesSelectTheRightCells() {
        Random r = new Random(4);
        int n = 64;
        int rows = 10;
        byte[] m = Q8Blocks.quantizeMatrix(random(r, rows * n, 1f), 0, rows, n);
        float[] x = random(r, 2 * 80, 1f);
        byte[] qx = new byte[2 * n];
        float[] dx = new float[2 * n / 32];
        Q8Blocks.quantizeActivations(x, 80, 2, n, qx, dx); // entry stride 80 > n: only the first n of each count
        float[] all = new float[2 * rows];
        Q8Blocks.matmul(m, 0, n, 0, rows, qx, dx, 2, all, 0, rows);
        float[] part = new float[5 + 2 * 20];
        java.util.Arrays.fill(part, Float.NaN);
        Q8Blocks.matmul(m, 0, n, 3, 7, qx, dx, 2, part, 5, 20);
        for (int b = 0; b < 2; b++) {
            for (int i = 0; i < 20; i++) {
                float got = part[5 + b * 20 + i];
                if (i >= 3 && i < 7) {
                    assertEquals(all[b * rows + i], got);
                } else {
                    assertTrue(Float.isNaN(got), "cell " + i + " of entry " + b + " was written");
                }
            }
        }
    }
}
