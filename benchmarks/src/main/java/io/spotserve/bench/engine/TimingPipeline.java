package io.spotserve.bench.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.spi.AbstractPipeline;
import io.spotserve.exec.spi.WeightCoverage;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.LlamaConfig;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A pipeline of the {@link TimingExecutor}: the bookkeeping of a real pipeline without its floats. Checks and
 * messages follow {@code AbstractPipeline} (ownership on import, holding on export, all-or-nothing KV reservation,
 * forward validation); storage is charged to the devices with the CPU executor's sizes.
 *
 * <p>{@link #forward} writes {@code 1} at {@link TimingExecutor#SPIKE_TOKEN} of every non-null logits row and touches
 * nothing else, so rows must arrive zeroed or holding only earlier spikes of this executor (the engine reuses its
 * rows between steps); greedy sampling then picks that token. A step costs O(count).
 */
final class TimingPipeline implements Pipeline {
    private final TimingExecutor executor;
    private final ShardLayout layout;
    private final LlamaConfig c;
    private final int maxBatch;
    private final Position[][] positions;
    private final Map<Long, Seq> sequences = new LinkedHashMap<>();
    private final Seq[] resolved;
    private int step;
    private boolean readyKnown;
    private boolean ready;
    private boolean closed;

    /** One open sequence: capacity, filled length and the scratch of the running step's validation. */
    private static final class Seq {
        final int capacity;
        int length;
        int stamp;  // the step that last saw this sequence
        int next;   // position after its latest entry in that step

        Seq(int capacity) {
            this.capacity = capacity;
        }
    }

    TimingPipeline(TimingExecutor executor, ShardLayout layout, List<TimingDevice> devices, int maxBatch) {
        this.executor = executor;
        this.layout = layout;
        this.c = layout.config();
        this.maxBatch = maxBatch;
        this.positions = new Position[layout.stages()][layout.shards()];
        for (int p = 0; p < layout.stages(); p++) {
            for (int m = 0; m < layout.shards(); m++) {
                positions[p][m] = new Position(layout, p, m, devices.get(p * layout.shards() + m));
            }
        }
        this.resolved = new Seq[maxBatch];
    }

    @Override
    public ShardLayout layout() {
        return layout;
    }

    @Override
    public int maxBatch() {
        return maxBatch;
    }

    @Override
    public Device device(int stage, int shard) {
        return position(stage, shard).device;
    }

    private Position position(int stage, int shard) {
        checkOpen();
        if (stage < 0 || stage >= layout.stages() || shard < 0 || shard >= layout.shards()) {
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") outside P = "
                    + layout.stages() + ", M = " + layout.shards());
        }
        return positions[stage][shard];
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("pipeline " + layout + " is closed");
        }
    }

    // ------------------------------------------------------------------ weights

    /** Charges every weight unit still missing, after checking each device can take all of it. */
    @Override
    public void loadWeights(ModelWeights checkpoint) {
        Objects.requireNonNull(checkpoint, "checkpoint");
        checkOpen();
        if (!checkpoint.config().equals(c)) {
            throw new IllegalArgumentException("checkpoint shape " + checkpoint.config() + " differs from the pipeline's "
                    + c);
        }
        Map<Device, Long> need = new IdentityHashMap<>();
        for (Position[] stage : positions) {
            for (Position s : stage) {
                long bytes = 0;
                for (ContextSlice slice : layout.weightSlices(s.cov.stage(), s.cov.shard())) {
                    bytes += s.allocationBytes(slice);
                }
                if (s.cov.aliasClassifier() && !s.embHeld) {
                    bytes -= s.vocabBytes; // embedding and classifier share rows
                }
                need.merge(s.device, bytes, Long::sum);
            }
        }
        for (Map.Entry<Device, Long> e : need.entrySet()) {
            Device d = e.getKey();
            if (e.getValue() > d.freeBytes()) {
                throw new DeviceMemoryException(d.id(), "weights of " + layout + " from " + checkpoint.description(),
                        e.getValue(), d.usedBytes(), d.capacityBytes());
            }
        }
        for (Position[] stage : positions) {
            for (Position s : stage) {
                for (ContextSlice slice : layout.weightSlices(s.cov.stage(), s.cov.shard())) {
                    s.take(slice);
                }
            }
        }
        readyKnown = false;
    }

    @Override
    public boolean hasAllWeights(int stage, int shard) {
        return position(stage, shard).cov.complete();
    }

    @Override
    public void releaseSlice(int stage, int shard, ContextSlice slice) {
        Position s = position(stage, shard);
        Objects.requireNonNull(slice, "slice");
        if (!layout.weightSlices(stage, shard).contains(slice)) {
            throw new IllegalArgumentException(slice + " is not a weight unit of position (stage " + stage + ", shard "
                    + shard + ") of " + layout + "; expected one of " + layout.weightSlices(stage, shard));
        }
        s.release(slice);
        readyKnown = false;
    }

    @Override
    public byte[] exportSlice(int stage, int shard, ContextSlice slice) {
        Position s = position(stage, shard);
        Objects.requireNonNull(slice, "slice");
        slice.validate(c);
        Seq seq = slice instanceof ContextSlice.KvCache k ? sequences.get(k.sequence()) : null;
        int filled = seq == null ? 0 : seq.length;
        if (!s.cov.holds(slice, seq == null ? -1 : seq.capacity, filled)) {
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") of " + layout
                    + " does not hold " + slice + (slice instanceof ContextSlice.KvCache ? " (filled length " + filled
                    + ")" : ""));
        }
        return SliceDescriptor.encode(c, slice);
    }

    @Override
    public ContextSlice importSlice(int stage, int shard, byte[] bytes) {
        Position s = position(stage, shard);
        ContextSlice slice = SliceDescriptor.decode(c, bytes);
        Seq seq = slice instanceof ContextSlice.KvCache k ? sequences.get(k.sequence()) : null;
        if (!s.cov.owns(slice, seq == null ? -1 : seq.capacity)) {
            WeightCoverage v = s.cov;
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") of " + layout
                    + " does not own " + slice + "; it owns layers " + v.layers() + ", heads " + v.heads()
                    + ", kv heads " + v.kvHeads() + ", hidden " + v.hidden() + ", vocab " + v.vocab()
                    + (slice instanceof ContextSlice.KvCache k && seq == null
                    ? " (sequence " + k.sequence() + " is not open here)" : ""));
        }
        if (slice instanceof ContextSlice.KvCache k) {
            seq.length = Math.max(seq.length, k.length()); // storage was reserved when the sequence opened
        } else {
            s.take(slice);
            readyKnown = false;
        }
        return slice;
    }

    // ------------------------------------------------------------------ sequences

    @Override
    public void openSequence(long sequence, int capacity) {
        checkOpen();
        if (sequences.containsKey(sequence)) {
            throw new IllegalArgumentException("sequence " + sequence + " is already open");
        }
        if (capacity < 1 || capacity > c.seqLen()) {
            throw new IllegalArgumentException("sequence " + sequence + " capacity " + capacity + " outside [1, seq_len "
                    + c.seqLen() + "]");
        }
        int done = 0;
        int shards = layout.shards();
        try {
            for (Position[] stage : positions) {
                for (Position s : stage) {
                    long bytes = capacity * s.kvBytesPerPosition;
                    if (!s.device.tryAllocate(bytes)) {
                        throw s.device.outOfMemory("KV cache of sequence " + sequence + " (" + capacity
                                + " positions, stage " + s.cov.stage() + ", shard " + s.cov.shard() + ")", bytes);
                    }
                    done++;
                }
            }
        } catch (RuntimeException e) {
            for (int i = 0; i < done; i++) {
                Position s = positions[i / shards][i % shards];
                s.device.free(capacity * s.kvBytesPerPosition);
            }
            throw e;
        }
        sequences.put(sequence, new Seq(capacity));
    }

    @Override
    public void closeSequence(long sequence) {
        checkOpen();
        Seq seq = sequences.remove(sequence);
        if (seq != null) {
            freeKv(seq);
        }
    }

    private void freeKv(Seq seq) {
        for (Position[] stage : positions) {
            for (Position s : stage) {
                s.device.free(seq.capacity * s.kvBytesPerPosition);
            }
        }
    }

    @Override
    public Set<Long> sequences() {
        return Collections.unmodifiableSet(new LinkedHashSet<>(sequences.keySet()));
    }

    @Override
    public int length(long sequence) {
        Seq seq = sequences.get(sequence);
        if (seq == null) {
            throw new IllegalArgumentException("sequence " + sequence + " is not open");
        }
        return seq.length;
    }

    // ------------------------------------------------------------------ forward

    @Override
    public void forward(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits) {
        checkOpen();
        validate(seqs, tokens, positions, count, logits);
        if (!allComplete()) {
            for (Position[] stage : this.positions) {
                for (Position s : stage) {
                    if (!s.cov.complete()) {
                        throw new IllegalStateException("position (stage " + s.cov.stage() + ", shard "
                                + s.cov.shard() + ") of " + layout + " lacks weights; load or import all its slices first");
                    }
                }
            }
        }
        for (int b = 0; b < count; b++) {
            Seq seq = resolved[b];
            if (seq.next > seq.length) {
                seq.length = seq.next;
            }
            resolved[b] = null;
            float[] row = logits[b];
            if (row != null) {
                row[TimingExecutor.SPIKE_TOKEN] = 1f;
            }
        }
    }

    /** AbstractPipeline's checks in its order, with a per-sequence stamp instead of a backward scan: O(count). */
    private void validate(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits) {
        AbstractPipeline.checkBatchArrays(seqs, tokens, positions, count, logits, maxBatch);
        int stamp = ++step;
        int vocab = c.vocabSize();
        for (int b = 0; b < count; b++) {
            Seq st = sequences.get(seqs[b]);
            if (st == null) {
                throw new IllegalArgumentException("entry " + b + ": sequence " + seqs[b] + " is not open");
            }
            if (tokens[b] < 0 || tokens[b] >= vocab) {
                throw new IllegalArgumentException("entry " + b + ": token " + tokens[b] + " outside [0, vocab "
                        + vocab + ")");
            }
            int pos = positions[b];
            int prev = st.stamp == stamp ? st.next : -1;
            if (prev >= 0 && pos != prev) {
                throw new IllegalArgumentException("entry " + b + ": sequence " + seqs[b] + " repeats in the batch at "
                        + "position " + pos + ", expected the next position " + prev);
            }
            int filled = prev >= 0 ? prev : st.length;
            if (pos < 0 || pos > filled || pos >= st.capacity) {
                throw new IllegalArgumentException("entry " + b + ": position " + pos + " of sequence " + seqs[b]
                        + " outside [0, min(filled length " + filled + ", capacity " + (st.capacity - 1) + ")]");
            }
            if (logits[b] != null && logits[b].length != vocab) {
                throw new IllegalArgumentException("entry " + b + ": logits array has " + logits[b].length
                        + " floats, expected vocab " + vocab);
            }
            st.stamp = stamp;
            st.next = pos + 1;
            resolved[b] = st;
        }
    }

    private boolean allComplete() {
        if (!readyKnown) {
            boolean all = true;
            for (Position[] stage : positions) {
                for (Position s : stage) {
                    all &= s.cov.complete();
                }
            }
            ready = all;
            readyKnown = true;
        }
        return ready;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        for (Seq seq : sequences.values()) {
            freeKv(seq);
        }
        sequences.clear();
        for (Position[] stage : positions) {
            for (Position s : stage) {
                s.releaseAll();
            }
        }
        closed = true;
        readyKnown = false;
        executor.closed(this);
    }

    @Override
    public String toString() {
        return "TimingPipeline[" + layout + "]";
    }

    /**
     * Position (stage, shard): its coverage and which storage units it has been charged for, with the CPU executor's
     * unit sizes (a layer block for the shard's heads and hidden units, the shard's vocabulary rows, the final norm).
     */
    private static final class Position {
        final WeightCoverage cov;
        final TimingDevice device;
        final long layerBytes;
        final long vocabBytes;
        final long normBytes;
        final long kvBytesPerPosition;
        final boolean[] layerHeld;
        boolean embHeld;   // also the classifier's rows when they alias the embedding
        boolean clsHeld;
        boolean normHeld;

        Position(ShardLayout layout, int stage, int shard, TimingDevice device) {
            this.cov = new WeightCoverage(layout, stage, shard);
            this.device = device;
            LlamaConfig c = layout.config();
            long dim = c.dim();
            long q = (long) cov.heads().length() * c.headSize();
            long kv = (long) cov.kvHeads().length() * c.headSize();
            long f = cov.hidden().length();
            layerBytes = (2 * dim + (q + 2 * kv) * dim + dim * q + 3 * f * dim) * Float.BYTES;
            vocabBytes = cov.vocab().length() * dim * Float.BYTES;
            normBytes = dim * Float.BYTES;
            kvBytesPerPosition = 2L * cov.layers().length() * kv * Float.BYTES;
            layerHeld = new boolean[cov.layers().length()];
        }

        /** Bytes that taking {@code slice} would newly charge. */
        long allocationBytes(ContextSlice slice) {
            if (slice instanceof ContextSlice.Embedding) {
                return embHeld ? 0 : vocabBytes;
            } else if (slice instanceof ContextSlice.Classifier) {
                return (cov.aliasClassifier() ? embHeld : clsHeld) ? 0 : vocabBytes;
            } else if (slice instanceof ContextSlice.FinalNorm) {
                return normHeld ? 0 : normBytes;
            } else if (slice instanceof ContextSlice.LayerWeights w) {
                return layerHeld[w.layer() - cov.layers().from()] ? 0 : layerBytes;
            }
            return 0;
        }

        /** Charges the storage of an owned weight slice's unit on first use, then records the piece. */
        void take(ContextSlice slice) {
            IndexRange vocab = cov.vocab();
            if (slice instanceof ContextSlice.Embedding) {
                if (!embHeld) {
                    device.allocate("token embedding rows " + vocab + " of stage " + cov.stage(), vocabBytes);
                    embHeld = true;
                }
            } else if (slice instanceof ContextSlice.Classifier) {
                if (cov.aliasClassifier()) {
                    if (!embHeld) {
                        device.allocate("token embedding / classifier rows " + vocab, vocabBytes);
                        embHeld = true;
                    }
                } else if (!clsHeld) {
                    device.allocate("classifier rows " + vocab, vocabBytes);
                    clsHeld = true;
                }
            } else if (slice instanceof ContextSlice.FinalNorm) {
                if (!normHeld) {
                    device.allocate("final norm", normBytes);
                    normHeld = true;
                }
            } else {
                ContextSlice.LayerWeights w = (ContextSlice.LayerWeights) slice;
                int l = w.layer() - cov.layers().from();
                if (!layerHeld[l]) {
                    device.allocate("layer " + w.layer() + " heads " + cov.heads() + " hidden " + cov.hidden(),
                            layerBytes);
                    layerHeld[l] = true;
                }
            }
            cov.mark(slice);
        }

        /** Frees one whole weight unit; a shared embedding / classifier array only once neither uses it. */
        void release(ContextSlice slice) {
            cov.unmark(slice);
            if (slice instanceof ContextSlice.Embedding) {
                if (embHeld && (!cov.aliasClassifier() || !cov.anyClassifier())) {
                    device.free(vocabBytes);
                    embHeld = false;
                }
            } else if (slice instanceof ContextSlice.Classifier) {
                if (!cov.aliasClassifier()) {
                    if (clsHeld) {
                        device.free(vocabBytes);
                        clsHeld = false;
                    }
                } else if (embHeld && !cov.anyEmbedding()) {
                    device.free(vocabBytes);
                    embHeld = false;
                }
            } else if (slice instanceof ContextSlice.FinalNorm) {
                if (normHeld) {
                    device.free(normBytes);
                    normHeld = false;
                }
            } else if (slice instanceof ContextSlice.LayerWeights w) {
                int l = w.layer() - cov.layers().from();
                if (layerHeld[l]) {
                    device.free(layerBytes);
                    layerHeld[l] = false;
                }
            }
        }

        /** Frees every weight unit (the pipeline closes). */
        void releaseAll() {
            for (int l = 0; l < layerHeld.length; l++) {
                if (layerHeld[l]) {
                    device.free(layerBytes);
                    layerHeld[l] = false;
                }
            }
            if (embHeld) {
                device.free(vocabBytes);
            }
            if (clsHeld) {
                device.free(vocabBytes);
            }
            if (normHeld) {
                device.free(normBytes);
            }
            embHeld = false;
            clsHeld = false;
            normHeld = false;
            cov.clear();
        }
    }
}
