package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.HalfFloats;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The Q8_0 blocks: quantization as GGUF stores it (34-byte blocks, fp16 scale first), the fp16 scales, and the
 * activation quantizer (scalar and Vector API, same bits). The product is {@link Q8TilesTest}'s.
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
        Q8VectorQuantizer.quantizeActivations(x, stride, batch, n, qv, dv);
        assertArrayEquals(qs, qv, "quants");
        assertArrayEquals(ds, dv, "scales");
        assertEquals(3, qs[32 + 1]); // 2.5 rounds up
        assertEquals(-2, qs[32 + 2]); // -2.5 rounds toward +infinity
        assertEquals(-1, qs[32 + 7]); // -0.50000006 rounds down
    }
}
