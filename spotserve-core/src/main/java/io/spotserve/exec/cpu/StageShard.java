package io.spotserve.exec.cpu;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.spi.PipelinePosition;
import io.spotserve.exec.spi.WeightCoverage;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelWeights;
import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.Map;

/**
 * The state and the compute of one pipeline position (stage p, shard m): its weight slices and KV-cache
 * slices, allocated from its device, and its part of every layer of the stage. This is the hot-path file of
 * the CPU executor.
 *
 * <p>Storage, allocated from the device arena on first import: the weights in {@link ShardWeights} (per local layer
 * a float block rms_att | rms_ffn | wqkv | wo | w13 | w2, the matrices in the kernels' {@link PackedRows} layout; with
 * {@link io.spotserve.exec.WeightPrecision#Q8_0} weights the matrices that fall on whole 32-weight blocks move to a
 * byte block of GGUF Q8_0 blocks, see there), and per open sequence K and V for every local layer,
 * [layer][K|V][capacity][hkv·hs]. Matrix products run through {@link ShardMatmul}: float kernels, or for Q8_0 blocks
 * the activations quantized per block and {@link Kernels#matmulQ8}.
 *
 * <p>The forward math mirrors llama2.c's run.c: RMSNorm (eps 1e-5, float sum of squares), RoPE per pair with
 * frequency 1/10000^(i/hs), grouped-query attention with scores divided by sqrt(hs) and a max-shifted
 * softmax, SwiGLU FFN. Partial outputs of wo and w2 are left in {@link #part} for the pipeline's all-reduce.
 */
final class StageShard implements PipelinePosition {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(StageShard.class);
    private static final int QKV = ShardWeights.QKV;
    private static final int WO = ShardWeights.WO;
    private static final int W13 = ShardWeights.W13;
    private static final int W2 = ShardWeights.W2;
    private static final int PARALLEL_MIN_MACS = ShardMatmul.PARALLEL_MIN_MACS;
    /**
     * Hidden units per w1/w3 block of the fused up-projection: 2·32 rows, a multiple of the packed blocks
     * ({@link PackedRows#blockRows}: 64 rows with AVX-512, 32 with AVX2), so unit blocks start on packed blocks.
     */
    static final int UNIT_BLOCK = 32;

    /** One sequence's KV cache on this position. */
    private record Kv(float[] data, int capacity) {
    }

    final CpuDevice device;
    final LlamaConfig c;
    final int stage;
    final int shard;
    final IndexRange layers;
    final IndexRange heads;
    final IndexRange kvHeads;
    final IndexRange hidden;
    final IndexRange vocab;
    final boolean first;
    final boolean last;

    final int dim;
    final int hs;
    final int hq;
    final int hkv;
    final int qDim;
    final int kvDim;
    final int f;
    final int group;
    /** RMSNorm epsilon from the config (llama2.c: 1e-5). */
    private final float eps;
    private final int qkvRows;
    private final WeightCoverage coverage;
    /** This position's weights (float blocks, Q8_0 blocks, vocabulary rows, final norm). */
    final ShardWeights weights;
    private final Map<Long, Kv> kv = new HashMap<>();

    private final Kernels kernels;
    private final ShardMatmul mm;
    /**
     * Matrices with fewer columns stay in plain rows even for the vector kernels. The column-block kernel is
     * 1.3-5× faster than plain rows on a matrix alone at every size and 10-20 % less CPU per 25M decode step
     * (n = 512, 1376). It used to cost 3× more per stories260K step (n = 64, 172); that was the packed kernels'
     * boxed {@code intoArray} stores and softmax inside the forward pass (fixed since), and with them gone the
     * packed layout takes ≈ 30 % less CPU per stories260K step than plain rows (session 10), so only toy widths
     * stay plain.
     */
    static final int PACK_MIN_COLUMNS = 32;
    private final WorkerPool pool;
    private final float[] rope; // [seqLen][hs/2][cos, sin], shared by the pipeline

    // scratch (not device-accounted: activations of the current step)
    private final float[] xb;
    private final float[] qkv;
    private final float[] att;
    final float[] part;
    private final float[] h13;
    private final float[] hb;
    private final float[][] scores;
    private final float[] logitScratch;
    private final float[][] kvOf;
    private final int[] capOf;
    private final int[] posOf;
    private int batch;

