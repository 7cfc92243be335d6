package io.spotserve.exec.cpu;

/**
 * The matrix products of one {@link StageShard}, split among the {@link WorkerPool}'s threads: float matrices in the
 * kernels' {@link PackedRows} layout (or plain rows), and Q8_0 block matrices ({@link Q8Tiles}) after quantizing the
 * activations per block into this object's scratch ({@link #qx}, {@link #dx}). The task objects are reused, so a step
 * allocates nothing per call. Not thread-safe: one step at a time, as the shard.
 */
final class ShardMatmul {
    /** Below this many multiply-adds a product runs on the calling thread alone. */
    static final int PARALLEL_MIN_MACS = 1 << 16;

    private final Kernels kernels;
    private final WorkerPool pool;
    /** {@link PackedRows} lanes of the kernels (0: plain rows, the scalar kernels' layout). */
    private final int lanes;
    private final int packMinColumns;
    /** Quantized activations of the current Q8_0 product: quants [batch][n] and per-block scales (null: no Q8_0). */
    final short[] qx;
    final float[] dx;
    /**
     * The quants of {@link #qx} as floats when the current product has at least {@link #FLOAT_QUANTS_MIN_BATCH}
     * entries, else null: the vector kernel then runs four entries per pass over each tile.
     */
    float[] qf;
    private final float[] qfStore;
    /** Entries from which a Q8_0 product gets its quants as floats too. */
    static final int FLOAT_QUANTS_MIN_BATCH = 4;

    private final MatmulTask matmul = new MatmulTask();
    private final PackedMatmulTask packedMatmul = new PackedMatmulTask();
    private final Q8MatmulTask q8Matmul = new Q8MatmulTask();

    /**
     * @param packMinColumns matrices with fewer columns stay in plain rows even for the vector kernels
     * @param maxQ8Columns   the widest Q8_0 matrix's columns (0 when the shard keeps none)
     */
    ShardMatmul(Kernels kernels, WorkerPool pool, int packMinColumns, int maxBatch, int maxQ8Columns) {
        this.kernels = kernels;
        this.pool = pool;
        this.lanes = kernels.packLanes();
        this.packMinColumns = packMinColumns;
        qx = maxQ8Columns > 0 ? new short[maxBatch * maxQ8Columns] : null;
        dx = maxQ8Columns > 0 ? new float[maxBatch * (maxQ8Columns / Q8Blocks.BLOCK)] : null;
        qfStore = maxQ8Columns > 0 && maxBatch >= FLOAT_QUANTS_MIN_BATCH ? new float[maxBatch * maxQ8Columns] : null;
    }

    /** {@link PackedRows} lanes of a float layer matrix of {@code n} columns. */
    int lanesFor(int n) {
        return n >= packMinColumns ? lanes : 0;
    }

    /** Quantizes {@code count} activation vectors of {@code n} floats into {@link #qx} / {@link #dx}. */
    void quantize(float[] x, int xStride, int count, int n) {
        kernels.quantizeQ8(x, xStride, count, n, qx, dx);
        qf = null;
        if (count >= FLOAT_QUANTS_MIN_BATCH && qfStore != null) {
            short[] q = qx;
            float[] f = qfStore;
            for (int i = 0, end = count * n; i < end; i++) {
                f[i] = q[i];
            }
            qf = f;
        }
    }

    /**
     * A Q8_0 matrix in {@link Q8Tiles} times {@code count} activation vectors (quantized here first), split
     * among threads by whole tiles.
     */
    void q8(byte[] w, int wOff, int n, int rows, float[] x, int xStride, int count, float[] out, int outStride) {
        quantize(x, xStride, count, n);
        Q8MatmulTask t = q8Matmul;
        t.w = w;
        t.wOff = wOff;
        t.n = n;
        t.rows = rows;
        t.batch = count;
        t.out = out;
        t.outStride = outStride;
        pool.parallelFor((rows + Q8Tiles.ROWS - 1) / Q8Tiles.ROWS, (long) rows * n * count >= PARALLEL_MIN_MACS, t);
        t.w = null;
        t.out = null;
    }

    /** Whole tiles of one Q8_0 matmul per chunk, on the quantized activations. */
    private final class Q8MatmulTask implements WorkerPool.Body {
        byte[] w;
        int wOff;
        int n;
        int rows;
        int batch;
        float[] out;
        int outStride;

        @Override
        public void run(int worker, int from, int to) {
            kernels.matmulQ8Tiled(w, wOff, n, rows, from * Q8Tiles.ROWS, Math.min(rows, to * Q8Tiles.ROWS), qx, qf,
                    dx, batch, out, 0, outStride);
        }
    }

    /** A float layer matrix: in the kernels' {@link PackedRows} layout, split among threads by whole row groups. */
    void layer(float[] w, int wOff, int n, int rows, float[] x, int xStride, int count, float[] out, int outStride) {
        int lanes = lanesFor(n);
        if (lanes == 0) {
            plain(w, wOff, n, rows, x, xStride, count, out, outStride);
            return;
        }
        PackedMatmulTask t = packedMatmul;
        t.w = w;
        t.wOff = wOff;
        t.n = n;
        t.rows = rows;
        t.x = x;
        t.xStride = xStride;
        t.batch = count;
        t.out = out;
        t.outStride = outStride;
        int g = PackedRows.blockRows(lanes);
        pool.parallelFor((rows + g - 1) / g, (long) rows * n * count >= PARALLEL_MIN_MACS, t);
        t.w = null;
        t.x = null;
        t.out = null;
    }

    /** Packed row blocks of one matmul per chunk. */
    private final class PackedMatmulTask implements WorkerPool.Body {
        float[] w;
        int wOff;
        int n;
        int rows;
        float[] x;
        int xStride;
        int batch;
        float[] out;
        int outStride;

        @Override
        public void run(int worker, int from, int to) {
            int g = PackedRows.blockRows(lanesFor(n));
            kernels.matmulPacked(w, wOff, n, rows, from * g, Math.min(rows, to * g), x, xStride, batch, out, 0,
                    outStride);
        }
    }

    /** A plain row-major float matrix, split among threads by rows. */
    void plain(float[] w, int wOff, int n, int rows, float[] x, int xStride, int count, float[] out, int outStride) {
        MatmulTask t = matmul;
        t.w = w;
        t.wOff = wOff;
        t.n = n;
        t.x = x;
        t.xStride = xStride;
        t.batch = count;
        t.out = out;
        t.outStride = outStride;
        pool.parallelFor(rows, (long) rows * n * count >= PARALLEL_MIN_MACS, t);
        t.w = null;
        t.x = null;
        t.out = null;
    }

    /** Rows of one plain matmul per chunk. */
    private final class MatmulTask implements WorkerPool.Body {
        float[] w;
        int wOff;
        int n;
        float[] x;
        int xStride;
        int batch;
        float[] out;
        int outStride;

        @Override
        public void run(int worker, int from, int to) {
            kernels.matmul(w, wOff, n, from, to, x, xStride, batch, out, 0, outStride);
        }
    }
}
