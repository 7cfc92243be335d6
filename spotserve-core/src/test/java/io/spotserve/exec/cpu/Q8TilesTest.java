package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.spotserve.model.HalfFloats;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link Q8Tiles}: the tiled layout holds exactly the GGUF blocks (checked against a re-tiling of
 * {@link Q8Blocks#quantizeMatrix}'s GGUF rows written out by hand from the documented offsets), the scalar product
 * equals a brute-force evaluation of the documented arithmetic read from the GGUF rows, and the Vector API kernel
 * ({@link Q8TiledKernel}, both shapes) equals the scalar one bit for bit — on random weights, random bytes and the
 * extremes, with tails (rows not a multiple of 32), tile ranges and output strides.
 */
class Q8TilesTest {
    private static float[] random(Random r, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian() * scale);
        }
        return a;
    }

    /** The GGUF rows regrouped by hand: per tile of w rows and block k, quant j of row i at j·w + i, then w scales. */
    private static byte[] tileByHand(byte[] gguf, int rows, int n) {
        int blocks = n / 32;
        byte[] t = new byte[gguf.length];
        for (int r = 0; r < rows; r++) {
            int t0 = r / 32 * 32;
            int w = Math.min(32, rows - t0);
            int i = r - t0;
            for (int k = 0; k < blocks; k++) {
                int src = (r * blocks + k) * 34;
                int region = t0 * blocks * 34 + k * 34 * w;
                for (int j = 0; j < 32; j++) {
                    t[region + j * w + i] = gguf[src + 2 + j];
                }
                t[region + 32 * w + 2 * i] = gguf[src];
                t[region + 32 * w + 2 * i + 1] = gguf[src + 1];
            }
        }
        return t;
    }

    /** The documented arithmetic from the GGUF rows: exact integer block sums, one fma per block, in block order. */
    private static float reference(byte[] gguf, int n, int row, short[] qx, float[] dx, int b) {
        int blocks = n / 32;
        float acc = 0f;
        for (int k = 0; k < blocks; k++) {
            int at = (row * blocks + k) * 34;
            long sum = 0;
            for (int j = 0; j < 32; j++) {
                sum += (long) gguf[at + 2 + j] * qx[b * n + k * 32 + j];
            }
            float d = HalfFloats.toFloat((short) ((gguf[at] & 0xff) | ((gguf[at + 1] & 0xff) << 8)));
            acc = Math.fma((float) sum, d * dx[b * blocks + k], acc); // (float) sum is exact: |sum| < 2^24
        }
        return acc;
    }

    @Test
    void tilesHoldTheGgufBlocksAndReadBackAsTheRows() {
        Random r = new Random(11);
        for (int rows : new int[] {1, 31, 32, 33, 70, 96}) {
            for (int n : new int[] {32, 96, 512}) {
                float[] w = random(r, rows * n, 0.1f);
                byte[] gguf = Q8Blocks.quantizeMatrix(w, 0, rows, n);
                int off = 7; // a matrix need not start the array
                byte[] tiled = new byte[off + gguf.length];
                for (int i = 0; i < rows; i++) {
                    // in two pieces, to cover block ranges that start inside the row
                    Q8Tiles.quantizeRow(w, i * n, tiled, off, rows, n, i, 0, 1);
                    Q8Tiles.quantizeRow(w, i * n + 32, tiled, off, rows, n, i, 1, n / 32 - 1);
                }
                String where = rows + " x " + n;
                assertArrayEquals(tileByHand(gguf, rows, n), Arrays.copyOfRange(tiled, off, tiled.length), where);
                float[] back = new float[n];
                float[] want = new float[n];
                for (int i = 0; i < rows; i++) {
                    Q8Tiles.dequantizeRow(tiled, off, rows, n, i, 0, n / 32, back, 0);
                    Q8Blocks.dequantize(gguf, i * Q8Blocks.rowBytes(n), n, want, 0);
                    assertArrayEquals(want, back, where + " row " + i);
                }
            }
        }
    }

    /** The quants as floats, as the executor hands them to the four-entry kernel. */
    static float[] floats(short[] qx) {
        float[] f = new float[qx.length];
        for (int i = 0; i < qx.length; i++) {
            f[i] = qx[i];
        }
        return f;
    }

    private static void assertKernelsAgree(byte[] gguf, int rows, int n, short[] qx, float[] dx, int batch,
                                           String where) {
        byte[] tiled = tileByHand(gguf, rows, n);
        float[] want = new float[batch * rows];
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < rows; i++) {
                want[b * rows + i] = reference(gguf, n, i, qx, dx, b);
            }
        }
        float[] scalar = new float[batch * rows];
        Q8Tiles.matmul(tiled, 0, n, rows, 0, rows, qx, dx, batch, scalar, 0, rows);
        assertArrayEquals(want, scalar, "scalar vs reference, " + where);
        if (Kernels.vectorModulePresent()) {
            float[][] vector = Vectors.bothShapes(tiled, n, rows, 0, rows, qx, dx, batch, 0, rows);
            assertArrayEquals(want, vector[0], "512-bit kernel, " + where);
            assertArrayEquals(want, vector[1], "256-bit kernel, " + where);
            assertArrayEquals(want, vector[2], "the machine's kernel, " + where);
            assertArrayEquals(want, vector[3], "512-bit kernel one entry per pass, " + where);
        }
    }

    @Test
    void scalarAndVectorKernelsFollowTheDocumentedArithmeticBitForBit() {
        Random r = new Random(12);
        for (int rows : new int[] {8, 32, 45, 64, 100}) {
            for (int n : new int[] {32, 288, 1376}) {
                int batch = 9;
                String where = rows + " x " + n;
                byte[] m = Q8Blocks.quantizeMatrix(random(r, rows * n, 0.2f), 0, rows, n);
                float[] x = random(r, batch * n, 3f);
                short[] qx = new short[batch * n];
                float[] dx = new float[batch * n / 32];
                Q8Blocks.quantizeActivations(x, n, batch, n, qx, dx);
                assertKernelsAgree(m, rows, n, qx, dx, batch, "random " + where);
                // random bytes: every quant -128..127, arbitrary finite fp16 scales of either sign
                for (int at = 0; at < m.length; at += 34) {
                    for (int j = 2; j < 34; j++) {
                        m[at + j] = (byte) r.nextInt(256);
                    }
                    short h = HalfFloats.toHalf((float) (r.nextGaussian() * Math.pow(10, r.nextInt(9) - 6)));
                    m[at] = (byte) h;
                    m[at + 1] = (byte) (h >>> 8);
                }
                for (int i = 0; i < qx.length; i++) {
                    qx[i] = (short) (r.nextInt(255) - 127);
                }
                assertKernelsAgree(m, rows, n, qx, dx, batch, "random bytes " + where);
                // extremes: all -128 (the largest block sum, 32·128·127) or 127 against ±127; zero scales; dx = 0
                for (int at = 0; at < m.length; at += 34) {
                    Arrays.fill(m, at + 2, at + 34, (byte) ((at / 34) % 2 == 0 ? -128 : 127));
                    if ((at / 34) % 5 == 3) {
                        m[at] = 0;
                        m[at + 1] = 0;
                    }
                }
                for (int i = 0; i < qx.length; i++) {
                    qx[i] = (short) ((i / 32) % 2 == 0 ? -127 : 127);
                }
                for (int k = 0; k < dx.length; k += 4) {
                    dx[k] = 0f;
                }
                assertKernelsAgree(m, rows, n, qx, dx, batch, "extremes " + where);
            }
        }
    }

    /**
     * Two independent references: a double evaluation of the same quantized operands (tight) and a float dot product
     * of the dequantized weights with the unquantized activations (within the activation quantization bound).
     */
    private static void checkAgainstDoubles(Kernels k, int n, int rows, int batch, Random r) {
        float[] wf = random(r, rows * n, 0.05f);
        byte[] gguf = Q8Blocks.quantizeMatrix(wf, 0, rows, n);
        byte[] m = Q8Tiles.quantizeMatrix(wf, 0, rows, n);
        float[] x = random(r, batch * n, 1f);
        short[] qx = new short[batch * n];
        float[] dx = new float[batch * n / 32];
        Q8Blocks.quantizeActivations(x, n, batch, n, qx, dx);
        float[] out = new float[batch * rows];
        k.matmulQ8Tiled(m, 0, n, rows, 0, rows, qx, floats(qx), dx, batch, out, 0, rows);
        float[] row = new float[n];
        for (int i = 0; i < rows; i++) {
            Q8Blocks.dequantize(gguf, i * Q8Blocks.rowBytes(n), n, row, 0);
            for (int b = 0; b < batch; b++) {
                double sameOperands = 0;
                double mag = 0;
                double floatDot = 0;
                double bound = 0;
                for (int j = 0; j < n; j++) {
                    double xq = (double) dx[b * n / 32 + j / 32] * qx[b * n + j];
                    sameOperands += row[j] * xq;
                    mag += Math.abs(row[j] * xq);
                    floatDot += row[j] * x[b * n + j];
                    // activation quantization: at most half a step, plus the fp16 rounding of the step
                    bound += Math.abs(row[j]) * dx[b * n / 32 + j / 32] * (0.5 + 127.0 / 2048);
                }
                String where = k.name() + " n " + n + " row " + i + " entry " + b;
                assertEquals(sameOperands, out[b * rows + i], 1e-5 * mag + 1e-7, where);
                assertEquals(floatDot, out[b * rows + i], bound + 1e-5 * mag + 1e-7, where);
            }
        }
    }

    @Test
    void productMatchesDoublesAndTheDequantizedFloatDotProduct() {
        Random r = new Random(2);
        for (int n : new int[] {32, 96, 512, 1376}) {
            checkAgainstDoubles(new ScalarKernels(), n, 33, 3, r);
            if (Kernels.vectorModulePresent()) {
                checkAgainstDoubles(Kernels.create(true), n, 70, 2, r);
            }
        }
    }

    @Test
    void tileRangesAndOutputStridesSelectTheRightCells() {
        Random r = new Random(13);
        int rows = 100;
        int n = 64;
        int batch = 5;
        byte[] gguf = Q8Blocks.quantizeMatrix(random(r, rows * n, 1f), 0, rows, n);
        byte[] tiled = tileByHand(gguf, rows, n);
        float[] x = random(r, batch * n, 1f);
        short[] qx = new short[batch * n];
        float[] dx = new float[batch * n / 32];
        Q8Blocks.quantizeActivations(x, n, batch, n, qx, dx);
        int stride = 130; // outputs of entry b at outOff + b * stride
        int outOff = 5;
        for (int[] range : new int[][] {{0, 32}, {32, 96}, {64, 100}, {96, 100}, {0, 100}}) {
            float[] scalar = new float[outOff + batch * stride];
            Arrays.fill(scalar, Float.NaN);
            Q8Tiles.matmul(tiled, 0, n, rows, range[0], range[1], qx, dx, batch, scalar, outOff, stride);
            for (int b = 0; b < batch; b++) {
                for (int i = 0; i < stride; i++) {
                    float got = scalar[outOff + b * stride + i];
                    if (i >= range[0] && i < range[1]) {
                        assertEquals(reference(gguf, n, i, qx, dx, b), got, 0f, "row " + i);
                    } else {
                        assertEquals(Float.NaN, got, "untouched cell " + i + " of range " + Arrays.toString(range));
                    }
                }
            }
            if (Kernels.vectorModulePresent()) {
                float[][] vector = Vectors.bothShapes(tiled, n, rows, range[0], range[1], qx, dx, batch, outOff,
                        stride);
                for (float[] v : vector) {
                    assertArrayEquals(scalar, v, "range " + Arrays.toString(range));
                }
            }
        }
    }

    /**
     * Every fp16 scale pattern (subnormals, infinities, NaNs, both zeros) through the tile kernels, one per row, in both
     * 512-bit paths (four entries per pass and one): their scale decode is written out in each (Q8TiledKernel, HALVES).
     */
    @Test
    void everyScalePatternGivesTheScalarKernelsResult() {
        int rows = 65536;
        int n = 32;
        int batch = 5;
        Random r = new Random(17);
        byte[] gguf = new byte[rows * Q8Blocks.BLOCK_BYTES];
        for (int i = 0; i < rows; i++) {
            int at = i * Q8Blocks.BLOCK_BYTES;
            gguf[at] = (byte) i;
            gguf[at + 1] = (byte) (i >>> 8);
            for (int j = 2; j < Q8Blocks.BLOCK_BYTES; j++) {
                gguf[at + j] = (byte) r.nextInt(256);
            }
        }
        byte[] tiled = tileByHand(gguf, rows, n);
        short[] qx = new short[batch * n];
        for (int i = 0; i < qx.length; i++) {
            qx[i] = (short) (r.nextInt(255) - 127);
        }
        float[] dx = {0.75f, 1f, 3.5e-3f, 2f, 1e-5f};
        float[] scalar = new float[batch * rows];
        Q8Tiles.matmul(tiled, 0, n, rows, 0, rows, qx, dx, batch, scalar, 0, rows);
        if (Kernels.vectorModulePresent()) {
            float[][] vector = Vectors.bothShapes(tiled, n, rows, 0, rows, qx, dx, batch, 0, rows);
            for (int v = 0; v < vector.length; v++) {
                assertArrayEquals(scalar, vector[v], "kernel " + v);
            }
        }
    }

    @Test
    void vectorHalfDecodeGivesEveryHalfExactly() {
        if (!Kernels.vectorModulePresent()) {
            return;
        }
        float[][] got = Vectors.allHalves();
        for (int h = 0; h < 65536; h++) {
            int want = Float.floatToRawIntBits(HalfFloats.toFloat((short) h));
            for (float[] g : got) {
                assertEquals(want, Float.floatToRawIntBits(g[h]), "half 0x" + Integer.toHexString(h));
            }
        }
    }

    /** The Vector API calls, in their own class so that it loads only when the module is present. */
    private static final class Vectors {
        static float[][] bothShapes(byte[] tiled, int n, int rows, int r0, int r1, short[] qx, float[] dx, int batch,
                                    int outOff, int stride) {
            float[][] out = new float[4][outOff + batch * stride];
            for (float[] o : out) {
                Arrays.fill(o, Float.NaN);
            }
            // [0]: entries in fours (float block sums), [3]: one entry per pass (int block sums)
            Q8TiledKernel.matmulWide(tiled, 0, n, rows, r0, r1, qx, floats(qx), dx, batch, out[0], outOff, stride);
            Q8TiledKernel.matmulNarrow(tiled, 0, n, rows, r0, r1, qx, dx, batch, out[1], outOff, stride);
            Q8TiledKernel.matmul(tiled, 0, n, rows, r0, r1, qx, floats(qx), dx, batch, out[2], outOff, stride);
            Q8TiledKernel.matmulWide(tiled, 0, n, rows, r0, r1, qx, null, dx, batch, out[3], outOff, stride);
            return out;
        }

        /** Every fp16 pattern through {@link Q8TiledKernel#halfToFloat}, as sign-extended shorts (as loaded). */
        static float[][] allHalves() {
            float[][] out = new float[2][65536];
            int[][] lanes = {new int[16], new int[8]};
            jdk.incubator.vector.VectorSpecies<?>[] species = {
                jdk.incubator.vector.IntVector.SPECIES_512, jdk.incubator.vector.IntVector.SPECIES_256};
            for (int s = 0; s < 2; s++) {
                int[] l = lanes[s];
                for (int h = 0; h < 65536; h += l.length) {
                    for (int i = 0; i < l.length; i++) {
                        l[i] = (short) (h + i);
                    }
                    @SuppressWarnings("unchecked")
                    jdk.incubator.vector.VectorSpecies<Integer> sp =
                            (jdk.incubator.vector.VectorSpecies<Integer>) species[s];
                    Q8TiledKernel.halfToFloat(jdk.incubator.vector.IntVector.fromArray(sp, l, 0))
                            .intoArray(out[s], h);
                }
            }
            return out;
        }
    }
}
