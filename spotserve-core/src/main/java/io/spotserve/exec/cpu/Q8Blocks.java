package io.spotserve.exec.cpu;

import io.spotserve.model.HalfFloats;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Matrices kept in GGUF's Q8_0 form, byte for byte: each row of {@code n} weights is {@code n / 32} blocks of
 * {@link #BLOCK_BYTES} = 34 bytes, an fp16 scale {@code d} (little-endian) then 32 signed bytes {@code q}, weight =
 * {@code d · q}. One byte and a sixteenth per weight instead of four: decode is memory-bound, so this is the CPU's
 * cheap-memory format. The bytes of a row are exactly the bytes of that row in a Q8_0 GGUF tensor.
 * The CPU executor keeps the embedding and classifier rows this way; its layer matrices hold the same blocks
 * regrouped in tiles of 32 rows ({@link Q8Tiles}), whose product sums each block's integers per row.
 *
 * <p>The activation side of a product follows llama.cpp's Q8_0 × Q8_0 scheme (and llama2.c's runq.c): each activation
 * vector is quantized per block of 32 the same way ({@link #quantizeActivations}: scale amax / 127 rounded to fp16,
 * quants rounded to nearest, so in [-127, 127]; kept as shorts). The product itself, and the arithmetic it follows,
 * is {@link Q8Tiles#matmul}. Compared with a float dot product of the dequantized weights, the only extra error is
 * the activation's quantization: at most {@code dx · (1/2 + 127/2048)} per element (half a step, plus the fp16
 * rounding of the step).
 */
final class Q8Blocks {
    /** Weights per block. */
    static final int BLOCK = 32;
    /** Bytes per block: the fp16 scale and 32 quants. */
    static final int BLOCK_BYTES = 34;
    /** Every fp16 bit pattern's float value: a block scale is one table load instead of a decode per block. */
    private static final float[] HALF = new float[1 << 16];
    /** Little-endian shorts read straight out of the block bytes. */
    private static final VarHandle LE_SHORT = MethodHandles.byteArrayViewVarHandle(short[].class,
            ByteOrder.LITTLE_ENDIAN);

    static {
        for (int h = 0; h < HALF.length; h++) {
            HALF[h] = HalfFloats.toFloat((short) h);
        }
    }

    private Q8Blocks() {
    }

    /** Whether {@code n} weights fill whole blocks. */
    static boolean aligned(long n) {
        return n % BLOCK == 0;
    }

    /** Bytes of a row of {@code n} weights ({@code n} a multiple of 32). */
    static int rowBytes(int n) {
        return n / BLOCK * BLOCK_BYTES;
    }

    /** Bytes of a {@code rows × n} matrix. */
    static long matrixBytes(long rows, int n) {
        return rows * rowBytes(n);
    }

    /**
     * The scale of the block whose bytes start at {@code w[at]}: its fp16 value, exactly ({@link HalfFloats#toFloat}
     * of every half, tabulated). A table load rather than the bit decode: in the vector kernel's inner loop the
     * scalar decode of each block's scale cost about as much as the block's 32 multiply-adds (0.166 vs 0.112 ms for
     * one 25M layer's matrices, AMD EPYC, JDK 17).
     */
    static float scale(byte[] w, int at) {
        return HALF[(short) LE_SHORT.get(w, at) & 0xffff];
    }

    /**
     * Quantizes {@code n} floats ({@code n} a multiple of 32) into blocks at {@code dst[at..]} as llama.cpp's
     * reference quantizer does: scale amax / 127 stored as fp16, quants {@code round(x · 127 / amax)}. Requantizing
     * the dequantized values of a block written this way gives back the same bytes.
     */
    static void quantize(float[] x, int xOff, int n, byte[] dst, int at) {
        for (int k = 0; k < n / BLOCK; k++, at += BLOCK_BYTES) {
            quantizeWeightBlock(x, xOff + k * BLOCK, dst, at, at + 2, 1);
        }
    }

    /**
     * One block of {@link #quantize}: the 32 floats at {@code x[base..]}, the fp16 scale to {@code dst[scaleAt..]}
     * and quant j to {@code dst[quantAt + j·stride]} (stride 1 in a GGUF row, the tile's width in {@link Q8Tiles}).
     */
    static void quantizeWeightBlock(float[] x, int base, byte[] dst, int scaleAt, int quantAt, int stride) {
        float amax = 0;
        for (int j = 0; j < BLOCK; j++) {
            amax = Math.max(amax, Math.abs(x[base + j]));
        }
        float d = amax / 127f;
        float inv = d != 0 ? 1f / d : 0f;
        short h = HalfFloats.toHalf(d);
        dst[scaleAt] = (byte) h;
        dst[scaleAt + 1] = (byte) (h >>> 8);
        for (int j = 0; j < BLOCK; j++) {
            dst[quantAt + j * stride] = (byte) Math.round(x[base + j] * inv);
        }
    }

    /** Dequantizes {@code n} weights ({@code n} a multiple of 32) from blocks at {@code src[at..]} into {@code dst}. */
    static void dequantize(byte[] src, int at, int n, float[] dst, int dstOff) {
        for (int k = 0; k < n / BLOCK; k++, at += BLOCK_BYTES) {
            dequantizeWeightBlock(src, at, at + 2, 1, dst, dstOff + k * BLOCK);
        }
    }

    /** One block of {@link #dequantize}: scale at {@code src[scaleAt..]}, quant j at {@code src[quantAt + j·stride]}. */
    static void dequantizeWeightBlock(byte[] src, int scaleAt, int quantAt, int stride, float[] dst, int o) {
        float d = scale(src, scaleAt);
        for (int j = 0; j < BLOCK; j++) {
            dst[o + j] = d * src[quantAt + j * stride];
        }
    }

    /** Quantizes a {@code rows × n} row-major float matrix into a new byte array. */
    static byte[] quantizeMatrix(float[] w, int off, int rows, int n) {
        if (!aligned(n)) {
            throw new IllegalArgumentException("Q8_0 rows need a multiple of " + BLOCK + " columns, got " + n);
        }
        byte[] out = new byte[Math.toIntExact(matrixBytes(rows, n))];
        for (int r = 0; r < rows; r++) {
            quantize(w, off + r * n, n, out, r * rowBytes(n));
        }
        return out;
    }

    /**
     * The activation side: {@code batch} vectors of {@code n} floats (entry b at {@code x[b·xStride]}) quantized per
     * block as the weights are (llama.cpp's q8_0 of x), quants into {@code qx[b·n ..]}, scales (fp16 values, as
     * floats) into {@code dx[b·n/32 ..]}. The quants are in [-127, 127] (the kernels rely on it: a pair of products
     * with a -128 weight still fits a short).
     */
    static void quantizeActivations(float[] x, int xStride, int batch, int n, short[] qx, float[] dx) {
        int blocks = n / BLOCK;
        for (int b = 0; b < batch; b++) {
            for (int k = 0; k < blocks; k++) {
                quantizeBlock(x, b * xStride + k * BLOCK, qx, b * n + k * BLOCK, dx, b * blocks + k);
            }
        }
    }

    /** One activation block of {@link #quantizeActivations}: 32 floats at {@code x[base..]}, quants at {@code qx[q..]}. */
    static void quantizeBlock(float[] x, int base, short[] qx, int q, float[] dx, int d0) {
        float amax = 0;
        for (int j = 0; j < BLOCK; j++) {
            amax = Math.max(amax, Math.abs(x[base + j]));
        }
        float d = amax / 127f;
        float inv = d != 0 ? 1f / d : 0f;
        dx[d0] = HalfFloats.round(d);
        for (int j = 0; j < BLOCK; j++) {
            qx[q + j] = (short) Math.round(x[base + j] * inv);
        }
    }
}
