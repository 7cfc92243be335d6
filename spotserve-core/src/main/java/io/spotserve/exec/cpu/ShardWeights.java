package io.spotserve.exec.cpu;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.spi.WeightCoverage;
import io.spotserve.model.HalfFloats;
import io.spotserve.model.LlamaCheckpoint.Tensor;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelWeights;

/**
 * The weight storage of one {@link StageShard}: per local layer a float block (rms_att, rms_ffn, then the layer
 * matrices kept in floats) and, with {@link io.spotserve.exec.WeightPrecision#Q8_0} weights, a byte block of the
 * matrices kept as Q8_0 blocks in tiles of 32 rows ({@link Q8Tiles}); the embedding and classifier rows (floats or
 * Q8_0 blocks, also in tiles; one array when they are the same rows) and the final norm. Matrices, by index {@link #QKV}, {@link #WO}, {@link #W13},
 * {@link #W2}: wqkv [(hq+2·hkv)·hs][dim] (the shard's wq rows, then wk, then wv), wo [dim][hq·hs] (the shard's
 * columns), w13 [2f][dim] (w1 and w3 rows interleaved in blocks of {@link StageShard#UNIT_BLOCK} hidden units), w2
 * [dim][f]. Float matrices use the kernels' {@link PackedRows} layout.
 *
 * <p>A matrix is kept as Q8_0 only where its shard columns start and end on the file's 32-weight blocks; otherwise it
 * stays fp32 on this position ({@link #fallback} says which and why). Import quantizes canonical floats (exact for
 * values that came from Q8_0 blocks of the same alignment), export dequantizes; a migrated piece that splits blocks is
 * assembled in a transient float copy of its matrix ({@link #staging}, not device-accounted) until the layer is
 * complete, so pieces cut by any other layout reassemble the exact blocks.
 */
final class ShardWeights {
    static final String[] MATRIX_LABELS = {"wq/wk/wv", "wo", "w1/w3", "w2"};
    static final int QKV = 0;
    static final int WO = 1;
    static final int W13 = 2;
    static final int W2 = 3;

    private final CpuDevice device;
    private final LlamaConfig c;
    /** {@link PackedRows} lanes of the kernels (0: plain rows) and the narrowest matrix they pack. */
    private final int lanes;
    private final int packMinColumns;
    private final IndexRange layers;
    private final IndexRange heads;
    private final IndexRange kvHeads;
    private final IndexRange hidden;
    private final IndexRange vocab;
    private final boolean aliasClassifier;
    private final int dim;
    private final int hs;
    private final int qDim;
    private final int kvDim;
    private final int f;

    /** Per layer matrix: rows, columns, whether kept as Q8_0 blocks, offset (in the float or the byte block). */
    final int[] matRows = new int[4];
    final int[] matCols = new int[4];
    final boolean[] q8 = new boolean[4];
    final int[] matOff = new int[4];
    /** Whether the embedding / classifier rows are Q8_0 blocks. */
    final boolean q8Vocab;
    /** With Q8_0 weights: the matrices kept fp32 because this shard splits their blocks, and their columns. */
    final String fallback;
    /** Floats of one layer's float block (the norms and the float matrices). */
    final int layerFloats;
    /** Bytes of the Q8_0 matrices of one layer (0 when none is Q8_0). */
    final int layerBytes;

    final float[][] layerW;
    final byte[][] layerQ;
    /** Float copies of Q8_0 matrices being assembled from pieces that split blocks: [matrix][local layer]. */
    private final float[][][] staging = new float[4][][];
    float[] embedding;
    float[] classifier;
    byte[] embeddingQ;
    byte[] classifierQ;
    float[] finalNorm;

