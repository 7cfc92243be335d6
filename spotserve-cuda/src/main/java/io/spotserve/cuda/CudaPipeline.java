package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyPeerAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;

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
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import jcuda.driver.CUdeviceptr;

/**
 * The GPU pipeline: P × M {@link CudaShard}s with the CPU pipeline's semantics (same sharding, slice layout,
 * validation and error messages). Per layer every shard of a stage computes its partial output on its GPU;
 * the stage's lead shard (m = 0) sums the partials in shard order into an accumulator and adds it to the
 * residual stream (the all-reduce; device-to-device copies, peer copies across GPUs), then broadcasts the
 * stream back to the other shards. The stream is handed to the next stage's lead the same way.
 */
final class CudaPipeline implements Pipeline {
    private final CudaExecutor executor;
    private final ShardLayout layout;
    private final LlamaConfig c;
    private final int maxBatch;
    private final CudaShard[][] shards; // [stage][shard]
    private final Map<Long, int[]> sequences = new LinkedHashMap<>(); // id -> {capacity, length}
    private boolean closed;

    CudaPipeline(CudaExecutor executor, ShardLayout layout, List<CudaDevice> devices, int maxBatch) {
        this.executor = executor;
        this.layout = layout;
        this.c = layout.config();
        this.maxBatch = maxBatch;
        float[] rope = ropeTable(c);
        shards = new CudaShard[layout.stages()][layout.shards()];
        try {
            for (int p = 0; p < layout.stages(); p++) {
                for (int m = 0; m < layout.shards(); m++) {
                    shards[p][m] = new CudaShard(executor, new PositionLayout(layout, p, m), p, m,
                            devices.get(p * layout.shards() + m), rope, maxBatch);
                }
            }
        } catch (RuntimeException e) {
            releaseAll();
            throw e;
        }
    }

    /** cos/sin of run.c's rotary angles, [pos][pair][cos, sin], computed exactly as the CPU executor does. */
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

