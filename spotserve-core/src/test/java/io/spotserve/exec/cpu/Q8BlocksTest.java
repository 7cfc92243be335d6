package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
        short[] qx = new short[batch * n];
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

    /** The vector kernel in both shapes (512-bit and 256-bit), each into its own output array. */
    private static void vectorBothShapes(byte[] m, int n, int rows, short[] qx, float[] dx, int batch, float[] wide,
                                         float[] narrow) {
        Q8VectorKernel.matmulWide(m, 0, n, 0, rows, qx, dx, batch, wide, 0, rows);
        Q8VectorKernel.matmulNarrow(m, 0, n, 0, rows, qx, dx, batch, narrow, 0, rows);
    }

    /**
     * The documented arithmetic, written out independently of both kernels: lane l of block k is the exact integer
     * {@code qw[2l]·qx[2l] + qw[2l+1]·qx[2l+1]}, fused-multiply-added with {@code scale_k · dx_k} into accumulator l;
     * the 16 accumulators are then summed as a halving tree (8, 4, 2, 1).
     */
    private static float reference(byte[] m, int n, int row, short[] qx, float[] dx, int b) {
        int blocks = n / 32;
        float[] acc = new float[16];
        for (int k = 0; k < blocks; k++) {
            int at = (row * blocks + k) * 34;
            float d = HalfFloats.toFloat((short) ((m[at] & 0xff) | ((m[at + 1] & 0xff) << 8)));
            float s = d * dx[b * blocks + k];
            for (int l = 0; l < 16; l++) {
                long lane = 0;
                for (int j = 2 * l; j < 2 * l + 2; j++) {
                    lane += (long) m[at + 2 + j] * qx[b * n + k * 32 + j];
                }
                acc[l] = Math.fma((float) lane, s, acc[l]); // (float) lane is exact: |lane| <= 32,512
            }
        }
        float[] t = acc.clone();
        for (int h = 8; h >= 1; h /= 2) {
            float[] u = t.clone();
            for (int l = 0; l < h; l++) {
                u[l] = t[l] + t[l + h];
            }
            t = u;
        }
        return t[0];
    }

    private static void assertAllEqualReference(byte[] m, int n, int rows, short[] qx, float[] dx, int batch,
                                                String where) {
        float[] scalar = new float[batch * rows];
        Q8Blocks.matmul(m, 0, n, 0, rows, qx, dx, batch, scalar, 0, rows);
        float[] want = new float[batch * rows];
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < rows; i++) {
                want[b * rows + i] = reference(m, n, i, qx, dx, b);
            }
        }
        assertArrayEquals(want, scalar, "scalar vs reference, " + where);
        if (Kernels.vectorModulePresent()) {
            float[] wide = new float[batch * rows];
            float[] narrow = new float[batch * rows];
            vectorBothShapes(m, n, rows, qx, dx, batch, wide, narrow);
            assertArrayEquals(want, wide, "512-bit vector kernel, " + where);
            assertArrayEquals(want, narrow, "256-bit vector kernel, " + where);
        }
    }

    @Test
    void bothKernelsFollowTheDocumentedLaneOrderBitForBit() {
        Random r = new Random(3);
        for (int n : new int[] {32, 64, 288, 768, 1376}) {
            int rows = 19;
            int batch = 4;
            byte[] m = Q8Blocks.quantizeMatrix(random(r, rows * n, 0.2f), 0, rows, n);
            float[] x = random(r, batch * n, 3f);
            short[] qx = new short[batch * n];
            float[] dx = new float[batch * n / 32];
            Q8Blocks.quantizeActivations(x, n, batch, n, qx, dx);
            assertAllEqualReference(m, n, rows, qx, dx, batch, "random n = " + n);
            // random bytes as weights: every quant -128..127 and arbitrary fp16 scales (finite, either sign)
            for (int at = 0; at < m.length; at += 34) {
                for (int j = 2; j < 34; j++) {
                    m[at + j] = (byte) r.nextInt(256);
                }
                short h = HalfFloats.toHalf((float) (r.nextGaussian() * 0.01));
                m[at] = (byte) h;
                m[at + 1] = (byte) (h >>> 8);
            }
            for (int i = 0; i < qx.length; i++) {
                qx[i] = (short) (r.nextInt(255) - 127);
            }
            assertAllEqualReference(m, n, rows, qx, dx, batch, "random bytes n = " + n);
            // extremes: -128 and 127 weights (a pair sum of -128·-127 twice is 32,512, the largest a short lane
            // carries) against ±127, zero weight scales in some blocks, zero activation blocks (dx = 0) in others
            for (int at = 0; at < m.length; at += 34) {
                java.util.Arrays.fill(m, at + 2, at + 34, (byte) ((at / 34) % 2 == 0 ? -128 : 127));
                if ((at / 34) % 5 == 3) {
                    m[at] = 0;
                    m[at + 1] = 0;
                }
            }
            for (int i = 0; i < qx.length; i++) {
                qx[i] = (short) ((i / 2) % 3 == 0 ? -127 : 127);
            }
            for (int k = 0; k < dx.length; k += 4) {
                dx[k] = 0f;
            }
            assertAllEqualReference(m, n, rows, qx, dx, batch, "extremes n = " + n);
            // and the integer lanes stayed exact: the products summed in double
            float[] a = new float[batch * rows];
            Q8Blocks.matmul(m, 0, n, 0, rows, qx, dx, batch, a, 0, rows);
            double want = 0;
            double mag = 0;
            for (int j = 0; j < n; j++) {
                double t = (double) Q8Blocks.scale(m, j / 32 * 34) * dx[j / 32] * m[2 + j / 32 * 34 + j % 32] * qx[j];
                want += t;
                mag += Math.abs(t);
            }
            assertEquals(want, a[0], 1e-5 * mag + 1e-6, "extremes n = " + n);
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
        short[] qx = new short[2 * n];
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

    @Test
    void vectorActivationQuantizerGivesTheScalarBits() {
        Random r = new Random(5);
        int n = 7 * 32;
        int stride = n + 16;
        int batch = 3;
        float[] x = new float[batch * stride];
        for (int b = 0; b < batch; b++) {
            for (int k = 0; k < n / 32; k++) {
                int base = b * stride + k * 32;
                for (int j = 0; j < 32; j++) {
                    x[base + j] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(7) - 3));
                }
            }
        }
        // Ties and near-ties after scaling: amax 127 gives d = 1, inv = 1, so x · inv is x itself
        float[] ties = {127f, 2.5f, -2.5f, 0.5f, -0.5f, 0.49999997f, -0.49999997f, -0.50000006f, 126.5f, -126.5f,
            1.5f, -1.5f, 0f, -0f, 3.4999998f, -3.5000002f, 1e-40f, -1e-40f};
        java.util.Arrays.fill(x, 32, 64, 0f);
        System.arraycopy(ties, 0, x, 32, ties.length);
        // amax 63.5: d = 0.5, inv = 2; quarter steps land on ties
        for (int j = 0; j < 32; j++) {
            x[64 + j] = (j - 16) * 0.25f * (j % 2 == 0 ? 1 : -1);
        }
        x[64] = -63.5f;
        java.util.Arrays.fill(x, 96, 128, 0f); // an all-zero block: scale 0
        x[stride + 5] = Float.NaN; // blocks with NaN and an infinity take the scalar path
        x[stride + 40] = Float.POSITIVE_INFINITY;
        x[2 * stride + 200] = 1e-42f; // denormals only in this block's neighbours
        short[] qs = new short[batch * n];
        float[] ds = new float[batch * n / 32];
        short[] qv = new short[batch * n];
        float[] dv = new float[batch * n / 32];
        Q8Blocks.quantizeActivations(x, stride, batch, n, qs, ds);
        Q8VectorKernel.quantizeActivations(x, stride, batch, n, qv, dv);
        assertArrayEquals(qs, qv, "quants");
        assertArrayEquals(ds, dv, "scales");
        assertEquals(3, qs[32 + 1]); // 2.5 rounds up
        assertEquals(-2, qs[32 + 2]); // -2.5 rounds toward +infinity
        assertEquals(-1, qs[32 + 7]); // -0.50000006 rounds down
    }
}
