package io.spotserve.exec.cpu;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.spi.PipelinePosition;
import io.spotserve.exec.spi.WeightCoverage;
import io.spotserve.model.LlamaConfig;
import java.util.HashMap;
import java.util.Map;

/**
 * The state and the compute of one pipeline position (stage p, shard m): its weight slices and KV-cache
 * slices, allocated from its device, and its part of every layer of the stage. This is the hot-path file of
 * the CPU executor.
 *
 * <p>Storage, all flat row-major float arrays from the device arena, allocated on first import:
 * <ul>
 *   <li>one block per local layer: rms_att [dim] | rms_ffn [dim] | wqkv [(hq+2·hkv)·hs][dim] (the shard's wq
 *       rows, then wk rows, then wv rows, so one pass computes q, k and v) | wo [dim][hq·hs] (the shard's
 *       columns of wo, contiguous per output row) | w13 [2f][dim] (w1 and w3 rows interleaved in blocks of
 *       {@link #UNIT_BLOCK} hidden units: the block's w1 rows, then its w3 rows, so one chunk of rows yields whole
 *       gated units and the gate reads w1 and w3 outputs as two contiguous runs) | w2 [dim][f];</li>
 *   <li>the four layer matrices are stored in the kernels' {@link PackedRows} layout (column-major blocks of
 *       4·lanes rows for the vector kernels, plain rows for the scalar ones); import and export convert from
 *       and to the canonical layout, so slice bytes never depend on the kernels;</li>
 *   <li>embedding rows [vLocal][dim] (stage 0), final norm [dim] and classifier rows [vLocal][dim] (last stage;
 *       when one position is both and the model shares the classifier, one array serves both);</li>
 *   <li>per open sequence: K and V for every local layer, [layer][K|V][capacity][hkv·hs].</li>
 * </ul>
 * With {@link io.spotserve.exec.WeightPrecision#Q8_0} weights, each layer matrix (and the embedding / classifier
 * rows) whose shard falls on whole 32-weight blocks is kept instead as GGUF Q8_0 blocks ({@link Q8Blocks}, 34 bytes
 * per 32 weights) in one byte array per layer, the norms staying in the float block; its matmuls quantize the
 * activations per block and run {@link Kernels#matmulQ8}. A matrix whose shard split does not fall on blocks (wo
 * when a shard's heads span a partial block, w2 when its hidden units do, everything when dim is not a multiple of
 * 32) stays fp32 on that position, and the reason is logged. Import and export still speak canonical floats:
 * importing quantizes (exact for values that came from Q8_0 blocks of the same alignment: requantizing dequantized
 * blocks gives the same bytes), exporting dequantizes. A migrated piece that covers part of a block is staged in a
 * transient float copy of that matrix until the layer is complete, so pieces of any split reassemble exactly.
 * The forward math mirrors llama2.c's run.c: RMSNorm (eps 1e-5, float sum of squares), RoPE per pair with
 * frequency 1/10000^(i/hs), grouped-query attention with scores divided by sqrt(hs) and a max-shifted
 * softmax, SwiGLU FFN. Partial outputs of wo and w2 are left in {@link #part} for the pipeline's all-reduce.
 */
final class StageShard implements PipelinePosition {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(StageShard.class);
    static final String[] MATRIX_LABELS = {"wq/wk/wv", "wo", "w1/w3", "w2"};
    /** Layer matrices, by index into the per-matrix tables. */
    private static final int QKV = 0;
    private static final int WO = 1;
    private static final int W13 = 2;
    private static final int W2 = 3;
    private static final int PARALLEL_MIN_MACS = 1 << 15;
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
    private final boolean aliasClassifier;

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
    /** Per layer matrix (QKV, WO, W13, W2): rows, columns, whether kept as Q8_0 blocks, offset (floats or bytes). */
    private final int[] matRows = new int[4];
    private final int[] matCols = new int[4];
    private final boolean[] q8 = new boolean[4];
    private final int[] matOff = new int[4];
    /** Whether the embedding / classifier rows are Q8_0 blocks. */
    private final boolean q8Vocab;
    /** With Q8_0 weights: the matrices kept fp32 because this shard splits their blocks, and their columns. */
    final String fallback;
    final int layerFloats;
    /** Bytes of the Q8_0 matrices of one layer (0 when none is Q8_0). */
    final int layerBytes;