    private CudaShard shard(int stage, int shard) {
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
        Map<CudaDevice, Long> need = new IdentityHashMap<>();
        for (CudaShard[] stage : shards) {
            for (CudaShard s : stage) {
                long bytes = 0;
                for (ContextSlice slice : layout.weightSlices(s.stage, s.shard)) {
                    bytes += s.allocationBytes(slice);
                }
                if (s.aliasClassifier() && s.allocationBytes(new ContextSlice.Embedding(s.pl.vocab)) > 0) {
                    bytes -= (long) s.pl.vocab.length() * c.dim() * Float.BYTES; // embedding and classifier share rows
                }
                need.merge(s.device, bytes, Long::sum);
            }
        }
        for (Map.Entry<CudaDevice, Long> e : need.entrySet()) {
            CudaDevice d = e.getKey();
            if (e.getValue() > d.freeBytes()) {
                throw new DeviceMemoryException(d.id(), "weights of " + layout + " from " + checkpoint.file().getFileName(),
                        e.getValue(), d.usedBytes(), d.capacityBytes());
            }
        }
        for (CudaShard[] stage : shards) {
            for (CudaShard s : stage) {
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
        CudaShard s = shard(stage, shard);
        Objects.requireNonNull(slice, "slice");
        if (!layout.weightSlices(stage, shard).contains(slice)) {
            throw new IllegalArgumentException(slice + " is not a weight unit of position (stage " + stage + ", shard "
                    + shard + ") of " + layout + "; expected one of " + layout.weightSlices(stage, shard));
        }
        s.release(slice);
    }

    @Override
    public byte[] exportSlice(int stage, int shard, ContextSlice slice) {
        CudaShard s = shard(stage, shard);
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
        CudaShard s = shard(stage, shard);
        SliceFormat.Decoded decoded = SliceFormat.decode(c, bytes);
        ContextSlice slice = decoded.slice();
        if (!s.owns(slice)) {
            PositionLayout pl = s.pl;
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") of " + layout
                    + " does not own " + slice + "; it owns layers " + pl.layers + ", heads " + pl.heads + ", kv heads "
                    + pl.kvHeads + ", hidden " + pl.hidden + ", vocab " + pl.vocab
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

    /**
     * Device-to-device migration of one slice from position (stage, shard) here to position (dstStage, dstShard)
     * of {@code dst}: the same effect as {@code dst.importSlice(dstStage, dstShard, exportSlice(stage, shard,
     * slice))} but the floats go storage → staging buffer on this GPU → (peer copy) → staging on the
     * destination GPU → storage, never through the host.
     */
    ContextSlice copySliceTo(int stage, int shard, ContextSlice slice, CudaPipeline dst, int dstStage, int dstShard) {
        CudaShard s = shard(stage, shard);
        CudaShard d = dst.shard(dstStage, dstShard);
        Objects.requireNonNull(slice, "slice");
        if (!dst.c.equals(c)) {
            throw new IllegalArgumentException("destination pipeline is for model " + dst.c + ", this one for " + c);
        }
        slice.validate(c);
        int filled = slice instanceof ContextSlice.KvCache k && sequences.containsKey(k.sequence())
                ? sequences.get(k.sequence())[1] : 0;
        if (!s.holds(slice, filled)) {
            throw new IllegalArgumentException("position (stage " + stage + ", shard " + shard + ") of " + layout
                    + " does not hold " + slice);
        }
        if (!d.owns(slice)) {
            throw new IllegalArgumentException("position (stage " + dstStage + ", shard " + dstShard + ") of "
                    + dst.layout + " does not own " + slice);
        }
        long floats = slice.floats(c);
        try (DeviceBuffer staging = CudaDevice.raw(null, s.ctx, floats)) {
            s.transferDevice(slice, staging, false);
            if (d.ctx == s.ctx) {
                d.transferDevice(slice, staging, true);
            } else {
                try (DeviceBuffer remote = CudaDevice.raw(null, d.ctx, floats)) {
                    copy(d, remote.ptr, s, staging.ptr, floats);
                    d.transferDevice(slice, remote, true);
                }
            }
        }
        if (slice instanceof ContextSlice.KvCache k) {
            int[] st = dst.sequences.get(k.sequence());
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
        List<CudaShard> done = new ArrayList<>();
        try {
            for (CudaShard[] stage : shards) {
                for (CudaShard s : stage) {
                    DeviceBuffer buf = s.device.allocate("KV cache of sequence " + sequence + " (" + capacity
                            + " positions, stage " + s.stage + ", shard " + s.shard + ")", s.pl.kvFloats(capacity));
                    s.addSequence(sequence, buf, capacity);
                    done.add(s);
                }
            }
        } catch (RuntimeException e) {
            for (CudaShard s : done) {
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
            for (CudaShard[] stage : shards) {
                for (CudaShard s : stage) {
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
        for (CudaShard[] stage : shards) {
            for (CudaShard s : stage) {
                if (!s.complete()) {
                    throw new IllegalStateException("position (stage " + s.stage + ", shard " + s.shard + ") of "
                            + layout + " lacks weights; load or import all its slices first");
                }
            }
        }
        for (CudaShard[] stage : shards) {
            for (CudaShard s : stage) {
                s.bind(seqs, tokens, positions, count);
            }
        }
        long n = (long) count * c.dim();
        CudaShard[] first = shards[0];
        if (first.length == 1) {
            first[0].embed(first[0].x);
        } else {
            // each shard gathers its vocabulary rows (zeros elsewhere); the sum assembles the embedding exactly
            CudaShard lead = first[0];
            lead.ctx.makeCurrent();
            cuMemsetD32Async(lead.x.ptr, 0, n, lead.ctx.stream);
            for (CudaShard s : first) {
                s.embed(s.part);
            }
            reduceInto(first, n);
        }
        broadcast(first, n);
        for (int p = 0; p < shards.length; p++) {
            CudaShard[] stage = shards[p];
            int nl = stage[0].pl.layers.length();
            for (int l = 0; l < nl; l++) {
                for (CudaShard s : stage) {
                    s.attention(l);
                }
                reduceInto(stage, n);
                broadcast(stage, n);
                for (CudaShard s : stage) {
                    s.ffn(l);
                }
                reduceInto(stage, n);
                broadcast(stage, n);
            }
            if (p + 1 < shards.length) {
                CudaShard next = shards[p + 1][0];
                copy(next, next.x.ptr, stage[0], stage[0].x.ptr, n); // activation hand-off to the next stage
                broadcast(shards[p + 1], n);
            }
        }
        for (CudaShard s : shards[shards.length - 1]) {
            s.logits(logits);
        }
        for (int b = 0; b < count; b++) {
            int[] st = sequences.get(seqs[b]);
            st[1] = Math.max(st[1], positions[b] + 1);
        }
    }

    /**
     * The all-reduce on the stage's lead shard: x += (part_0 + part_1 + ... ) summed in shard order, as the CPU
     * pipeline does, so the float results agree in order.
     */
    private void reduceInto(CudaShard[] stage, long n) {
        CudaShard lead = stage[0];
        Launch.Config cfg = Launch.elementwise(n);
        int count = Math.toIntExact(n);
        if (stage.length == 1) {
            lead.ctx.makeCurrent();
            lead.ctx.launch("add_inplace", cfg, lead.x.ptr, lead.part.ptr, count);
            return;
        }
        copy(lead, lead.reduced.ptr, lead, lead.part.ptr, n);
        for (int m = 1; m < stage.length; m++) {
            CudaShard s = stage[m];
            CUdeviceptr src = s.part.ptr;
            if (s.ctx != lead.ctx) {
                copy(lead, lead.xbTemp(), s, s.part.ptr, n); // bring the partial over first (peer copy)
                src = lead.xbTemp();
            }
            lead.ctx.makeCurrent();
            lead.ctx.launch("add_inplace", cfg, lead.reduced.ptr, src, count);
        }
        lead.ctx.launch("add_inplace", cfg, lead.x.ptr, lead.reduced.ptr, count);
    }

    /** Copies the lead shard's residual stream to every other shard of the stage. */
    private void broadcast(CudaShard[] stage, long n) {
        for (int m = 1; m < stage.length; m++) {
            copy(stage[m], stage[m].x.ptr, stage[0], stage[0].x.ptr, n);
        }
    }

    /** Device-to-device copy of {@code floats} floats, ordered after everything already issued on both GPUs. */
    private static void copy(CudaShard dstShard, CUdeviceptr dst, CudaShard srcShard, CUdeviceptr src, long floats) {
        long bytes = floats * Float.BYTES;
        if (dstShard.ctx == srcShard.ctx) {
            dstShard.ctx.makeCurrent();
            cuMemcpyDtoDAsync(dst, src, bytes, dstShard.ctx.stream);
        } else {
            srcShard.ctx.makeCurrent();
            srcShard.ctx.sync();
            dstShard.ctx.makeCurrent();
            cuMemcpyPeerAsync(dst, dstShard.ctx.context, src, srcShard.ctx.context, bytes, dstShard.ctx.stream);
            dstShard.ctx.sync(); // the source GPU may overwrite src right after
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
        Map<Long, Integer> next = new HashMap<>();
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
            Integer prev = next.get(seqs[b]);
            if (prev != null && pos != prev) {
                throw new IllegalArgumentException("entry " + b + ": sequence " + seqs[b] + " repeats in the batch at "
                        + "position " + pos + ", expected the next position " + prev);
            }
            int filled = prev != null ? prev : st[1];
            if (pos < 0 || pos > filled || pos >= st[0]) {
                throw new IllegalArgumentException("entry " + b + ": position " + pos + " of sequence " + seqs[b]
                        + " outside [0, min(filled length " + filled + ", capacity " + (st[0] - 1) + ")]");
            }
            if (logits[b] != null && logits[b].length != c.vocabSize()) {
                throw new IllegalArgumentException("entry " + b + ": logits array has " + logits[b].length
                        + " floats, expected vocab " + c.vocabSize());
            }
            next.put(seqs[b], pos + 1);
        }
    }

    private void releaseAll() {
        for (CudaShard[] stage : shards) {
            for (CudaShard s : stage) {
                if (s != null) {
                    s.close();
                }
            }
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        releaseAll();
        sequences.clear();
        closed = true;
        executor.closed(this);
    }

    @Override
    public String toString() {
        return "CudaPipeline[" + layout + ", " + executor.name() + "]";
    }
}