    private final FfnUpTask ffnUp = new FfnUpTask();
    private final AttentionTask attention = new AttentionTask();

    StageShard(ShardLayout layout, int stage, int shard, CpuDevice device, Kernels kernels, WorkerPool pool,
               float[] rope, int maxBatch, int packMinColumns, boolean keepQ8) {
        this.device = device;
        this.c = layout.config();
        this.stage = stage;
        this.shard = shard;
        this.coverage = new WeightCoverage(layout, stage, shard);
        this.layers = coverage.layers();
        this.heads = coverage.heads();
        this.kvHeads = coverage.kvHeads();
        this.hidden = coverage.hidden();
        this.vocab = coverage.vocab();
        this.first = coverage.first();
        this.last = coverage.last();
        this.kernels = kernels;
        this.pool = pool;
        this.rope = rope;

        dim = c.dim();
        hs = c.headSize();
        hq = heads.length();
        hkv = kvHeads.length();
        qDim = hq * hs;
        kvDim = hkv * hs;
        f = hidden.length();
        group = c.kvGroupSize();
        eps = c.normEps();
        qkvRows = qDim + 2 * kvDim;
        weights = new ShardWeights(coverage, c, device, kernels.packLanes(), packMinColumns, keepQ8);
        mm = new ShardMatmul(kernels, pool, packMinColumns, maxBatch, weights.maxQ8Columns());
        if (!weights.fallback.isEmpty()) {
            LOG.debug("stage {} shard {} of {}: keeping fp32 instead of Q8_0 for matrices whose shard does not fall on "
                    + "whole 32-weight blocks ({})", stage, shard, layout, weights.fallback);
        }

        xb = new float[maxBatch * dim];
        qkv = new float[maxBatch * qkvRows];
        att = new float[maxBatch * qDim];
        part = new float[maxBatch * dim];
        h13 = new float[maxBatch * 2 * f];
        hb = new float[maxBatch * f];
        scores = new float[pool.threads()][c.seqLen()];
        logitScratch = last ? new float[maxBatch * vocab.length()] : null;
        kvOf = new float[maxBatch][];
        capOf = new int[maxBatch];
        posOf = new int[maxBatch];
    }

    // ------------------------------------------------------------------ weights: ownership and coverage

    @Override
    public CpuDevice device() {
        return device;
    }

    @Override
    public WeightCoverage coverage() {
        return coverage;
    }

    @Override
    public int kvCapacity(long sequence) {
        Kv entry = kv.get(sequence);
        return entry == null ? -1 : entry.capacity;
    }

    /** Bytes that importing {@code slice} would newly allocate on the device. */
    @Override
    public long allocationBytes(ContextSlice slice) {
        return slice instanceof ContextSlice.KvCache ? 0 : weights.allocationBytes(slice);
    }

    /** Bytes all of this position's weights take. */
    long weightStorageBytes() {
        long bytes = (long) weights.layerW.length * ((long) weights.layerFloats * Float.BYTES + weights.layerBytes);
        if (first) {
            bytes += weights.vocabBytes();
        }
        if (last) {
            bytes += (long) dim * Float.BYTES + (coverage.aliasClassifier() ? 0 : weights.vocabBytes());
        }
        return bytes;
    }

    /** Whether layer matrix {@code m} (0 wq/wk/wv, 1 wo, 2 w1/w3, 3 w2) is kept as Q8_0 blocks here. */
    boolean q8(int m) {
        return weights.q8[m];
    }

    /** Whether the embedding / classifier rows are kept as Q8_0 blocks here. */
    boolean q8Vocab() {
        return weights.q8Vocab;
    }

    /** Whether some Q8_0 matrix is being assembled in floats from pieces that split its blocks. */
    boolean assembling() {
        return weights.assembling();
    }

    /** {@link PackedRows} lanes of a layer matrix of {@code n} columns. */
    private int lanesFor(int n) {
        return mm.lanesFor(n);
    }

    // ------------------------------------------------------------------ import / export (context migration)