    private final WeightCoverage coverage;
    private final float[][] layerW;
    private final byte[][] layerQ;
    /** Float copies of Q8_0 matrices being assembled from pieces that split blocks: [matrix][local layer]. */
    private final float[][][] staging = new float[4][][];
    private float[] embedding;
    private float[] classifier;
    private byte[] embeddingQ;
    private byte[] classifierQ;
    private float[] finalNorm;
    private final Map<Long, Kv> kv = new HashMap<>();

    private final Kernels kernels;
    /** {@link PackedRows} lanes of the kernels (0: plain rows, the scalar kernels' layout). */
    private final int lanes;
    /**
     * Matrices with fewer columns stay in plain rows even for the vector kernels. Measured on this machine: the
     * column-block kernel is 1.3-5× faster than plain rows on a matrix alone at every size, and 10-20% less CPU
     * per 25M decode step (n = 512 and 1376), but 3× more per stories260K step (n = 64 and 172) inside the
     * forward pass, for a reason not found in this round; small matrices keep the plain layout meanwhile.
     */
    static final int PACK_MIN_COLUMNS = 256;
    private final int packMinColumns;
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
    /** Quantized activations of the current Q8_0 matmul: quants [maxBatch][n] and per-block scales. */
    private final byte[] qx;
    private final float[] dx;
    private final float[][] kvOf;
    private final int[] capOf;
    private final int[] posOf;
    private int batch;

    private final MatmulTask matmul = new MatmulTask();
    private final PackedMatmulTask packedMatmul = new PackedMatmulTask();
    private final Q8MatmulTask q8Matmul = new Q8MatmulTask();
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
        this.aliasClassifier = coverage.aliasClassifier();
        this.kernels = kernels;
        this.lanes = kernels.packLanes();
        this.packMinColumns = packMinColumns;
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
        int[] rows = {qkvRows, dim, 2 * f, dim};
        int[] cols = {dim, qDim, dim, f};
        // a Q8_0 matrix's blocks must be the file's blocks: its first column and its width on whole blocks
        int[] firstCol = {0, heads.from() * hs, 0, hidden.from()};
        int floats = 2 * dim;
        int bytes = 0;
        StringBuilder fallback = new StringBuilder();
        for (int m = 0; m < 4; m++) {
            matRows[m] = rows[m];
            matCols[m] = cols[m];
            q8[m] = keepQ8 && Q8Blocks.aligned(cols[m]) && Q8Blocks.aligned(firstCol[m]);
            if (q8[m]) {
                matOff[m] = bytes;
                bytes = Math.addExact(bytes, Math.toIntExact(Q8Blocks.matrixBytes(rows[m], cols[m])));
            } else {
                matOff[m] = floats;
                floats = Math.addExact(floats, Math.multiplyExact(rows[m], cols[m]));
                if (keepQ8) {
                    fallback.append(fallback.length() == 0 ? "" : "; ").append(MATRIX_LABELS[m]).append(": columns [")
                            .append(firstCol[m]).append(", ").append(firstCol[m] + cols[m]).append(")");
                }
            }
        }
        layerFloats = floats;
        layerBytes = bytes;
        q8Vocab = keepQ8 && Q8Blocks.aligned(dim);
        if (keepQ8 && !q8Vocab) {
            fallback.append(fallback.length() == 0 ? "" : "; ").append("embedding/classifier: dim ").append(dim);
        }
        this.fallback = fallback.toString();
        if (!this.fallback.isEmpty()) {
            LOG.debug("stage {} shard {} of {}: keeping fp32 instead of Q8_0 for matrices whose shard does not fall on "
                    + "whole 32-weight blocks ({})", stage, shard, layout, fallback);
        }

        int nl = layers.length();
        layerW = new float[nl][];
        layerQ = new byte[nl][];
        for (int m = 0; m < 4; m++) {
            staging[m] = new float[nl][];
        }

