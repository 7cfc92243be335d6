package io.spotserve.exec.cpu;

/**
 * The CPU executor's storage of a Q8_0 layer matrix: the GGUF blocks of {@link Q8Blocks} (an fp16 scale and 32
 * signed quants per 32 weights), regrouped in tiles of {@link #ROWS} consecutive rows so that a vector lane is a row.
 * Rows {@code [t, t + w)} of a tile ({@code w} = 32, or fewer in the matrix's last tile) keep, per block column k, one
 * region of {@code 34·w} bytes: quant j of the tile's row i at {@code 32·0 + j·w + i} (quant j of every row side by
 * side), then the w scales as little-endian fp16 at {@code 32·w + 2·i}. A tile is {@code w} rows of
 * {@link Q8Blocks#rowBytes} bytes, so the matrix takes exactly the bytes of its GGUF rows and a tile starts where its
 * first row would: only the order inside a tile differs.
 *
 * <p>Why: a product with a row-major block needs a horizontal sum per row and block (the 32 products of one row lie
 * in one vector); with the rows side by side, one vector multiply-add covers a quant column of 16 (or 8) rows, the
 * integer block sums build up lane by lane, and each block ends with one fused multiply-add per row. On JDK 17 (no
 * byte dot-product instruction in the Vector API) this runs the 25M model's layer products in about 0.55–0.6 of the
 * time of the row-major kernel (session 13, notes/q8-decode.md).
 *
 * <p>The arithmetic, which {@code Q8TiledKernel} follows lane for lane so the two are bit-identical: per row and
 * block the exact integer {@code Σ_j qw[j]·qx[j]} (|sum| ≤ 32·128·127 < 2^24, so exact as a float), then
 * {@code acc = fma(sum, dw · dx, acc)} over the blocks in order, from {@code acc = 0}; the row's output is acc.
 */
final class Q8Tiles {
    /** Rows per tile: the lanes of two 512-bit int vectors (four 256-bit ones). */
    static final int ROWS = 32;

    private Q8Tiles() {
    }

    /** Byte offset of the tile holding row {@code r} of the {@code n}-column matrix at {@code matOff}. */
    static int tileAt(int matOff, int n, int r) {
        return matOff + (r - r % ROWS) * Q8Blocks.rowBytes(n);
    }

    /** Rows of the tile holding row {@code r} of a matrix of {@code rows} rows. */
    static int width(int rows, int r) {
        return Math.min(ROWS, rows - (r - r % ROWS));
    }

    /** Byte offset of block column {@code k}'s region in a tile of {@code width} rows starting at {@code tile}. */
    static int regionAt(int tile, int width, int k) {
        return tile + k * Q8Blocks.BLOCK_BYTES * width;
    }

    /**
     * Quantizes blocks {@code [k0, k0 + blocks)} of row {@code r} (the floats at {@code x[xOff..]}, 32 per block) into
     * the tiled matrix, each block as {@link Q8Blocks#quantize} writes it.
     */
    static void quantizeRow(float[] x, int xOff, byte[] q, int matOff, int rows, int n, int r, int k0, int blocks) {
        int tile = tileAt(matOff, n, r);
        int w = width(rows, r);
        int i = r % ROWS;
        for (int k = k0; k < k0 + blocks; k++) {
            int region = regionAt(tile, w, k);
            Q8Blocks.quantizeWeightBlock(x, xOff + (k - k0) * Q8Blocks.BLOCK, q, region + Q8Blocks.BLOCK * w + 2 * i,
                    region + i, w);
        }
    }

    /** Quantizes a {@code rows × n} row-major float matrix into a new tiled byte array. */
    static byte[] quantizeMatrix(float[] w, int off, int rows, int n) {
        if (!Q8Blocks.aligned(n)) {
            throw new IllegalArgumentException("Q8_0 rows need a multiple of " + Q8Blocks.BLOCK + " columns, got " + n);
        }
        byte[] out = new byte[Math.toIntExact(Q8Blocks.matrixBytes(rows, n))];
        for (int r = 0; r < rows; r++) {
            quantizeRow(w, off + r * n, out, 0, rows, n, r, 0, n / Q8Blocks.BLOCK);
        }
        return out;
    }

    /** Dequantizes blocks {@code [k0, k0 + blocks)} of row {@code r} into {@code dst[dstOff..]}, 32 floats per block. */
    static void dequantizeRow(byte[] q, int matOff, int rows, int n, int r, int k0, int blocks, float[] dst,
                              int dstOff) {
        int tile = tileAt(matOff, n, r);
        int w = width(rows, r);
        int i = r % ROWS;
        for (int k = k0; k < k0 + blocks; k++) {
            int region = regionAt(tile, w, k);
            Q8Blocks.dequantizeWeightBlock(q, region + Q8Blocks.BLOCK * w + 2 * i, region + i, w, dst,
                    dstOff + (k - k0) * Q8Blocks.BLOCK);
        }
    }

    /**
     * Rows {@code [r0, r1)} of the tiled {@code rows × n} matrix at {@code w[wOff..]} times the quantized activations
     * ({@link Q8Blocks#quantizeActivations}): {@code out[outOff + b·outStride + r]} for each entry b, with the
     * arithmetic of the class comment. The scalar reference of {@code Q8TiledKernel}.
     */
    static void matmul(byte[] w, int wOff, int n, int rows, int r0, int r1, short[] qx, float[] dx, int batch,
                       float[] out, int outOff, int outStride) {
        int blocks = n / Q8Blocks.BLOCK;
        for (int r = r0; r < r1; r++) {
            int tile = tileAt(wOff, n, r);
            int width = width(rows, r);
            int i = r % ROWS;
            for (int b = 0; b < batch; b++) {
                int xq = b * n;
                int xd = b * blocks;
                float acc = 0f;
                for (int k = 0; k < blocks; k++) {
                    int region = regionAt(tile, width, k);
                    int xa = xq + k * Q8Blocks.BLOCK;
                    int sum = 0;
                    for (int j = 0; j < Q8Blocks.BLOCK; j++) {
                        sum += w[region + j * width + i] * qx[xa + j];
                    }
                    float s = Q8Blocks.scale(w, region + Q8Blocks.BLOCK * width + 2 * i) * dx[xd + k];
                    acc = Math.fma((float) sum, s, acc);
                }
                out[outOff + b * outStride + r] = acc;
            }
        }
    }
}