    /**
     * Copies a slice between its canonical float layout ({@link ContextSlice} javadoc) and this position's
     * storage. Importing allocates missing storage first (which may throw, changing nothing), then copies.
     * The caller has checked {@link #owns} (import) or {@link #holds} (export).
     */
    @Override
    public void transfer(ContextSlice slice, float[] canon, boolean importing) {
        transfer(slice, CanonFloats.of(canon), importing);
    }

    /** The buffer path: the same copies as the array one, the canonical floats read or written in place. */
    @Override
    public boolean transfer(ContextSlice slice, FloatBuffer canon, boolean importing) {
        transfer(slice, CanonFloats.of(canon), importing);
        return true;
    }

    /** A window of the canonical floats: the same copies, clipped to {@code [from, from + canon.limit())}. */
    @Override
    public boolean transferPart(ContextSlice slice, FloatBuffer canon, int from, boolean importing) {
        CanonFloats part = CanonFloats.window(canon, from);
        if (slice instanceof ContextSlice.KvCache k) {
            transferKv(k, part, importing);
        } else {
            weights.transfer(slice, part, importing, stage);
        }
        return true;
    }

    @Override
    public void completeImport(ContextSlice slice) {
        if (!(slice instanceof ContextSlice.KvCache)) {
            imported(slice);
        }
    }

    private void transfer(ContextSlice slice, CanonFloats canon, boolean importing) {
        if (slice instanceof ContextSlice.KvCache k) {
            transferKv(k, canon, importing);
            return;
        }
        weights.transfer(slice, canon, importing, stage);
        if (importing) {
            imported(slice);
        }
    }

    /** Marks an imported weight slice present; a layer whose pieces are all in drops its Q8_0 assembly floats. */
    private void imported(ContextSlice slice) {
        coverage.mark(slice);
        if (slice instanceof ContextSlice.LayerWeights w && coverage.layerComplete(w.layer() - layers.from())) {
            weights.dropStaging(w.layer() - layers.from());
        }
    }

    @Override
    public boolean load(ModelWeights source, ContextSlice slice, boolean fp16) {
        if (slice instanceof ContextSlice.KvCache) {
            throw new IllegalArgumentException(slice + " is cache context; a checkpoint holds only weights");
        }
        weights.load(source, slice, fp16, stage);
        coverage.mark(slice);
        if (slice instanceof ContextSlice.LayerWeights w && coverage.layerComplete(w.layer() - layers.from())) {
            weights.dropStaging(w.layer() - layers.from());
        }
        return true;
    }

    private void transferKv(ContextSlice.KvCache k, CanonFloats canon, boolean importing) {
        Kv entry = kv.get(k.sequence());
        int l = k.layer() - layers.from();
        int cap = entry.capacity;
        int off = (k.kvHeads().from() - kvHeads.from()) * hs;
        int width = k.kvHeads().length() * hs;
        int o = 0;
        for (int which = 0; which < 2; which++) {
            int base = (l * 2 + which) * cap * kvDim;
            int n = k.length();
            for (int t = canon.firstRun(o, width, n), end = canon.endRun(o, width, n); t < end; t++) {
                ShardWeights.rows(entry.data, base + t * kvDim + off, canon, o + t * width, width, importing);
            }
            o += n * width;
        }
    }

    // ------------------------------------------------------------------ sequences

    /** Floats of KV cache a sequence of {@code capacity} positions needs here. */
    int kvFloats(int capacity) {
        return Math.multiplyExact(Math.multiplyExact(2 * layers.length(), capacity), kvDim);
    }

    /** Allocates a sequence's KV buffer from this position's device and registers it. */
    @Override
    public void reserveSequence(long id, int capacity, String what) {
        kv.put(id, new Kv(device.allocate(what, kvFloats(capacity)), capacity));
    }

    /** Frees a sequence's KV buffer. */
    @Override
    public void removeSequence(long id) {
        Kv entry = kv.remove(id);
        if (entry != null) {
            device.free(entry.data);
        }
    }

    /** Frees one whole weight unit (a layer block, the embedding, the classifier or the final norm). */
    @Override
    public void release(ContextSlice slice) {
        coverage.unmark(slice);
        weights.release(slice, coverage);
    }