        xb = new float[maxBatch * dim];
        qkv = new float[maxBatch * qkvRows];
        att = new float[maxBatch * qDim];
        part = new float[maxBatch * dim];
        h13 = new float[maxBatch * 2 * f];
        hb = new float[maxBatch * f];
        scores = new float[pool.threads()][c.seqLen()];
        logitScratch = last ? new float[maxBatch * vocab.length()] : null;
        boolean anyQ8 = layerBytes > 0 || q8Vocab;
        int maxCols = Math.max(dim, Math.max(qDim, f));
        qx = anyQ8 ? new byte[maxBatch * maxCols] : null;
        dx = anyQ8 ? new float[maxBatch * (maxCols / Q8Blocks.BLOCK + 1)] : null;
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
        if (slice instanceof ContextSlice.Embedding) {
            return hasEmbedding() ? 0 : vocabBytes();
        } else if (slice instanceof ContextSlice.Classifier) {
            boolean present = aliasClassifier ? hasEmbedding() : classifier != null || classifierQ != null;
            return present ? 0 : vocabBytes();
        } else if (slice instanceof ContextSlice.FinalNorm) {
            return finalNorm == null ? (long) dim * Float.BYTES : 0;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            return layerW[w.layer() - layers.from()] == null ? (long) layerFloats * Float.BYTES + layerBytes : 0;
        }
        return 0;
    }

    private boolean hasEmbedding() {
        return embedding != null || embeddingQ != null;
    }

    /** Bytes of this position's embedding (or classifier) rows as stored. */
    private long vocabBytes() {
        return q8Vocab ? Q8Blocks.matrixBytes(vocab.length(), dim) : (long) vocab.length() * dim * Float.BYTES;
    }

    /** Bytes all of this position's weights take. */
    long weightStorageBytes() {
        long bytes = (long) layerW.length * ((long) layerFloats * Float.BYTES + layerBytes);
        if (first) {
            bytes += vocabBytes();
        }
        if (last) {
            bytes += (long) dim * Float.BYTES + (aliasClassifier ? 0 : vocabBytes());
        }
        return bytes;
    }

    /** Whether layer matrix {@code m} (0 wq/wk/wv, 1 wo, 2 w1/w3, 3 w2) is kept as Q8_0 blocks here. */
    boolean q8(int m) {
        return q8[m];
    }

    /** Whether the embedding / classifier rows are kept as Q8_0 blocks here. */
    boolean q8Vocab() {
        return q8Vocab;
    }

    /** Whether some Q8_0 matrix is being assembled in floats from pieces that split its blocks. */
    boolean assembling() {
        for (float[][] m : staging) {
            for (float[] l : m) {
                if (l != null) {
                    return true;
                }
            }
        }
        return false;
    }

    /** {@link PackedRows} lanes of a layer matrix of {@code n} columns. */
    private int lanesFor(int n) {
        return n >= packMinColumns ? lanes : 0;
    }

    // ------------------------------------------------------------------ import / export (context migration)

    /**
     * Copies a slice between its canonical float layout ({@link ContextSlice} javadoc) and this position's
     * storage. Importing allocates missing storage first (which may throw, changing nothing), then copies.
     * The caller has checked {@link #owns} (import) or {@link #holds} (export).
     */
    @Override
    public void transfer(ContextSlice slice, float[] canon, boolean importing) {
        if (slice instanceof ContextSlice.Embedding e) {
            if (importing && !hasEmbedding()) {
                allocateVocab(true, "token embedding rows " + vocab + " of stage " + stage);
            }
            vocabRows(true, e.vocab(), canon, importing);
        } else if (slice instanceof ContextSlice.Classifier k) {
            if (importing && classifier == null && classifierQ == null) {
                allocateVocab(aliasClassifier, aliasClassifier ? "token embedding / classifier rows " + vocab
                        : "classifier rows " + vocab);
            }
            vocabRows(false, k.vocab(), canon, importing);
        } else if (slice instanceof ContextSlice.FinalNorm) {
            if (importing && finalNorm == null) {
                finalNorm = device.allocate("final norm", dim);
            }
            rows(finalNorm, 0, canon, 0, dim, importing);
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            transferLayer(w, canon, importing);
        } else {
            transferKv((ContextSlice.KvCache) slice, canon, importing);
        }
        if (importing) {
            coverage.mark(slice);
            if (slice instanceof ContextSlice.LayerWeights w && coverage.layerComplete(w.layer() - layers.from())) {
                dropStaging(w.layer() - layers.from());
            }
        }
    }

    private void dropStaging(int l) {
        for (int m = 0; m < 4; m++) {
            staging[m][l] = null;
        }
    }

    private void transferLayer(ContextSlice.LayerWeights w, float[] canon, boolean importing) {
        int l = w.layer() - layers.from();
        if (importing && layerW[l] == null) {
            String what = "layer " + w.layer() + " heads " + heads + " hidden " + hidden;
            float[] block = device.allocate(what, layerFloats);
            if (layerBytes > 0) {
                try {
                    layerQ[l] = device.allocateBytes(what + " (Q8_0 blocks)", layerBytes);
                } catch (RuntimeException e) {
                    device.free(block);
                    throw e;
                }
            }
            layerW[l] = block;
        }
        int sh0 = w.heads().from() - heads.from();   // local first head of the slice
        int nh = w.heads().length();
        int skv0 = w.kvHeads(c).from() - kvHeads.from();
        int nkv = w.kvHeads(c).length();
        int sf0 = w.hidden().from() - hidden.from();
        int nf = w.hidden().length();
        int o = 0;
        rows(layerW[l], 0, canon, o, 2 * dim, importing);                                   // rms_att, rms_ffn
        o += 2 * dim;
        o = matrixRows(QKV, l, sh0 * hs, nh * hs, canon, o, importing);                     // wq rows
        o = matrixRows(QKV, l, qDim + skv0 * hs, nkv * hs, canon, o, importing);            // wk rows
        o = matrixRows(QKV, l, qDim + kvDim + skv0 * hs, nkv * hs, canon, o, importing);    // wv rows
        for (int r = 0; r < dim; r++) {                                                      // wo columns
            segment(WO, l, r, sh0 * hs, canon, o, nh * hs, importing);
            o += nh * hs;
        }
        for (int k = 0; k < nf; k++) {                                                       // w1 rows
            segment(W13, l, w13Row(sf0 + k, false), 0, canon, o, dim, importing);
            o += dim;
        }
        for (int k = 0; k < nf; k++) {                                                       // w3 rows
            segment(W13, l, w13Row(sf0 + k, true), 0, canon, o, dim, importing);
            o += dim;
        }
        for (int r = 0; r < dim; r++) {                                                      // w2 columns
            segment(W2, l, r, sf0, canon, o, nf, importing);
            o += nf;
        }
    }

    /** Whole rows {@code [r0, r0 + count)} of layer matrix {@code m}, contiguous in {@code canon} from {@code o}. */
    private int matrixRows(int m, int l, int r0, int count, float[] canon, int o, boolean importing) {
        int n = matCols[m];
        for (int r = 0; r < count; r++, o += n) {
            segment(m, l, r0 + r, 0, canon, o, n, importing);
        }
        return o;
    }

    /** Columns {@code [j0, j0 + len)} of row {@code r} of layer matrix {@code m} of local layer {@code l}, in or out. */
    private void segment(int m, int l, int r, int j0, float[] canon, int cOff, int len, boolean importing) {
        int n = matCols[m];
        if (!q8[m]) {
            PackedRows.segment(layerW[l], matOff[m], matRows[m], n, lanesFor(n), r, j0, canon, cOff, len, importing);
            return;
        }
        byte[] q = layerQ[l];
        int rowAt = matOff[m] + r * Q8Blocks.rowBytes(n);
        float[] st = staging[m][l];
        boolean whole = Q8Blocks.aligned(j0) && Q8Blocks.aligned(len);
        if (importing) {
            if (st == null && whole) {
                Q8Blocks.quantize(canon, cOff, len, q, rowAt + j0 / Q8Blocks.BLOCK * Q8Blocks.BLOCK_BYTES);
                return;
            }
            if (st == null) { // a piece that splits blocks: assemble this matrix in floats until the layer is complete
                st = new float[matRows[m] * n];
                for (int i = 0; i < matRows[m]; i++) {
                    Q8Blocks.dequantize(q, matOff[m] + i * Q8Blocks.rowBytes(n), n, st, i * n);
                }
                staging[m][l] = st;
            }
            System.arraycopy(canon, cOff, st, r * n + j0, len);
            int k0 = j0 / Q8Blocks.BLOCK;
            int k1 = (j0 + len + Q8Blocks.BLOCK - 1) / Q8Blocks.BLOCK;
            Q8Blocks.quantize(st, r * n + k0 * Q8Blocks.BLOCK, (k1 - k0) * Q8Blocks.BLOCK, q,
                    rowAt + k0 * Q8Blocks.BLOCK_BYTES);
        } else if (st != null) {
            System.arraycopy(st, r * n + j0, canon, cOff, len);
        } else if (whole) {
            Q8Blocks.dequantize(q, rowAt + j0 / Q8Blocks.BLOCK * Q8Blocks.BLOCK_BYTES, len, canon, cOff);
        } else {
            int k0 = j0 / Q8Blocks.BLOCK;
            int k1 = (j0 + len + Q8Blocks.BLOCK - 1) / Q8Blocks.BLOCK;
            float[] tmp = new float[(k1 - k0) * Q8Blocks.BLOCK];
            Q8Blocks.dequantize(q, rowAt + k0 * Q8Blocks.BLOCK_BYTES, tmp.length, tmp, 0);
            System.arraycopy(tmp, j0 - k0 * Q8Blocks.BLOCK, canon, cOff, len);
        }
    }

    /** Allocates the embedding rows ({@code embedding}) or the classifier rows, aliased when {@code shared}. */
    private void allocateVocab(boolean embeddingRows, String what) {
        boolean shared = aliasClassifier;
        if (q8Vocab) {
            byte[] b = device.allocateBytes(what + " (Q8_0 blocks)", Math.toIntExact(vocabBytes()));
            if (embeddingRows || shared) {
                embeddingQ = b;
            }
            if (!embeddingRows || shared) {
                classifierQ = b;
            }
        } else {
            float[] a = device.allocate(what, vocab.length() * dim);
            if (embeddingRows || shared) {
                embedding = a;
            }
            if (!embeddingRows || shared) {
                classifier = a;
            }
        }
    }

    /** Copies vocabulary rows {@code range} of the embedding (or classifier) in or out. */
    private void vocabRows(boolean embeddingRows, IndexRange range, float[] canon, boolean importing) {
        int r0 = range.from() - vocab.from();
        if (!q8Vocab) {
            rows(embeddingRows ? embedding : classifier, r0 * dim, canon, 0, range.length() * dim, importing);
            return;
        }
        byte[] q = embeddingRows ? embeddingQ : classifierQ;
        int rb = Q8Blocks.rowBytes(dim);
        for (int r = 0; r < range.length(); r++) {
            if (importing) {
                Q8Blocks.quantize(canon, r * dim, dim, q, (r0 + r) * rb);
            } else {
                Q8Blocks.dequantize(q, (r0 + r) * rb, dim, canon, r * dim);
            }
        }
    }

    /** Storage row of local hidden unit {@code u}'s w1 row (or w3 row when {@code up}) in the w13 matrix. */
    private int w13Row(int u, boolean up) {
        int start = u - u % UNIT_BLOCK;
        int m = Math.min(UNIT_BLOCK, f - start);
        return 2 * start + u % UNIT_BLOCK + (up ? m : 0);
    }

    private void transferKv(ContextSlice.KvCache k, float[] canon, boolean importing) {
        Kv entry = kv.get(k.sequence());
        int l = k.layer() - layers.from();
        int cap = entry.capacity;
        int off = (k.kvHeads().from() - kvHeads.from()) * hs;
        int width = k.kvHeads().length() * hs;
        int o = 0;
        for (int which = 0; which < 2; which++) {
            int base = (l * 2 + which) * cap * kvDim;
            for (int t = 0; t < k.length(); t++) {
                rows(entry.data, base + t * kvDim + off, canon, o, width, importing);
                o += width;
            }
        }
    }

    private static void rows(float[] store, int storeOff, float[] canon, int canonOff, int len, boolean importing) {
        if (importing) {
            System.arraycopy(canon, canonOff, store, storeOff, len);
        } else {
            System.arraycopy(store, storeOff, canon, canonOff, len);
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
        if (slice instanceof ContextSlice.Embedding) {
            if (!aliasClassifier || !coverage.anyClassifier()) {
                freeEmbedding();
            }
        } else if (slice instanceof ContextSlice.Classifier) {
            if (!aliasClassifier) {
                device.free(classifier);
                device.free(classifierQ);
                classifier = null;
                classifierQ = null;
            } else if (!coverage.anyEmbedding()) {
                freeEmbedding();
            }
        } else if (slice instanceof ContextSlice.FinalNorm) {
            device.free(finalNorm);
            finalNorm = null;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            freeLayer(w.layer() - layers.from());
        }
    }

    private void freeLayer(int l) {
        device.free(layerW[l]);
        device.free(layerQ[l]);
        layerW[l] = null;
        layerQ[l] = null;
        dropStaging(l);
    }

    /** Frees the embedding rows (and the classifier, when they are the same rows). */
    private void freeEmbedding() {
        device.free(embedding);
        device.free(embeddingQ);
        embedding = null;
        embeddingQ = null;
        if (aliasClassifier) {
            classifier = null;
            classifierQ = null;
        }
    }

    /** Frees everything this position holds. */
    @Override
    public void releaseAll() {
        for (Long id : kv.keySet().toArray(new Long[0])) {
            removeSequence(id);
        }
        for (int l = 0; l < layerW.length; l++) {
            freeLayer(l);
        }
        device.free(embedding);
        device.free(embeddingQ);
        if (classifier != embedding) {
            device.free(classifier);
        }
        if (classifierQ != embeddingQ) {
            device.free(classifierQ);
        }
        device.free(finalNorm);
        embedding = null;
        classifier = null;
        embeddingQ = null;
        classifierQ = null;
        finalNorm = null;
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
        if (q8Vocab) {
            Q8Blocks.dequantize(embeddingQ, (token - vocab.from()) * Q8Blocks.rowBytes(dim), dim, x, xOff);
        } else {
            System.arraycopy(embedding, (token - vocab.from()) * dim, x, xOff, dim);
        }
        return true;
    }

    /** This shard's attention heads of local layer {@code l} on input {@code x}; partial wo output into {@link #part}. */
    void attention(int l, float[] x) {
        float[] w = layerW[l];
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
            if (q8[W13]) {
                kernels.matmulQ8(wq, matOff[W13], dim, r0, r1, qx, dx, batch, h13, 0, rows);
            } else if (lanesFor(dim) == 0) {
                kernels.matmul(w, matOff[W13], dim, r0, r1, xb, dim, batch, h13, 0, rows);
            } else {
                kernels.matmulPacked(w, matOff[W13], dim, rows, r0, r1, xb, dim, batch, h13, 0, rows);
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
        float[] w = layerW[l];
        int n = batch;
        for (int b = 0; b < n; b++) {
            rmsnorm(xb, b * dim, x, b * dim, w, dim, dim, eps);
        }
        FfnUpTask t = ffnUp;
        t.w = w;
        t.wq = layerQ[l];
        if (q8[W13]) {
            Q8Blocks.quantizeActivations(xb, dim, n, dim, qx, dx);
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
                rmsnorm(xb, k * dim, x, b * dim, finalNorm, 0, dim, eps);
                k++;
            }
        }
        if (k == 0) {
            return;
        }
        int v = vocab.length();
        if (q8Vocab) {
            runQ8Matmul(classifierQ, 0, dim, v, xb, dim, k, logitScratch, v);
        } else {
            runMatmul(classifier, 0, dim, v, xb, dim, k, logitScratch, v);
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
        if (q8[m]) {
            runQ8Matmul(layerQ[l], matOff[m], matCols[m], matRows[m], x, xStride, count, out, outStride);
        } else {
            layerMatmul(layerW[l], matOff[m], matCols[m], matRows[m], x, xStride, count, out, outStride);
        }
    }

    /** Quantizes the activations per block, then multiplies the Q8_0 rows, split among threads by rows. */
    private void runQ8Matmul(byte[] w, int wOff, int n, int rows, float[] x, int xStride, int count, float[] out,
                             int outStride) {
        Q8Blocks.quantizeActivations(x, xStride, count, n, qx, dx);
        Q8MatmulTask t = q8Matmul;
        t.w = w;
        t.wOff = wOff;
        t.n = n;
        t.batch = count;
        t.out = out;
        t.outStride = outStride;
        pool.parallelFor(rows, (long) rows * n * count >= PARALLEL_MIN_MACS, t);
        t.w = null;
        t.out = null;
    }

    /** Rows of one Q8_0 matmul per chunk, on the quantized activations in {@link #qx} / {@link #dx}. */
    private final class Q8MatmulTask implements WorkerPool.Body {
        byte[] w;
        int wOff;
        int n;
        int batch;
        float[] out;
        int outStride;

        @Override
        public void run(int worker, int from, int to) {
            kernels.matmulQ8(w, wOff, n, from, to, qx, dx, batch, out, 0, outStride);
        }
    }

    /** A layer matrix: in the kernels' {@link PackedRows} layout, split among threads by whole row groups. */
    private void layerMatmul(float[] w, int wOff, int n, int rows, float[] x, int xStride, int count, float[] out,
                             int outStride) {
        int lanes = lanesFor(n);
        if (lanes == 0) {
            runMatmul(w, wOff, n, rows, x, xStride, count, out, outStride);
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

    /** Packed row blocks of one matmul per chunk; reusable like {@link MatmulTask}. */
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

    private void runMatmul(float[] w, int wOff, int n, int rows, float[] x, int xStride, int count, float[] out,
                           int outStride) {
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

    /** Rows of one matmul per chunk; a reusable object so a step allocates nothing per call. */
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