    ShardWeights(WeightCoverage coverage, LlamaConfig c, CpuDevice device, int lanes, int packMinColumns,
                 boolean keepQ8) {
        this.device = device;
        this.c = c;
        this.lanes = lanes;
        this.packMinColumns = packMinColumns;
        this.layers = coverage.layers();
        this.heads = coverage.heads();
        this.kvHeads = coverage.kvHeads();
        this.hidden = coverage.hidden();
        this.vocab = coverage.vocab();
        this.aliasClassifier = coverage.aliasClassifier();
        dim = c.dim();
        hs = c.headSize();
        qDim = heads.length() * hs;
        kvDim = kvHeads.length() * hs;
        f = hidden.length();
        int[] rows = {qDim + 2 * kvDim, dim, 2 * f, dim};
        int[] cols = {dim, qDim, dim, f};
        // a Q8_0 matrix's blocks must be the file's blocks: its first column and its width on whole blocks
        int[] firstCol = {0, heads.from() * hs, 0, hidden.from()};
        int floats = 2 * dim;
        int bytes = 0;
        StringBuilder why = new StringBuilder();
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
                    why.append(why.length() == 0 ? "" : "; ").append(MATRIX_LABELS[m]).append(": columns [")
                            .append(firstCol[m]).append(", ").append(firstCol[m] + cols[m]).append(")");
                }
            }
        }
        layerFloats = floats;
        layerBytes = bytes;
        q8Vocab = keepQ8 && Q8Blocks.aligned(dim);
        if (keepQ8 && !q8Vocab) {
            why.append(why.length() == 0 ? "" : "; ").append("embedding/classifier: dim ").append(dim);
        }
        fallback = why.toString();
        int nl = layers.length();
        layerW = new float[nl][];
        layerQ = new byte[nl][];
        for (int m = 0; m < 4; m++) {
            staging[m] = new float[nl][];
        }
    }

    /** The widest Q8_0 matrix's columns (0 when none is Q8_0): the activation scratch the products need. */
    int maxQ8Columns() {
        int max = q8Vocab ? dim : 0;
        for (int m = 0; m < 4; m++) {
            max = Math.max(max, q8[m] ? matCols[m] : 0);
        }
        return max;
    }

    /** Bytes that importing weight slice {@code slice} would newly allocate on the device. */
    long allocationBytes(ContextSlice slice) {
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
    long vocabBytes() {
        return q8Vocab ? Q8Blocks.matrixBytes(vocab.length(), dim) : (long) vocab.length() * dim * Float.BYTES;
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

    /** Drops the float copies of local layer {@code l}'s matrices (the layer is complete, or freed). */
    void dropStaging(int l) {
        for (int m = 0; m < 4; m++) {
            staging[m][l] = null;
        }
    }

    /**
     * Copies a weight slice between its canonical float layout ({@link ContextSlice} javadoc) and this storage.
     * Importing allocates missing storage first (which may throw, changing nothing), then copies.
     */
    void transfer(ContextSlice slice, CanonFloats canon, boolean importing, int stage) {
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
        } else {
            transferLayer((ContextSlice.LayerWeights) slice, canon, importing);
        }
    }

    private void transferLayer(ContextSlice.LayerWeights w, CanonFloats canon, boolean importing) {
        int l = w.layer() - layers.from();
        if (importing) {
            allocateLayer(l);
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
        // each loop visits only the rows a window of the canonical floats touches (all of them otherwise)
        int n = nh * hs;
        int r0 = canon.firstRun(o, n, dim);
        segments(WO, l, r0, canon.endRun(o, n, dim) - r0, sh0 * hs, canon, o + r0 * n, n, importing); // wo columns
        o += dim * n;
        w13Rows(l, sf0, nf, false, canon, o, importing);                                      // w1 rows
        o += nf * dim;
        w13Rows(l, sf0, nf, true, canon, o, importing);                                       // w3 rows
        o += nf * dim;
        r0 = canon.firstRun(o, nf, dim);
        segments(W2, l, r0, canon.endRun(o, nf, dim) - r0, sf0, canon, o + r0 * nf, nf, importing); // w2 columns
    }

    /** Allocates local layer {@code l}'s storage if missing (may throw, changing nothing). */
    private void allocateLayer(int l) {
        if (layerW[l] != null) {
            return;
        }
        String what = "layer " + (layers.from() + l) + " heads " + heads + " hidden " + hidden;
        // fp32 layers reuse a freed block unzeroed: a layer slice writes every float of its part of the block, and
        // nothing reads a part before its slice is held (export and steps check first); Q8_0 layers stay zeroed
        float[] block = layerBytes == 0 ? device.allocateLayer(what, layerFloats) : device.allocate(what, layerFloats);
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

    /** Floats of the buffer {@link #load} reads the file through (at least one row of any tensor). */
    static final int LOAD_CHUNK_FLOATS = 64 * 1024;

    /**
     * Imports weight slice {@code slice} straight from {@code src} into this storage, a chunk of rows at a time,
     * without the slice's canonical float copy: the values land exactly where {@link #transfer} of
     * {@code CheckpointSlices.read(src, slice)} puts them (same {@link #segment} calls, same rounding), but the heap
     * holds one {@value #LOAD_CHUNK_FLOATS}-float buffer instead of a copy of the slice (a layer of the 25M model
     * is 11.6 MB; a 32000-row embedding of width 2048, 262 MB). With {@code fp16} every value is rounded to the
     * nearest fp16 value first, as the pipeline does for {@link io.spotserve.exec.WeightPrecision#FP16}.
     */
    void load(ModelWeights src, ContextSlice slice, boolean fp16, int stage) {
        int widest = Math.max(dim, c.hiddenDim());
        float[] buf = new float[(int) Math.max(widest, Math.min(LOAD_CHUNK_FLOATS, slice.floats(c)))];
        if (slice instanceof ContextSlice.Embedding || slice instanceof ContextSlice.Classifier) {
            boolean emb = slice instanceof ContextSlice.Embedding;
            IndexRange range = emb ? ((ContextSlice.Embedding) slice).vocab() : ((ContextSlice.Classifier) slice).vocab();
            if (emb && !hasEmbedding()) {
                allocateVocab(true, "token embedding rows " + vocab + " of stage " + stage);
            } else if (!emb && classifier == null && classifierQ == null) {
                allocateVocab(aliasClassifier, aliasClassifier ? "token embedding / classifier rows " + vocab
                        : "classifier rows " + vocab);
            }
            Tensor t = emb ? Tensor.TOKEN_EMBEDDING : Tensor.CLASSIFIER;
            int per = buf.length / dim;
            for (int r = range.from(); r < range.to(); r += per) {
                int n = Math.min(per, range.to() - r);
                read(src, t, 0, (long) r * dim, buf, n * dim, fp16);
                vocabRows(emb, IndexRange.of(r, r + n), CanonFloats.of(buf), true);
            }
        } else if (slice instanceof ContextSlice.FinalNorm) {
            if (finalNorm == null) {
                finalNorm = device.allocate("final norm", dim);
            }
            read(src, Tensor.RMS_FINAL, 0, 0, buf, dim, fp16);
            rows(finalNorm, 0, CanonFloats.of(buf), 0, dim, true);
        } else {
            loadLayer(src, (ContextSlice.LayerWeights) slice, buf, fp16);
        }
    }

    private void loadLayer(ModelWeights src, ContextSlice.LayerWeights w, float[] buf, boolean fp16) {
        int l = w.layer() - layers.from();
        allocateLayer(l);
        int layer = w.layer();
        IndexRange q = w.heads().scale(hs);
        IndexRange kv = w.kvHeads(c).scale(hs);
        IndexRange fr = w.hidden();
        int q0 = (w.heads().from() - heads.from()) * hs;    // local first row / column of the slice's heads
        int kv0 = (w.kvHeads(c).from() - kvHeads.from()) * hs;
        int f0 = w.hidden().from() - hidden.from();
        CanonFloats canon = CanonFloats.of(buf);
        read(src, Tensor.RMS_ATT, layer, 0, buf, dim, fp16);
        rows(layerW[l], 0, canon, 0, dim, true);
        read(src, Tensor.RMS_FFN, layer, 0, buf, dim, fp16);
        rows(layerW[l], dim, canon, 0, dim, true);
        loadRows(src, Tensor.WQ, layer, q, dim, 0, dim, QKV, l, r -> q0 + r, 0, buf, fp16);
        loadRows(src, Tensor.WK, layer, kv, dim, 0, dim, QKV, l, r -> qDim + kv0 + r, 0, buf, fp16);
        loadRows(src, Tensor.WV, layer, kv, dim, 0, dim, QKV, l, r -> qDim + kvDim + kv0 + r, 0, buf, fp16);
        loadRows(src, Tensor.WO, layer, IndexRange.of(0, dim), dim, q.from(), q.length(), WO, l, r -> r, q0, buf,
                fp16);
        loadRows(src, Tensor.W1, layer, fr, dim, 0, dim, W13, l, r -> w13Row(f0 + r, false), 0, buf, fp16);
        loadRows(src, Tensor.W3, layer, fr, dim, 0, dim, W13, l, r -> w13Row(f0 + r, true), 0, buf, fp16);
        loadRows(src, Tensor.W2, layer, IndexRange.of(0, dim), c.hiddenDim(), fr.from(), fr.length(), W2, l, r -> r,
                f0, buf, fp16);
    }

    /**
     * Rows {@code fileRows} of a file tensor of row width {@code width}, columns {@code [col0, col0 + len)}, into
     * layer matrix {@code m} of local layer {@code l}: the k-th row to storage row {@code toRow(k)} at column
     * {@code toCol}. Whole rows are read several at a time.
     */
    private void loadRows(ModelWeights src, Tensor t, int layer, IndexRange fileRows, int width, int col0, int len,
                          int m, int l, java.util.function.IntUnaryOperator toRow, int toCol, float[] buf,
                          boolean fp16) {
        int per = len == width ? buf.length / width : 1;
        CanonFloats canon = CanonFloats.of(buf);
        for (int k = 0; k < fileRows.length(); k += per) {
            int n = Math.min(per, fileRows.length() - k);
            long at = (long) (fileRows.from() + k) * width + col0;
            read(src, t, layer, at, buf, n == 1 ? len : n * width, fp16);
            for (int i = 0; i < n; i++) {
                segment(m, l, toRow.applyAsInt(k + i), toCol, canon, i * width, len, true);
            }
        }
    }

    private static void read(ModelWeights src, Tensor t, int layer, long offset, float[] buf, int len, boolean fp16) {
        src.read(t, layer, offset, buf, 0, len);
        if (fp16) {
            for (int i = 0; i < len; i++) {
                buf[i] = HalfFloats.round(buf[i]);
            }
        }
    }

    /** Whole rows {@code [r0, r0 + count)} of layer matrix {@code m}, contiguous in {@code canon} from {@code o}. */
    private int matrixRows(int m, int l, int r0, int count, CanonFloats canon, int o, boolean importing) {
        int n = matCols[m];
        int r = canon.firstRun(o, n, count);
        segments(m, l, r0 + r, canon.endRun(o, n, count) - r, 0, canon, o + r * n, n, importing);
        return o + count * n;
    }

    /**
     * w1 (or w3, {@code up}) rows of hidden units {@code [sf0, sf0 + nf)} (local), contiguous in {@code canon} from
     * {@code o}: each run of units inside one {@link StageShard#UNIT_BLOCK} is a run of consecutive rows of w13.
     */
    private void w13Rows(int l, int sf0, int nf, boolean up, CanonFloats canon, int o, boolean importing) {
        for (int k = canon.firstRun(o, dim, nf), end = canon.endRun(o, dim, nf); k < end; ) {
            int u = sf0 + k;
            int run = Math.min(end - k, StageShard.UNIT_BLOCK - u % StageShard.UNIT_BLOCK);
            segments(W13, l, w13Row(u, up), run, 0, canon, o + k * dim, dim, importing);
            k += run;
        }
    }

    /** {@link #segment} for rows {@code [r0, r0 + count)}, their segments back to back in {@code canon} from cOff. */
    private void segments(int m, int l, int r0, int count, int j0, CanonFloats canon, int cOff, int len,
                          boolean importing) {
        if (!q8[m]) {
            int n = matCols[m];
            PackedRows.segments(layerW[l], matOff[m], matRows[m], n, n >= packMinColumns ? lanes : 0, r0, count, j0,
                    canon, cOff, len, importing);
            return;
        }
        for (int r = 0; r < count; r++) {
            segment(m, l, r0 + r, j0, canon, cOff + r * len, len, importing);
        }
    }

    /** Columns {@code [j0, j0 + len)} of row {@code r} of layer matrix {@code m} of local layer {@code l}, in or out. */
    private void segment(int m, int l, int r, int j0, CanonFloats canon, int cOff, int len, boolean importing) {
        int n = matCols[m];
        if (!q8[m]) {
            int packed = n >= packMinColumns ? lanes : 0;
            PackedRows.segment(layerW[l], matOff[m], matRows[m], n, packed, r, j0, canon, cOff, len, importing);
            return;
        }
        float[] a = canon.array();
        byte[] q = layerQ[l];
        int rows = matRows[m];
        int off = matOff[m];
        int bl = Q8Blocks.BLOCK;
        float[] st = staging[m][l];
        boolean whole = Q8Blocks.aligned(j0) && Q8Blocks.aligned(len);
        int k0 = j0 / bl;
        int k1 = (j0 + len + bl - 1) / bl;
        if (importing) {
            if (st == null && whole) {
                Q8Tiles.quantizeRow(a, cOff, q, off, rows, n, r, k0, k1 - k0);
                return;
            }
            if (st == null) { // a piece that splits blocks: assemble this matrix in floats until the layer is complete
                st = new float[rows * n];
                for (int i = 0; i < rows; i++) {
                    Q8Tiles.dequantizeRow(q, off, rows, n, i, 0, n / bl, st, i * n);
                }
                staging[m][l] = st;
            }
            System.arraycopy(a, cOff, st, r * n + j0, len);
            Q8Tiles.quantizeRow(st, r * n + k0 * bl, q, off, rows, n, r, k0, k1 - k0);
        } else if (st != null) {
            System.arraycopy(st, r * n + j0, a, cOff, len);
        } else if (whole) {
            Q8Tiles.dequantizeRow(q, off, rows, n, r, k0, k1 - k0, a, cOff);
        } else {
            float[] tmp = new float[(k1 - k0) * bl];
            Q8Tiles.dequantizeRow(q, off, rows, n, r, k0, k1 - k0, tmp, 0);
            System.arraycopy(tmp, j0 - k0 * bl, a, cOff, len);
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
    private void vocabRows(boolean embeddingRows, IndexRange range, CanonFloats canon, boolean importing) {
        int r0 = range.from() - vocab.from();
        if (!q8Vocab) {
            rows(embeddingRows ? embedding : classifier, r0 * dim, canon, 0, range.length() * dim, importing);
            return;
        }
        byte[] q = embeddingRows ? embeddingQ : classifierQ;
        int rows = vocab.length();
        int blocks = dim / Q8Blocks.BLOCK;
        for (int r = 0; r < range.length(); r++) {
            if (importing) {
                Q8Tiles.quantizeRow(canon.array(), r * dim, q, 0, rows, dim, r0 + r, 0, blocks);
            } else {
                Q8Tiles.dequantizeRow(q, 0, rows, dim, r0 + r, 0, blocks, canon.array(), r * dim);
            }
        }
    }

    /** Storage row of local hidden unit {@code u}'s w1 row (or w3 row when {@code up}) in the w13 matrix. */
    private int w13Row(int u, boolean up) {
        int start = u - u % StageShard.UNIT_BLOCK;
        int m = Math.min(StageShard.UNIT_BLOCK, f - start);
        return 2 * start + u % StageShard.UNIT_BLOCK + (up ? m : 0);
    }

    static void rows(float[] store, int storeOff, CanonFloats canon, int canonOff, int len, boolean importing) {
        canon.copy(store, storeOff, canonOff, len, importing);
    }

    /** Frees one whole weight unit (a layer block, the embedding, the classifier or the final norm). */
    void release(ContextSlice slice, WeightCoverage coverage) {
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
        if (layerBytes == 0) {
            device.freeLayer(layerW[l]);
        } else {
            device.free(layerW[l]);
        }
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

    /** Frees every weight. */
    void releaseAll() {
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
    }

    /** Copies the embedding row of local vocabulary row {@code row} into {@code x[xOff..]}. */
    void embed(int row, float[] x, int xOff) {
        if (q8Vocab) {
            Q8Tiles.dequantizeRow(embeddingQ, 0, vocab.length(), dim, row, 0, dim / Q8Blocks.BLOCK, x, xOff);
        } else {
            System.arraycopy(embedding, row * dim, x, xOff, dim);
        }
    }
}