    /** Frees everything this position holds. */
    @Override
    public void releaseAll() {
        for (Long id : kv.keySet().toArray(new Long[0])) {
            removeSequence(id);
        }
        weights.releaseAll();
        coverage.clear();
    }

    // ------------------------------------------------------------------ forward pass

    /** Binds the current step: resolves every entry's KV buffer once. */
    void bind(long[] sequences, int[] positions, int count) {
        for (int b = 0; b < count; b++) {
            Kv entry = kv.get(sequences[b]);
            kvOf[b] = entry.data;
            capOf[b] = entry.capacity;
            posOf[b] = positions[b];
        }
        batch = count;
    }

    /** Stage 0: copies the embedding row of {@code token} into {@code x} if this shard holds it. */
    boolean embed(int token, float[] x, int xOff) {
        if (!vocab.contains(token)) {
            return false;
        }
        weights.embed(token - vocab.from(), x, xOff);
        return true;
    }

    /** This shard's attention heads of local layer {@code l} on input {@code x}; partial wo output into {@link #part}. */
    void attention(int l, float[] x) {
        float[] w = weights.layerW[l];
        int n = batch;
        for (int b = 0; b < n; b++) {
            rmsnorm(xb, b * dim, x, b * dim, w, 0, dim, eps);
        }
        matmul(QKV, l, xb, dim, n, qkv, qkvRows);
        int half = hs / 2;
        for (int b = 0; b < n; b++) {
            int pos = posOf[b];
            int q0 = b * qkvRows;
            // RoPE: rotate each (even, odd) pair of q and k; frequency depends on the pair's index within its head
            for (int i = 0; i < qDim; i += 2) {
                int r = (pos * half + (i % hs) / 2) * 2;
                rotate(qkv, q0 + i, rope[r], rope[r + 1]);
            }
            for (int i = 0; i < kvDim; i += 2) {
                int r = (pos * half + (i % hs) / 2) * 2;
                rotate(qkv, q0 + qDim + i, rope[r], rope[r + 1]);
            }
            float[] cache = kvOf[b];
            int cap = capOf[b];
            System.arraycopy(qkv, q0 + qDim, cache, ((l * 2) * cap + pos) * kvDim, kvDim);
            System.arraycopy(qkv, q0 + qDim + kvDim, cache, ((l * 2 + 1) * cap + pos) * kvDim, kvDim);
        }
        attention.layer = l;
        long work = 0;
        for (int b = 0; b < n; b++) {
            work += (long) (posOf[b] + 1) * qDim * 2;
        }
        pool.parallelFor(n * hq, work >= PARALLEL_MIN_MACS, attention);
        matmul(WO, l, att, qDim, n, part, dim);
    }

    private static void rotate(float[] v, int i, float fcr, float fci) {
        float v0 = v[i];
        float v1 = v[i + 1];
        v[i] = v0 * fcr - v1 * fci;
        v[i + 1] = v0 * fci + v1 * fcr;
    }

    /**
     * The fused FFN up-projection, one block of {@link #UNIT_BLOCK} hidden units per index: the block's w1 and w3
     * rows are adjacent, so each chunk computes whole units and applies run.c's SiLU gate to them at once, in
     * parallel.
     */
    private final class FfnUpTask implements WorkerPool.Body {
        float[] w;
        byte[] wq;

        @Override
        public void run(int worker, int from, int to) {
            int rows = 2 * f;
            int u0 = from * UNIT_BLOCK;
            int u1 = Math.min(f, to * UNIT_BLOCK);
            int r0 = 2 * u0;
            int r1 = 2 * u1;
            int off = weights.matOff[W13];
            if (weights.q8[W13]) {
                kernels.matmulQ8Tiled(wq, off, dim, rows, r0, r1, mm.qx, mm.qf, mm.dx, batch, h13, 0, rows);
            } else if (lanesFor(dim) == 0) {
                kernels.matmul(w, off, dim, r0, r1, xb, dim, batch, h13, 0, rows);
            } else {
                kernels.matmulPacked(w, off, dim, rows, r0, r1, xb, dim, batch, h13, 0, rows);
            }
            for (int b = 0; b < batch; b++) {
                for (int u = u0; u < u1; u += UNIT_BLOCK) {
                    int m = Math.min(UNIT_BLOCK, f - u);
                    int g = b * rows + 2 * u;
                    kernels.swiglu(h13, g, g + m, m, hb, b * f + u);
                }
            }
        }
    }

