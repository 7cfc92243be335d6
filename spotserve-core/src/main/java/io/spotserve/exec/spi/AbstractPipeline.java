package io.spotserve.exec.spi;

import io.spotserve.model.HalfFloats;
import io.spotserve.exec.CheckpointSlices;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.SliceImport;
import io.spotserve.exec.TensorReducer;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.LlamaConfig;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The backend-independent part of a {@link Pipeline}, for executor implementors: position lookup, weight
 * loading with an up-front memory check per device, slice export / import / release checks (the context
 * migration of SpotServe §3.3), sequence bookkeeping with all-or-nothing KV reservation, forward-step
 * validation and readiness, and close. A backend supplies its positions and the forward math in
 * {@link #compute}; validation runs once per step, never per row.
 *
 * @param <S> the backend's position type
 */
public abstract class AbstractPipeline<S extends PipelinePosition> implements Pipeline {
    /** The sharding of this pipeline. */
    protected final ShardLayout layout;
    /** The model shape. */
    protected final LlamaConfig c;
    /** The most entries of one forward step. */
    protected final int maxBatch;
    /**
     * The positions, [stage][shard - hostedShards.from]; a partial pipeline has null rows for the stages it does not
     * host, and a split tensor group rows of its shards only.
     */
    protected final S[][] shards;
    /** The stages whose positions are in {@link #shards}: all of them, or a sub-range for a partial pipeline. */
    protected final IndexRange hosted;
    /** The shards of each hosted stage in {@link #shards}: all M, or a sub-range for a split tensor group. */
    protected final IndexRange hostedShards;
    /** How this pipeline keeps weights: imported weight values are rounded to it before a position sees them. */
    protected final WeightPrecision weights;
    private final Map<Long, int[]> sequences = new LinkedHashMap<>(); // id -> {capacity, length}
    private boolean closed;
    /** Counts loads, imports and releases of weight storage (an abandoned part-wise import checks it). */
    private long storageChanges;
    /** The float buffer the array paths of {@link #exportSlice} and {@link #importSlice} reuse. */
    private final FloatScratch scratch = new FloatScratch();

    /** A pipeline over {@code shards}, built by the backend as [stage][shard] for {@code layout}; fp32 weights. */
    protected AbstractPipeline(ShardLayout layout, int maxBatch, S[][] shards) {
        this(layout, maxBatch, shards, WeightPrecision.FP32);
    }

    /**
     * A pipeline over {@code shards} whose imported weights are rounded to {@code weights} (so every backend
     * computes with the same values; a backend may then store them natively, e.g. as halves).
     */
    protected AbstractPipeline(ShardLayout layout, int maxBatch, S[][] shards, WeightPrecision weights) {
        this.layout = layout;
        this.c = layout.config();
        this.maxBatch = maxBatch;
        this.shards = shards;
        this.weights = Objects.requireNonNull(weights, "weights");
        this.hosted = HostedPositions.stages(shards);
        this.hostedShards = HostedPositions.shards(layout, hosted, shards);
    }

    @Override
    public final IndexRange hostedStages() {
        return hosted;
    }

    @Override
    public final IndexRange hostedShards() {
        return hostedShards;
    }

    /**
     * Whether this pipeline hosts only some positions: some stages ({@link io.spotserve.exec.Executor#createStages})
     * or some shards ({@link io.spotserve.exec.Executor#createShardGroup}).
     */
    protected final boolean partial() {
        return hosted.length() != layout.stages() || splitGroup();
    }

    /** Whether this pipeline hosts a strict subset of the M shards (its all-reduce needs a {@link TensorReducer}). */
    protected final boolean splitGroup() {
        return hostedShards.length() != layout.shards();
    }

    /**
     * The backend's step through one hosted stage on validated input with the stage's positions complete, as in
     * {@link #forwardStage}; the default refuses (a backend that only runs whole pipelines).
     */
    protected void computeStage(int stage, long[] seqs, int[] tokens, int[] positions, int count, float[] hidden,
                                float[][] logits) {
        throw new UnsupportedOperationException(this + " cannot run stages separately");
    }

    /**
     * The backend's step through one hosted stage of a split tensor group, as {@link #computeStage} but reducing
     * through {@code reduce} at every point, in the order {@link TensorReducer.Point} gives; the default refuses.
     */
    protected void computeGroupStage(int stage, long[] seqs, int[] tokens, int[] positions, int count, float[] hidden,
                                     float[][] logits, GroupReduce reduce) {
        throw new UnsupportedOperationException(this + " cannot run a split tensor group");
    }

    @Override
    public final WeightPrecision weightPrecision() {
        return weights;
    }

    /** Rounds the canonical floats of a weight slice to this pipeline's precision (KV caches stay fp32). */
    private float[] quantized(ContextSlice slice, float[] canon) {
        if (weights == WeightPrecision.FP16 && !(slice instanceof ContextSlice.KvCache)) {
            HalfFloats.round(canon);
        }
        return canon;
    }

    /** The backend's forward step on validated input with every position complete; logits as in {@link #forward}. */
    protected abstract void compute(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits);

    /** Called once when the pipeline closes, after its storage is freed (e.g. to tell the executor). */
    protected abstract void onClose();

    /**
     * cos/sin of run.c's rotary angles: [pos][pair][cos, sin] for {@code positions} positions, angle
     * {@code pos · freq} with the config's frequencies ({@link LlamaConfig#ropeFrequencies}: 1 / theta^(2·pair / hs)
     * in float, divided by the rope scaling factor); llama2.c's table for theta 10000.
     */
    public static float[] ropeTable(LlamaConfig c, int positions) {
        int half = c.headSize() / 2;
        float[] freq = c.ropeFrequencies();
        float[] t = new float[Math.multiplyExact(positions, half * 2)];
        for (int pos = 0; pos < positions; pos++) {
            for (int i = 0; i < half; i++) {
                float val = pos * freq[i];
                t[(pos * half + i) * 2] = (float) Math.cos(val);
                t[(pos * half + i) * 2 + 1] = (float) Math.sin(val);
            }
        }
        return t;
    }

    /** {@link #ropeTable(LlamaConfig, int)} for all {@code seq_len} positions. */
    public static float[] ropeTable(LlamaConfig c) {
        return ropeTable(c, c.seqLen());
    }

    @Override
    public final ShardLayout layout() {
        return layout;
    }

    @Override
    public final int maxBatch() {
        return maxBatch;
    }

    @Override
    public final Device device(int stage, int shard) {
        return position(stage, shard).device();
    }

    /** The open pipeline's position (stage, shard), checked against the layout. */
    protected final S position(int stage, int shard) {
        checkOpen();
        if (stage < 0 || stage >= layout.stages() || shard < 0 || shard >= layout.shards()) {
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") outside P = "
                    + layout.stages() + ", M = " + layout.shards());
        }
        if (shards[stage] == null) {
            throw new IllegalArgumentException("stage " + stage + " of " + layout + " is not hosted by this partial "
                    + "pipeline (it hosts stages " + hosted + ")");
        }
        if (!hostedShards.contains(shard)) {
            throw new IllegalArgumentException("shard " + shard + " of " + layout + " is not hosted by this tensor group "
                    + "(it hosts shards " + hostedShards + ")");
        }
        return shards[stage][shard - hostedShards.from()];
    }

    boolean isClosed() {
        return closed;
    }

    /** Records a change of the positions' weight storage (a load, an import, a release). */
    void storageChanged() {
        storageChanges++;
    }

    /** How many storage changes happened after the one numbered {@code began}. */
    long storageChangesSince(long began) {
        return storageChanges - began;
    }

    /** @throws IllegalStateException if the pipeline is closed */
    protected final void checkOpen() {
        if (closed) {
            throw new IllegalStateException("pipeline " + layout + " is closed");
        }
    }

    // ------------------------------------------------------------------ weights

    @Override
    public final void loadWeights(ModelWeights checkpoint) {
        Objects.requireNonNull(checkpoint, "checkpoint");
        checkOpen();
        if (!checkpoint.config().equals(c)) {
            throw new IllegalArgumentException("checkpoint shape " + checkpoint.config() + " differs from the pipeline's "
                    + c);
        }
        storageChanged();
        // all-or-nothing per device: check every device can take what is still missing before allocating
        Map<Device, Long> need = new IdentityHashMap<>();
        for (S[] stage : shards) {
            if (stage == null) {
                continue; // a stage another process hosts
            }
            for (S s : stage) {
                long bytes = 0;
                for (ContextSlice slice : layout.weightSlices(s.stage(), s.shard())) {
                    bytes += s.allocationBytes(slice);
                }
                if (s.aliasClassifier() && s.allocationBytes(new ContextSlice.Embedding(s.vocab())) > 0) {
                    // embedding and classifier share rows: counted once
                    bytes -= s.allocationBytes(new ContextSlice.Classifier(s.vocab()));
                }
                need.merge(s.device(), bytes, Long::sum);
            }
        }
        for (Map.Entry<Device, Long> e : need.entrySet()) {
            Device d = e.getKey();
            if (e.getValue() > d.freeBytes()) {
                throw new DeviceMemoryException(d.id(), "weights of " + layout + " from " + checkpoint.description(),
                        e.getValue(), d.usedBytes(), d.capacityBytes());
            }
        }
        for (S[] stage : shards) {
            if (stage == null) {
                continue; // a stage another process hosts
            }
            for (S s : stage) {
                for (ContextSlice slice : layout.weightSlices(s.stage(), s.shard())) {
                    if (!s.load(checkpoint, slice, weights == WeightPrecision.FP16)) {
                        s.transfer(slice, quantized(slice, CheckpointSlices.read(checkpoint, slice)), true);
                    }
                }
            }
        }
    }

    @Override
    public final boolean hasAllWeights(int stage, int shard) {
        return position(stage, shard).complete();
    }

    @Override
    public final void releaseSlice(int stage, int shard, ContextSlice slice) {
        S s = position(stage, shard);
        Objects.requireNonNull(slice, "slice");
        if (!layout.weightSlices(stage, shard).contains(slice)) {
            throw new IllegalArgumentException(slice + " is not a weight unit of position (stage " + stage + ", shard "
                    + shard + ") of " + layout + "; expected one of " + layout.weightSlices(stage, shard));
        }
        storageChanged();
        s.release(slice);
    }

    @Override
    public final byte[] exportSlice(int stage, int shard, ContextSlice slice) {
        return exportSlice(stage, shard, slice, (byte[]) null);
    }

    /** Fp32 slices are encoded into {@code reuse} when its length fits; Q8_0 blocks (variable length) never are. */
    @Override
    public final byte[] exportSlice(int stage, int shard, ContextSlice slice, byte[] reuse) {
        S s = holding(stage, shard, slice);
        float[] data = scratch.take(Math.toIntExact(slice.floats(c)));
        try {
            s.transfer(slice, data, false);
            // Q8_0 weights leave as their blocks (version 2, lossless), not as 4-byte floats
            return q8Weights(slice) ? SliceFormat.encodeQ8(c, slice, data) : SliceFormat.encode(c, slice, data, reuse);
        } finally {
            scratch.give(data);
        }
    }

    /**
     * Fp32 slices go from the position's storage straight into the buffer's payload when the position has a
     * {@link PipelinePosition#transfer(ContextSlice, FloatBuffer, boolean) buffer path}; Q8_0 weights keep the array
     * path (their length varies) and are copied in.
     */
    @Override
    public final ByteBuffer exportSlice(int stage, int shard, ContextSlice slice, ByteBuffer reuse) {
        if (q8Weights(slice)) {
            return Pipeline.super.exportSlice(stage, shard, slice, reuse);
        }
        S s = holding(stage, shard, slice);
        int size = Math.toIntExact(SliceFormat.encodedLength(c, slice));
        ByteBuffer out = reuse != null && reuse.capacity() >= size ? reuse
                : reuse != null && reuse.isDirect() ? ByteBuffer.allocateDirect(size) : ByteBuffer.allocate(size);
        FloatBuffer canon = SliceFormat.startFloats(c, slice, out);
        if (!s.transfer(slice, canon, false)) {
            float[] data = scratch.take(canon.capacity());
            try {
                s.transfer(slice, data, false);
                canon.put(0, data);
            } finally {
                scratch.give(data);
            }
        }
        return out;
    }

    /** Fp32 slices of a position with a part path; -1 for Q8_0 weights (their encoding's length varies). */
    @Override
    public final long exportLength(int stage, int shard, ContextSlice slice) {
        if (q8Weights(slice)) {
            return -1;
        }
        S s = holding(stage, shard, slice);
        return SliceParts.exportable(s, slice) ? SliceFormat.encodedLength(c, slice) : -1;
    }

    @Override
    public final void exportPart(int stage, int shard, ContextSlice slice, long offset, ByteBuffer dst) {
        S s = holding(stage, shard, slice);
        if (q8Weights(slice) || !SliceParts.export(c, s, slice, offset, dst)) {
            throw new UnsupportedOperationException(slice + " of position (stage " + stage + ", shard " + shard
                    + ") is exported only whole");
        }
    }

    /**
     * Fp32 weight slices the position owns but does not hold yet, and KV slices of a sequence open here (any weight
     * precision: the cache is fp32), on a position with a part path; a weight slice's storage is allocated here, a KV
     * slice goes into the sequence's cache, which its opening reserved. A KV slice extends the sequence's filled length
     * only when its import finishes; one abandoned halfway leaves the length as it was (the positions it wrote hold the
     * source's checked bytes, and a retry imports them again).
     */
    @Override
    public final SliceImport beginImport(int stage, int shard, ContextSlice slice, long length) {
        S s = position(stage, shard);
        Objects.requireNonNull(slice, "slice");
        slice.validate(c);
        owning(stage, shard, s, slice);
        if (length != SliceFormat.encodedLength(c, slice)) {
            return null;
        }
        if (slice instanceof ContextSlice.KvCache) {
            if (!s.transferPart(slice, SliceParts.NOTHING, 0, true)) {
                return null;
            }
            return new SliceParts.Import(this, c, s, slice, false, storageChanges);
        }
        if (weights != WeightPrecision.FP32 || s.holds(slice, 0)) {
            return null;
        }
        boolean allocates = s.allocationBytes(slice) > 0;
        if (!s.transferPart(slice, SliceParts.NOTHING, 0, true)) { // allocates the missing storage
            return null;
        }
        storageChanged();
        return new SliceParts.Import(this, c, s, slice, allocates, storageChanges);
    }

    /** Whether {@code slice} is a weight slice this pipeline keeps (and exports) as Q8_0 blocks. */
    private boolean q8Weights(ContextSlice slice) {
        return weights == WeightPrecision.Q8_0 && !(slice instanceof ContextSlice.KvCache);
    }

    /** Position (stage, shard), checked to hold all of {@code slice} (for KV: its sequence's filled positions). */
    private S holding(int stage, int shard, ContextSlice slice) {
        S s = position(stage, shard);
        Objects.requireNonNull(slice, "slice");
        slice.validate(c);
        int filled = filledLength(slice);
        if (!s.holds(slice, filled)) {
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") of " + layout
                    + " does not hold " + slice + (slice instanceof ContextSlice.KvCache ? " (filled length " + filled
                    + ")" : ""));
        }
        return s;
    }

    /** Position (stage, shard), checked to own all of {@code slice} (it may be imported there). */
    private S owning(int stage, int shard, S s, ContextSlice slice) {
        if (!s.owns(slice)) {
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") of " + layout
                    + " does not own " + slice + "; it owns layers " + s.layers() + ", heads " + s.heads()
                    + ", kv heads " + s.kvHeads() + ", hidden " + s.hidden() + ", vocab " + s.vocab()
                    + (slice instanceof ContextSlice.KvCache k && !sequences.containsKey(k.sequence())
                    ? " (sequence " + k.sequence() + " is not open here)" : ""));
        }
        return s;
    }

    /** As the buffer version: fp32 slices go from the bytes straight into storage. */
    @Override
    public final ContextSlice importSlice(int stage, int shard, byte[] bytes) {
        return importSlice(stage, shard, ByteBuffer.wrap(Objects.requireNonNull(bytes, "bytes")));
    }

    /**
     * Version-1 bytes of a slice stored as fp32 go from the buffer straight into the position's storage when it has a
     * {@link PipelinePosition#transfer(ContextSlice, FloatBuffer, boolean) buffer path}; the rest (Q8_0-encoded bytes,
     * weights rounded to fp16 or quantized to Q8_0 here) through a float array.
     */
    @Override
    public final ContextSlice importSlice(int stage, int shard, ByteBuffer bytes) {
        S s = position(stage, shard);
        ContextSlice slice = SliceFormat.peek(c, bytes);
        owning(stage, shard, s, slice);
        storageChanged();
        FloatBuffer canon = weights == WeightPrecision.FP32 || slice instanceof ContextSlice.KvCache
                ? SliceFormat.floats(bytes) : null;
        if (canon == null || !s.transfer(slice, canon, true)) {
            float[] data = scratch.take(Math.toIntExact(slice.floats(c)));
            try {
                SliceFormat.decodeInto(c, bytes, data);
                s.transfer(slice, quantized(slice, data), true);
            } finally {
                scratch.give(data);
            }
        }
        imported(slice);
        return slice;
    }

    /** The state ({capacity, filled length}) of sequence {@code id} while it stays open here; null if it is not open. */
    final int[] sequenceState(long id) {
        return sequences.get(id);
    }

    /** The filled length of the sequence of a KV slice (0 for weights or a sequence not open here). */
    protected final int filledLength(ContextSlice slice) {
        int[] st = slice instanceof ContextSlice.KvCache k ? sequences.get(k.sequence()) : null;
        return st == null ? 0 : st[1];
    }

    /** Records that {@code slice} arrived here: a KV slice extends its sequence's filled length. */
    protected final void imported(ContextSlice slice) {
        if (slice instanceof ContextSlice.KvCache k) {
            int[] st = sequences.get(k.sequence());
            st[1] = Math.max(st[1], k.length());
        }
    }

    // ------------------------------------------------------------------ sequences

    @Override
    public final void openSequence(long sequence, int capacity) {
        checkOpen();
        if (sequences.containsKey(sequence)) {
            throw new IllegalArgumentException("sequence " + sequence + " is already open");
        }
        if (capacity < 1 || capacity > c.seqLen()) {
            throw new IllegalArgumentException("sequence " + sequence + " capacity " + capacity + " outside [1, seq_len "
                    + c.seqLen() + "]");
        }
        List<S> done = new ArrayList<>();
        try {
            for (S[] stage : shards) {
                if (stage == null) {
                    continue; // a stage another process hosts
                }
                for (S s : stage) {
                    s.reserveSequence(sequence, capacity, "KV cache of sequence " + sequence + " (" + capacity
                            + " positions, stage " + s.stage() + ", shard " + s.shard() + ")");
                    done.add(s);
                }
            }
        } catch (RuntimeException e) {
            for (S s : done) {
                s.removeSequence(sequence);
            }
            throw e;
        }
        sequences.put(sequence, new int[] {capacity, 0});
    }

    @Override
    public final void closeSequence(long sequence) {
        checkOpen();
        if (sequences.remove(sequence) != null) {
            for (S[] stage : shards) {
                if (stage == null) {
                    continue; // a stage another process hosts
                }
                for (S s : stage) {
                    s.removeSequence(sequence);
                }
            }
        }
    }

    @Override
    public final Set<Long> sequences() {
        return Collections.unmodifiableSet(new LinkedHashSet<>(sequences.keySet()));
    }

    @Override
    public final int length(long sequence) {
        int[] st = sequences.get(sequence);
        if (st == null) {
            throw new IllegalArgumentException("sequence " + sequence + " is not open");
        }
        return st[1];
    }

    // ------------------------------------------------------------------ forward

    @Override
    public final void forward(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits) {
        checkOpen();
        if (partial()) {
            throw new IllegalStateException("this partial pipeline hosts only stages " + hosted + ", shards "
                    + hostedShards + " of " + layout + "; run it stage by stage with forwardStage");
        }
        validate(seqs, tokens, positions, count, logits);
        for (S[] stage : shards) {
            if (stage == null) {
                continue; // a stage another process hosts
            }
            for (S s : stage) {
                if (!s.complete()) {
                    throw new IllegalStateException("position (stage " + s.stage() + ", shard " + s.shard() + ") of "
                            + layout + " lacks weights; load or import all its slices first");
                }
            }
        }
        compute(seqs, tokens, positions, count, logits);
        for (int b = 0; b < count; b++) {
            int[] st = sequences.get(seqs[b]);
            st[1] = Math.max(st[1], positions[b] + 1);
        }
    }

    @Override
    public final void forwardStage(int stage, long[] seqs, int[] tokens, int[] positions, int count, float[] hidden,
                                   float[][] logits) {
        forwardStage(stage, seqs, tokens, positions, count, hidden, logits, null);
    }

    @Override
    public final void forwardStage(int stage, long[] seqs, int[] tokens, int[] positions, int count, float[] hidden,
                                   float[][] logits, TensorReducer reducer) {
        checkOpen();
        if (splitGroup() && reducer == null) {
            throw new IllegalArgumentException("this pipeline hosts shards " + hostedShards + " of the " + layout.shards()
                    + " of " + layout + ": its steps need a TensorReducer summing the other shards' partials");
        }
        if (!hosted.contains(stage)) {
            throw new IllegalArgumentException("stage " + stage + " of " + layout + " is not hosted here (stages "
                    + hosted + ")");
        }
        validate(seqs, tokens, positions, count, logits);
        if (stage > 0 || stage + 1 < layout.stages()) {
            Objects.requireNonNull(hidden, "hidden");
            if (hidden.length < (long) count * c.dim()) {
                throw new IllegalArgumentException("hidden has " + hidden.length + " floats, expected at least count "
                        + count + " x dim " + c.dim());
            }
        }
        for (S s : shards[stage]) {
            if (!s.complete()) {
                throw new IllegalStateException("position (stage " + s.stage() + ", shard " + s.shard() + ") of "
                        + layout + " lacks weights; load or import all its slices first");
            }
        }
        if (splitGroup()) {
            computeGroupStage(stage, seqs, tokens, positions, count, hidden, logits,
                    new GroupReduce(reducer, hostedShards, count * c.dim()));
        } else {
            computeStage(stage, seqs, tokens, positions, count, hidden, logits);
        }
        for (int b = 0; b < count; b++) {
            int[] st = sequences.get(seqs[b]);
            st[1] = Math.max(st[1], positions[b] + 1);
        }
    }

    @Override
    public boolean isReady() {
        for (int p = hosted.from(); p < hosted.to(); p++) {
            for (int m = hostedShards.from(); m < hostedShards.to(); m++) {
                if (!hasAllWeights(p, m)) {
                    return false;
                }
            }
        }
        return true;
    }

    private void validate(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits) {
        checkBatchArrays(seqs, tokens, positions, count, logits, maxBatch);
        for (int b = 0; b < count; b++) {
            int[] st = sequences.get(seqs[b]);
            if (st == null) {
                throw new IllegalArgumentException("entry " + b + ": sequence " + seqs[b] + " is not open");
            }
            if (tokens[b] < 0 || tokens[b] >= c.vocabSize()) {
                throw new IllegalArgumentException("entry " + b + ": token " + tokens[b] + " outside [0, vocab "
                        + c.vocabSize() + ")");
            }
            int pos = positions[b];
            int prev = -1; // the next position after this sequence's latest earlier entry in the batch
            for (int e = b - 1; e >= 0; e--) {
                if (seqs[e] == seqs[b]) {
                    prev = positions[e] + 1;
                    break;
                }
            }
            if (prev >= 0 && pos != prev) {
                throw new IllegalArgumentException("entry " + b + ": sequence " + seqs[b] + " repeats in the batch at "
                        + "position " + pos + ", expected the next position " + prev);
            }
            int filled = prev >= 0 ? prev : st[1];
            if (pos < 0 || pos > filled || pos >= st[0]) {
                throw new IllegalArgumentException("entry " + b + ": position " + pos + " of sequence " + seqs[b]
                        + " outside [0, min(filled length " + filled + ", capacity " + (st[0] - 1) + ")]");
            }
            if (logits[b] != null && logits[b].length != c.vocabSize()) {
                throw new IllegalArgumentException("entry " + b + ": logits array has " + logits[b].length
                        + " floats, expected vocab " + c.vocabSize());
            }
        }
    }

    /**
     * The array checks of a {@link Pipeline#forward} call, shared by pipelines that do not extend this class so that
     * every executor rejects a malformed batch with the same message.
     *
     * @throws NullPointerException     if an array is null
     * @throws IllegalArgumentException if count is outside [1, maxBatch] or an array is shorter than count
     */
    public static void checkBatchArrays(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits,
                                        int maxBatch) {
        Objects.requireNonNull(seqs, "sequences");
        Objects.requireNonNull(tokens, "tokens");
        Objects.requireNonNull(positions, "positions");
        Objects.requireNonNull(logits, "logits");
        if (count < 1 || count > maxBatch) {
            throw new IllegalArgumentException("batch of " + count + " entries outside [1, maxBatch " + maxBatch + "]");
        }
        if (seqs.length < count || tokens.length < count || positions.length < count || logits.length < count) {
            throw new IllegalArgumentException("batch arrays shorter than count " + count + ": sequences " + seqs.length
                    + ", tokens " + tokens.length + ", positions " + positions.length + ", logits " + logits.length);
        }
    }

    @Override
    public final void close() {
        if (closed) {
            return;
        }
        for (S[] stage : shards) {
            if (stage == null) {
                continue; // a stage another process hosts
            }
            for (S s : stage) {
                s.releaseAll();
            }
        }
        sequences.clear();
        scratch.clear();
        closed = true;
        onClose();
    }
}
