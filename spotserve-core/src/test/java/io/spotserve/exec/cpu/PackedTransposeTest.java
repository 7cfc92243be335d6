package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The blocked transpose that moves rows of a {@link PackedRows} block ({@link CanonFloats#block},
 * {@link PackedRows#segments}): the vector squares equal the scalar ones and a brute-force transpose on random
 * shapes, and the block path copies exactly what the row-by-row strided path ({@link PackedRows#segment}) copies, for
 * random matrices (rows not a multiple of the block), column ranges, row runs and windows of the canonical floats
 * (starting and ending inside rows and blocks), into and out of arrays, heap and direct buffers.
 */
class PackedTransposeTest {
    @Test
    void vectorSquaresEqualScalarSquaresAndBruteForce() {
        assertTrue(CanonFloats.VECTOR, "the tests run with the Vector API module, so the vector squares must be used");
        Random rnd = new Random(13);
        for (int trial = 0; trial < 300; trial++) {
            int g = 4 << rnd.nextInt(5);                 // 4 .. 64
            int rows = 1 + rnd.nextInt(g);
            int cols = 1 + rnd.nextInt(150);
            int sOff = rnd.nextInt(9);
            int dOff = rnd.nextInt(9);
            int dStride = cols + rnd.nextInt(6);
            boolean importing = rnd.nextBoolean();
            float[] s = random(rnd, sOff + g * cols + 8);
            float[] d = random(rnd, dOff + rows * dStride + 8);
            float[] sScalar = s.clone();
            float[] dScalar = d.clone();
            float[] sBrute = s.clone();
            float[] dBrute = d.clone();
            for (int i = 0; i < rows; i++) {
                for (int k = 0; k < cols; k++) {
                    if (importing) {
                        sBrute[sOff + i + k * g] = dBrute[dOff + i * dStride + k];
                    } else {
                        dBrute[dOff + i * dStride + k] = sBrute[sOff + i + k * g];
                    }
                }
            }
            CanonFloats.transpose(s, sOff, g, rows, cols, d, dOff, dStride, importing);
            assertArrayEquals(sBrute, s, "store, trial " + trial);
            assertArrayEquals(dBrute, d, "canonical floats, trial " + trial);
            int rows4 = rows & ~3;
            int cols4 = cols & ~3;
            float[] sVector = sScalar.clone();
            float[] dVector = dScalar.clone();
            CanonFloats.scalarSquares(sScalar, sOff, g, rows4, cols4, dScalar, dOff, dStride, importing);
            VectorTranspose.squares(sVector, sOff, g, rows4, cols4, dVector, dOff, dStride, importing,
                    4 * (1 + rnd.nextInt(20)));
            assertArrayEquals(sScalar, sVector, "store, trial " + trial);
            assertArrayEquals(dScalar, dVector, "canonical floats, trial " + trial);
        }
    }

    @Test
    void segmentsCopyWhatRowByRowSegmentsCopy() {
        Random rnd = new Random(7);
        for (int trial = 0; trial < 400; trial++) {
            int lanes = new int[] {0, 1, 2, 4, 8, 16}[rnd.nextInt(6)];
            int g = Math.max(1, PackedRows.blockRows(lanes));
            int rows = 1 + rnd.nextInt(3 * g + 5);          // rarely a multiple of the block
            int n = 1 + rnd.nextInt(140);
            int matOff = rnd.nextInt(7);
            int r0 = rnd.nextInt(rows);
            int count = 1 + rnd.nextInt(rows - r0);
            int j0 = rnd.nextInt(n);
            int len = 1 + rnd.nextInt(n - j0);
            int canonOff = rnd.nextInt(11);
            int total = canonOff + count * len;
            float[] store = random(rnd, matOff + rows * n + 3);
            // a window of the canonical floats (a piece of a slice), or all of them
            boolean window = rnd.nextInt(4) != 0;
            int from = window ? rnd.nextInt(total) : 0;
            int to = window ? from + 1 + rnd.nextInt(total - from) : total;
            boolean direct = rnd.nextBoolean();

            // export: block path vs row by row, into buffers (or arrays) that start out equal
            FloatBuffer byBlock = buffer(direct, to - from, rnd.nextLong());
            FloatBuffer byRows = copyOf(byBlock, direct);
            float[] arrBlock = random(rnd, total);
            float[] arrRows = arrBlock.clone();
            PackedRows.segments(store, matOff, rows, n, lanes, r0, count, j0, canon(window, byBlock, from, arrBlock),
                    canonOff, len, false);
            CanonFloats ref = canon(window, byRows, from, arrRows);
            for (int r = 0; r < count; r++) {
                PackedRows.segment(store, matOff, rows, n, lanes, r0 + r, j0, ref, canonOff + r * len, len, false);
            }
            String what = "trial " + trial + " lanes " + lanes + " rows " + rows + " n " + n + " rows " + r0 + "+"
                    + count + " cols " + j0 + "+" + len + " window " + from + ".." + to;
            if (window) {
                assertEquals(byRows, byBlock, "export " + what);
            } else {
                assertArrayEquals(arrRows, arrBlock, "export " + what);
            }

            // import: the same canonical floats into two equal stores
            float[] storeBlock = store.clone();
            float[] storeRows = store.clone();
            FloatBuffer src = buffer(direct, to - from, rnd.nextLong());
            float[] srcArr = random(rnd, total);
            PackedRows.segments(storeBlock, matOff, rows, n, lanes, r0, count, j0, canon(window, src, from, srcArr),
                    canonOff, len, true);
            ref = canon(window, src, from, srcArr);
            for (int r = 0; r < count; r++) {
                PackedRows.segment(storeRows, matOff, rows, n, lanes, r0 + r, j0, ref, canonOff + r * len, len, true);
            }
            assertArrayEquals(storeRows, storeBlock, "import " + what);
        }
    }

    private static CanonFloats canon(boolean window, FloatBuffer buffer, int from, float[] array) {
        return window ? CanonFloats.window(buffer, from) : CanonFloats.of(array);
    }

    private static float[] random(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = rnd.nextFloat() - 0.5f;
        }
        return a;
    }

    private static FloatBuffer buffer(boolean direct, int n, long seed) {
        Random rnd = new Random(seed);
        FloatBuffer b = direct ? ByteBuffer.allocateDirect(4 * n).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
                : FloatBuffer.allocate(n);
        for (int i = 0; i < n; i++) {
            b.put(i, rnd.nextFloat() - 0.5f);
        }
        return b;
    }

    private static FloatBuffer copyOf(FloatBuffer b, boolean direct) {
        FloatBuffer c = buffer(direct, b.limit(), 0);
        for (int i = 0; i < b.limit(); i++) {
            c.put(i, b.get(i));
        }
        return c;
    }
}