    /** Attention of one (entry, local head) pair per index. */
    private final class AttentionTask implements WorkerPool.Body {
        int layer;

        @Override
        public void run(int worker, int from, int to) {
            float[] s = scores[worker];
            float scale = (float) Math.sqrt(hs);
            for (int i = from; i < to; i++) {
                int b = i / hq;
                int h = i % hq;
                int pos = posOf[b];
                float[] cache = kvOf[b];
                int cap = capOf[b];
                int q = b * qkvRows + h * hs;
                int kvh = (h / group) * hs;
                int kBase = (layer * 2) * cap * kvDim + kvh;
                int vBase = (layer * 2 + 1) * cap * kvDim + kvh;
                kernels.attendHead(qkv, q, cache, kBase, vBase, kvDim, pos + 1, hs, scale, s, att, b * qDim + h * hs);
            }
        }
    }

    /** This shard's FFN hidden units of local layer {@code l} on input {@code x}; partial w2 output into {@link #part}. */
    void ffn(int l, float[] x) {
        float[] w = weights.layerW[l];
        int n = batch;
        for (int b = 0; b < n; b++) {
            rmsnorm(xb, b * dim, x, b * dim, w, dim, dim, eps);
        }
        FfnUpTask t = ffnUp;
        t.w = w;
        t.wq = weights.layerQ[l];
        if (weights.q8[W13]) {
            mm.quantize(xb, dim, n, dim);
        }
        pool.parallelFor((f + UNIT_BLOCK - 1) / UNIT_BLOCK, 2L * f * dim * n >= PARALLEL_MIN_MACS, t);
        t.w = null;
        t.wq = null;
        matmul(W2, l, hb, f, n, part, dim);
    }

    /**
     * Last stage: final RMSNorm and this shard's classifier rows for the entries with a non-null output,
     * written (gathered) into columns {@code [vocab.from, vocab.to)} of those outputs.
     */
    void logits(float[] x, float[][] out) {
        int k = 0;
        for (int b = 0; b < batch; b++) {
            if (out[b] != null) {
                rmsnorm(xb, k * dim, x, b * dim, weights.finalNorm, 0, dim, eps);
                k++;
            }
        }
        if (k == 0) {
            return;
        }
        int v = vocab.length();
        if (weights.q8Vocab) {
            mm.q8(weights.classifierQ, 0, dim, v, xb, dim, k, logitScratch, v);
        } else {
            mm.plain(weights.classifier, 0, dim, v, xb, dim, k, logitScratch, v);
        }
        k = 0;
        for (int b = 0; b < batch; b++) {
            if (out[b] != null) {
                System.arraycopy(logitScratch, k * v, out[b], vocab.from(), v);
                k++;
            }
        }
    }

    /** Layer matrix {@code m} of local layer {@code l} times {@code count} activation vectors: Q8_0 or float. */
    private void matmul(int m, int l, float[] x, int xStride, int count, float[] out, int outStride) {
        ShardWeights w = weights;
        if (w.q8[m]) {
            mm.q8(w.layerQ[l], w.matOff[m], w.matCols[m], w.matRows[m], x, xStride, count, out, outStride);
        } else {
            mm.layer(w.layerW[l], w.matOff[m], w.matCols[m], w.matRows[m], x, xStride, count, out, outStride);
        }
    }

    /** run.c's rmsnorm: float sum of squares, mean + eps (1e-5 there), reciprocal square root, then weight · (ss · x). */
    static void rmsnorm(float[] o, int oOff, float[] x, int xOff, float[] weight, int wOff, int size, float eps) {
        float ss = 0.0f;
        for (int j = 0; j < size; j++) {
            ss += x[xOff + j] * x[xOff + j];
        }
        ss /= size;
        ss += eps;
        ss = 1.0f / (float) Math.sqrt(ss);
        for (int j = 0; j < size; j++) {
            o[oOff + j] = weight[wOff + j] * (ss * x[xOff + j]);
        }
    }
}
