package io.spotserve.exec.cpu;

import io.spotserve.exec.spi.HalfFloats;

/**
 * A {@code rows × n} weight matrix kept in GGUF's Q8_0 form: each row is {@code n / 32} blocks of 32 signed bytes
 * {@code q} with one scale {@code d} (an fp16 value, held as the float it rounds to), element = {@code d · q}. One
 * byte per weight instead of four: decode is memory-bound, so this is the CPU's cheap-memory format.
 *
 * <p>The product with an activation vector follows llama.cpp's Q8_0 × Q8_0 scheme: the activation is quantized per
 * block of 32 the same way ({@link #quantizeActivation}), each block's integer dot product
 * {@code Σ qw·qx} is exact in int arithmetic, and the row result is {@code Σ_b (dw_b · dx_b) · isum_b} accumulated
 * block by block in float, in block order. Only the integer part is vectorized, so the Vector API kernel
 * ({@code Q8VectorKernel}) and {@link #matmulScalar} give bit-identical results.
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

    /**
     * Rows {@code [r0, r1)} times the quantized activations: {@code out[outOff + b·outStride + r]} for each batch
     * entry b. Plain loops; the reference the vector kernel equals bit for bit.
     */
    void matmulScalar(int r0, int r1, byte[] qx, float[] dx, int batch, float[] out, int outOff, int outStride) {
        int blocks = n / BLOCK;
        for (int r = r0; r < r1; r++) {
            int wq = r * n;
            int wd = r * blocks;
            for (int b = 0; b < batch; b++) {
                int xq = b * n;
                int xd = b * blocks;
                float sum = 0f;
                for (int k = 0; k < blocks; k++) {
                    int isum = 0;
                    int base = k * BLOCK;
                    for (int j = 0; j < BLOCK; j++) {
                        isum += q[wq + base + j] * qx[xq + base + j];
                    }
                    sum += (d[wd + k] * dx[xd + k]) * isum;
                }
                out[outOff + b * outStride + r] = sum;
            }
        }
    }
}
