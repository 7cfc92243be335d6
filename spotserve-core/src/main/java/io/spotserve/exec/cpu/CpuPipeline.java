package io.spotserve.exec.cpu;

import io.spotserve.exec.CheckpointSlices;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
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
 * The CPU pipeline: P × M {@link StageShard}s driven in pipeline order. Per layer, every shard of the stage
 * computes its heads' attention output (a partial sum over its wo columns), the partials are summed in shard
 * order (the all-reduce) and added to the residual stream; the same for the FFN's w2. The residual stream is
 * handed from stage to stage by copying it into the next stage's input buffer, as a real hand-off would.
 */
final class CpuPipeline implements Pipeline {
    private final CpuExecutor executor;
    private final ShardLayout layout;
    private final LlamaConfig c;
    private final int maxBatch;
    private final StageShard[][] shards; // [stage][shard]
    private final float[][] stageInput;  // [stage][maxBatch * dim]: the residual stream entering each stage
    private final float[] reduced;
    private final Map<Long, int[]> sequences = new LinkedHashMap<>(); // id -> {capacity, length}
    private boolean closed;

    CpuPipeline(CpuExecutor executor, ShardLayout layout, List<CpuDevice> devices, int maxBatch) {
        this.executor = executor;
        this.layout = layout;
        this.c = layout.config();
        this.maxBatch = maxBatch;
        float[] rope = ropeTable(c);
        shards = new StageShard[layout.stages()][layout.shards()];
        for (int p = 0; p < layout.stages(); p++) {
            for (int m = 0; m < layout.shards(); m++) {
                shards[p][m] = new StageShard(layout, p, m, devices.get(p * layout.shards() + m), executor.kernels(),
                        executor.pool(), rope, maxBatch);
            }
        }
        stageInput = new float[layout.stages()][maxBatch * c.dim()];
        reduced = new float[maxBatch * c.dim()];
    }

    /** cos/sin of run.c's rotary angles: [pos][pair][cos, sin], freq = 1 / 10000^(2·pair / hs) in float. */
    static float[] ropeTable(LlamaConfig c) {
        int hs = c.headSize();
        int half = hs / 2;
        float[] t = new float[c.seqLen() * half * 2];
        for (int pos = 0; pos < c.seqLen(); pos++) {
            for (int i = 0; i < half; i++) {
                float freq = 1.0f / (float) Math.pow(10000.0f, (2 * i) / (float) hs);
                float val = pos * freq;
                t[(pos * half + i) * 2] = (float) Math.cos(val);
                t[(pos * half + i) * 2 + 1] = (float) Math.sin(val);
            }
        }
        return t;
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
        return shard(stage, shard).device;
    }

