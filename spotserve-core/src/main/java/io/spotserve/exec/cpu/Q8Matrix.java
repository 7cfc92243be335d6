package io.spotserve.exec.cpu;

import io.spotserve.model.HalfFloats;

/**
 * A {@code rows × n} weight matrix kept in GGUF's Q8_0 form: each row is {@code n / 32} blocks of 32 signed bytes
 * {@code q} with one scale {@code d} (an fp16 value, held as the float it rounds to), element = {@code d · q}. One
 * byte per weight instead of four: decode is memory-bound, so this is the CPU's cheap-memory format.
 *
 * <p>The product with an activation vector follows llama.cpp's Q8_0 × Q8_0 scheme: the activation is quantized per
 * block of 32 the same way ({@link #quantizeActivation}); the integer products are exact, and the float part runs
 * in 16 lane accumulators in a fixed order ({@link #matmulScalar} spells it out) that the Vector API kernel
 * ({@code Q8VectorKernel}) follows lane for lane, so the two give bit-identical results.
 */
final class Q8Matrix {
    static final int BLOCK = 32;

    final int rows;
    final int n;
    final byte[] q;
    final float[] d;

    Q8Matrix(int rows, int n, byte[] q, float[] d) {
        if (n % BLOCK != 0) {
            throw new IllegalArgumentException("Q8_0 rows need a multiple of " + BLOCK + " columns, got " + n);
        }
        if (q.length != (long) rows * n || d.length != (long) rows * (n / BLOCK)) {
            throw new IllegalArgumentException("Q8_0 " + rows + " x " + n + " needs " + (long) rows * n + " quants and "
                    + (long) rows * (n / BLOCK) + " scales, got " + q.length + " and " + d.length);
        }
        this.rows = rows;
        this.n = n;
        this.q = q;
        this.d = d;
    }

    /** Quantizes row-major floats as llama.cpp's reference quantizer does (scale amax / 127, fp16-rounded). */
    static Q8Matrix quantize(float[] w, int off, int rows, int n) {
        byte[] q = new byte[Math.multiplyExact(rows, n)];
        float[] d = new float[rows * (n / BLOCK)];
        for (int r = 0; r < rows; r++) {
            quantizeRow(w, off + r * n, n, q, r * n, d, r * (n / BLOCK));
        }
        return new Q8Matrix(rows, n, q, d);
    }

    /** Quantizes {@code n} floats into blocks: quants at {@code q[qOff..]}, scales at {@code d[dOff..]}. */
    static void quantizeRow(float[] x, int xOff, int n, byte[] q, int qOff, float[] d, int dOff) {
        for (int b = 0; b < n / BLOCK; b++) {
            float amax = 0;
            for (int j = 0; j < BLOCK; j++) {
                amax = Math.max(amax, Math.abs(x[xOff + b * BLOCK + j]));
            }
            float scale = amax / 127f;
            float inv = scale != 0 ? 1f / scale : 0f;
            d[dOff + b] = HalfFloats.round(scale);
            for (int j = 0; j < BLOCK; j++) {
                q[qOff + b * BLOCK + j] = (byte) Math.round(x[xOff + b * BLOCK + j] * inv);
            }
        }
    }

    /** The activation side: {@code batch} vectors of {@code n} floats quantized per block (llama.cpp's q8_0 of x). */
    static void quantizeActivation(float[] x, int xStride, int batch, int n, byte[] qx, float[] dx) {
        for (int b = 0; b < batch; b++) {
            quantizeRow(x, b * xStride, n, qx, b * n, dx, b * (n / BLOCK));
        }
    }

    /** Element (r, j) as a float. */
    float get(int r, int j) {
        return d[r * (n / BLOCK) + j / BLOCK] * q[r * n + j];
    }

    /** Lanes of the per-row float accumulator (the vector kernel's 16 int lanes; the scalar loop mirrors them). */
    static final int LANES = 16;

    /**
     * Rows {@code [r0, r1)} times the quantized activations: {@code out[outOff + b·outStride + r]} for each batch
     * entry b. Plain loops in the vector kernel's exact order: lane {@code l < 16} of block k holds the exact integer
     * {@code qw[l]·qx[l] + qw[l+16]·qx[l+16]}, is scaled by {@code dw_k · dx_k} and added to float accumulator
     * {@code l}; the 16 accumulators are summed in lane order at the end of the row.
     */
    void matmulScalar(int r0, int r1, byte[] qx, float[] dx, int batch, float[] out, int outOff, int outStride) {
        int blocks = n / BLOCK;
        float[] acc = new float[LANES];
        for (int r = r0; r < r1; r++) {
            int wq = r * n;
            int wd = r * blocks;
            for (int b = 0; b < batch; b++) {
                int xq = b * n;
                int xd = b * blocks;
                java.util.Arrays.fill(acc, 0f);
                for (int k = 0; k < blocks; k++) {
                    int base = k * BLOCK;
                    float scale = d[wd + k] * dx[xd + k];
                    for (int l = 0; l < LANES; l++) {
                        int lane = q[wq + base + l] * qx[xq + base + l]
                                + q[wq + base + l + LANES] * qx[xq + base + l + LANES];
                        acc[l] = acc[l] + (float) lane * scale;
                    }
                }
                out[outOff + b * outStride + r] = sumLanes(acc);
            }
        }
    }

    /** The accumulators summed in lane order (both kernels use this). */
    static float sumLanes(float[] acc) {
        float s = 0f;
        for (int l = 0; l < LANES; l++) {
            s += acc[l];
        }
        return s;
    }
}