    private StageShard shard(int stage, int shard) {
        checkOpen();
        if (stage < 0 || stage >= layout.stages() || shard < 0 || shard >= layout.shards()) {
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") outside P = "
                    + layout.stages() + ", M = " + layout.shards());
        }
        return shards[stage][shard];
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("pipeline " + layout + " is closed");
        }
    }

    // ------------------------------------------------------------------ weights

    @Override
    public void loadWeights(LlamaCheckpoint checkpoint) {
        Objects.requireNonNull(checkpoint, "checkpoint");
        checkOpen();
        if (!checkpoint.config().equals(c)) {
            throw new IllegalArgumentException("checkpoint shape " + checkpoint.config() + " differs from the pipeline's "
                    + c);
        }
        // all-or-nothing per device: check every device can take what is still missing before allocating
        Map<CpuDevice, Long> need = new IdentityHashMap<>();
        for (StageShard[] stage : shards) {
            for (StageShard s : stage) {
                long bytes = 0;
                for (ContextSlice slice : layout.weightSlices(s.stage, s.shard)) {
                    bytes += s.allocationBytes(slice);
                }
                if (s.first && s.last && c.sharedClassifier()
                        && s.allocationBytes(new ContextSlice.Embedding(s.vocab)) > 0) {
                    bytes -= (long) s.vocab.length() * c.dim() * Float.BYTES; // embedding and classifier share rows
                }
                need.merge(s.device, bytes, Long::sum);
            }
        }
        for (Map.Entry<CpuDevice, Long> e : need.entrySet()) {
            CpuDevice d = e.getKey();
            if (e.getValue() > d.freeBytes()) {
                throw new DeviceMemoryException(d.id(), "weights of " + layout + " from " + checkpoint.file().getFileName(),
                        e.getValue(), d.usedBytes(), d.capacityBytes());
            }
        }
        for (StageShard[] stage : shards) {
            for (StageShard s : stage) {
                for (ContextSlice slice : layout.weightSlices(s.stage, s.shard)) {
                    s.transfer(slice, CheckpointSlices.read(checkpoint, slice), true);
                }
            }
        }
    }

    @Override
    public boolean hasAllWeights(int stage, int shard) {
        return shard(stage, shard).complete();
    }

    @Override
    public void releaseSlice(int stage, int shard, ContextSlice slice) {
        StageShard s = shard(stage, shard);
        Objects.requireNonNull(slice, "slice");
        if (!layout.weightSlices(stage, shard).contains(slice)) {
            throw new IllegalArgumentException(slice + " is not a weight unit of position (stage " + stage + ", shard "
                    + shard + ") of " + layout + "; expected one of " + layout.weightSlices(stage, shard));
        }
        s.release(slice);
    }

    @Override
    public byte[] exportSlice(int stage, int shard, ContextSlice slice) {
        StageShard s = shard(stage, shard);
        Objects.requireNonNull(slice, "slice");
        slice.validate(c);
        int filled = slice instanceof ContextSlice.KvCache k && sequences.containsKey(k.sequence())
                ? sequences.get(k.sequence())[1] : 0;
        if (!s.holds(slice, filled)) {
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") of " + layout
                    + " does not hold " + slice + (slice instanceof ContextSlice.KvCache ? " (filled length " + filled
                    + ")" : ""));
        }
        float[] data = new float[Math.toIntExact(slice.floats(c))];
        s.transfer(slice, data, false);
        return SliceFormat.encode(c, slice, data);
    }

    @Override
    public ContextSlice importSlice(int stage, int shard, byte[] bytes) {
        StageShard s = shard(stage, shard);
        SliceFormat.Decoded decoded = SliceFormat.decode(c, bytes);
        ContextSlice slice = decoded.slice();
        if (!s.owns(slice)) {
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") of " + layout
                    + " does not own " + slice + "; it owns layers " + s.layers + ", heads " + s.heads + ", kv heads "
                    + s.kvHeads + ", hidden " + s.hidden + ", vocab " + s.vocab
                    + (slice instanceof ContextSlice.KvCache k && !sequences.containsKey(k.sequence())
                    ? " (sequence " + k.sequence() + " is not open here)" : ""));
        }
        s.transfer(slice, decoded.data(), true);
        if (slice instanceof ContextSlice.KvCache k) {
            int[] st = sequences.get(k.sequence());
            st[1] = Math.max(st[1], k.length());
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
        List<StageShard> done = new ArrayList<>();
        try {
            for (StageShard[] stage : shards) {
                for (StageShard s : stage) {
                    float[] buf = s.device.allocate("KV cache of sequence " + sequence + " (" + capacity
                            + " positions, stage " + s.stage + ", shard " + s.shard + ")", s.kvFloats(capacity));
                    s.addSequence(sequence, buf, capacity);
                    done.add(s);
                }
            }
        } catch (RuntimeException e) {
            for (StageShard s : done) {
                s.removeSequence(sequence);
            }
            throw e;
        }
        sequences.put(sequence, new int[] {capacity, 0});
    }

    @Override
    public void closeSequence(long sequence) {
        checkOpen();
        if (sequences.remove(sequence) != null) {
            for (StageShard[] stage : shards) {
                for (StageShard s : stage) {
                    s.removeSequence(sequence);
                }
            }
        }
    }

    @Override
    public Set<Long> sequences() {
        return Collections.unmodifiableSet(new LinkedHashSet<>(sequences.keySet()));
    }

    @Override
    public int length(long sequence) {
        int[] st = sequences.get(sequence);
        if (st == null) {
            throw new IllegalArgumentException("sequence " + sequence + " is not open");
        }
        return st[1];
    }

    // ------------------------------------------------------------------ forward

    @Override
    public void forward(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits) {
        checkOpen();
        validate(seqs, tokens, positions, count, logits);
        for (StageShard[] stage : shards) {
            for (StageShard s : stage) {
                if (!s.complete()) {
                    throw new IllegalStateException("position (stage " + s.stage + ", shard " + s.shard + ") of "
                            + layout + " lacks weights; load or import all its slices first");
                }
            }
        }
        int dim = c.dim();
        float[] x = stageInput[0];
        for (int b = 0; b < count; b++) {
            for (StageShard s : shards[0]) {
                if (s.embed(tokens[b], x, b * dim)) {
                    break;
                }
            }
        }
        for (StageShard[] stage : shards) {
            for (StageShard s : stage) {
                s.bind(seqs, positions, count);
            }
        }
        int n = count * dim;
        for (int p = 0; p < shards.length; p++) {
            StageShard[] stage = shards[p];
            x = stageInput[p];
            int nl = stage[0].layers.length();
            for (int l = 0; l < nl; l++) {
                for (StageShard s : stage) {
                    s.attention(l, x);
                }
                allReduceAdd(stage, x, n);
                for (StageShard s : stage) {
                    s.ffn(l, x);
                }
                allReduceAdd(stage, x, n);
            }
            if (p + 1 < shards.length) {
                System.arraycopy(x, 0, stageInput[p + 1], 0, n); // activation hand-off to the next stage
            }
        }
        for (StageShard s : shards[shards.length - 1]) {
            s.logits(x, logits);
        }
        for (int b = 0; b < count; b++) {
            int[] st = sequences.get(seqs[b]);
            st[1] = Math.max(st[1], positions[b] + 1);
        }
    }

    /** Sums the shards' partial outputs in shard order (the tensor-parallel all-reduce), adds them to x. */
    private void allReduceAdd(StageShard[] stage, float[] x, int n) {
        if (stage.length == 1) {
            float[] p0 = stage[0].part;
            for (int i = 0; i < n; i++) {
                x[i] += p0[i];
            }
            return;
        }
        System.arraycopy(stage[0].part, 0, reduced, 0, n);
        for (int m = 1; m < stage.length; m++) {
            float[] pm = stage[m].part;
            for (int i = 0; i < n; i++) {
                reduced[i] += pm[i];
            }
        }
        for (int i = 0; i < n; i++) {
            x[i] += reduced[i];
        }
    }

    private void validate(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits) {
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

    @Override
    public void close() {
        if (closed) {
            return;
        }
        for (StageShard[] stage : shards) {
            for (StageShard s : stage) {
                s.release();
            }
        }
        sequences.clear();
        closed = true;
        executor.closed(this);
    }

    @Override
    public String toString() {
        return "CpuPipeline[" + layout + ", " + executor.name() + "]";
    }
}
