package io.spotserve.plan;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Builds the transfer list and the free lists of a mapping: for every new position, every needed slice
 * minus what its device already holds, split at old shard boundaries, each piece from one holder.
 *
 * <p>Source choice when several old replicas hold a piece: a holder on the target's own instance if any
 * (no network), else the holder whose instance has sent the fewest inter-instance bytes so far, then the
 * holder device that sent the fewest, then device order — deterministic and load-spreading.
 */
final class Transfers {
    private final DeviceMapper.Run run;
    private final Map<Position, DeviceId> placement;
    private final ParallelConfig oc;
    private final ParallelConfig nc;
    private final ModelContext model;
    private final Map<Position, DeviceId> oldHolder;
    private final Map<String, Long> instanceSent = new HashMap<>();
    private final Map<DeviceId, Long> deviceSent = new HashMap<>();
    final List<Transfer> transfers = new ArrayList<>();
    final Map<DeviceId, List<PlannedSlice>> frees = new TreeMap<>();
    long moved;
    long reloaded;

    Transfers(DeviceMapper.Run run, Map<Position, DeviceId> placement) {
        this.run = run;
        this.placement = placement;
        this.oc = run.oc;
        this.nc = run.nc;
        this.model = run.model;
        this.oldHolder = run.old.placement();
    }

    void build() {
        // KV cache of all layers first
        for (Map.Entry<Position, DeviceId> e : placement.entrySet()) {
            Position v = e.getKey();
            for (int g = 0; g < oc.dataParallel(); g++) {
                if (run.newOf[g] != v.pipeline() || run.keptKv[g] == 0) {
                    continue;
                }
                for (int l = run.first(v.stage(), nc); l < run.first(v.stage() + 1, nc); l++) {
                    need(PlannedSlice.Kind.KV_CACHE, l, g, v, e.getValue());
                }
            }
        }
        for (Map.Entry<Position, DeviceId> e : placement.entrySet()) {
            if (e.getKey().stage() == 0) {
                replicated(PlannedSlice.Kind.EMBEDDING, 0, e.getKey(), e.getValue());
            }
        }
        for (int l = 0; l < model.layers(); l++) {
            int stage = model.stageOf(l, nc.pipelineStages());
            for (Map.Entry<Position, DeviceId> e : placement.entrySet()) {
                if (e.getKey().stage() == stage) {
                    need(PlannedSlice.Kind.WEIGHTS, l, -1, e.getKey(), e.getValue());
                }
            }
        }
        for (Map.Entry<Position, DeviceId> e : placement.entrySet()) {
            if (e.getKey().stage() == nc.pipelineStages() - 1) {
                replicated(PlannedSlice.Kind.CLASSIFIER, oc.pipelineStages() - 1, e.getKey(), e.getValue());
            }
        }
        buildFrees();
    }

    /**
     * Embedding / classifier: the whole tensor from any old holder of the given old stage — or, for a model with
     * vocabulary-sharded rows, the rows of v's shard the device lacks, split at old shard boundaries.
     */
    private void replicated(PlannedSlice.Kind kind, int oldStage, Position v, DeviceId t) {
        Position o = run.oldPos.get(t);
        long bytes = kind == PlannedSlice.Kind.EMBEDDING ? model.embeddingBytes() : model.classifierBytes();
        if (model.shardedVocab()) {
            ShardRange want = ShardRange.ofShard(v.shard(), nc.tensorShards());
            List<ShardRange> missing = o != null && o.stage() == oldStage
                    ? subtract(want, ShardRange.ofShard(o.shard(), oc.tensorShards())) : List.of(want);
            emitPieces(kind, -1, -1, missing, oldStage, bytes, t);
            return;
        }
        if (o != null && o.stage() == oldStage) {
            return;
        }
        if (bytes == 0) {
            return;
        }
        List<DeviceId> holders = new ArrayList<>();
        oldHolder.forEach((p, d) -> {
            if (p.stage() == oldStage) {
                holders.add(d);
            }
        });
        emit(new PlannedSlice(kind, -1, ShardRange.FULL, -1, bytes), holders, t);
    }

    /** Weights or KV of one layer for new position v on device t. */
    private void need(PlannedSlice.Kind kind, int layer, int group, Position v, DeviceId t) {
        ShardRange want = ShardRange.ofShard(v.shard(), nc.tensorShards());
        int oldStage = model.stageOf(layer, oc.pipelineStages());
        Position o = run.oldPos.get(t);
        List<ShardRange> missing = List.of(want);
        if (o != null && o.stage() == oldStage && (kind == PlannedSlice.Kind.WEIGHTS || o.pipeline() == group)) {
            missing = subtract(want, ShardRange.ofShard(o.shard(), oc.tensorShards()));
        }
        long total = kind == PlannedSlice.Kind.WEIGHTS ? model.layerWeightBytes() : run.keptKv[group];
        emitPieces(kind, layer, group, missing, oldStage, total, t);
    }

    /**
     * Emits the {@code missing} ranges of a tensor of {@code total} bytes for device t, split at old shard
     * boundaries, each piece from the old holders of that shard on {@code oldStage} (for KV only group's pipeline).
     */
    private void emitPieces(PlannedSlice.Kind kind, int layer, int group, List<ShardRange> missing, int oldStage,
                            long total, DeviceId t) {
        for (ShardRange piece : missing) {
            for (int m = 0; m < oc.tensorShards(); m++) {
                ShardRange part = piece.intersect(ShardRange.ofShard(m, oc.tensorShards()));
                if (part == null) {
                    continue;
                }
                List<DeviceId> holders = new ArrayList<>();
                for (int d = 0; d < oc.dataParallel(); d++) {
                    if (kind == PlannedSlice.Kind.KV_CACHE && d != group) {
                        continue;
                    }
                    DeviceId h = oldHolder.get(new Position(d, oldStage, m));
                    if (h != null) {
                        holders.add(h);
                    }
                }
                emit(new PlannedSlice(kind, layer, part, group, part.bytesOf(total)), holders, t);
            }
        }
    }

    private void emit(PlannedSlice slice, List<DeviceId> holders, DeviceId t) {
        if (slice.bytes() == 0) {
            return;
        }
        if (holders.isEmpty()) {
            if (slice.kind() == PlannedSlice.Kind.KV_CACHE) {
                throw new IllegalStateException("internal: inherited KV " + slice + " has no holder");
            }
            transfers.add(new Transfer(slice, null, t));
            reloaded += slice.bytes();
            return;
        }
        DeviceId best = null;
        for (DeviceId h : holders) {
            if (h.instance().equals(t.instance()) && (best == null || h.compareTo(best) < 0)) {
                best = h;
            }
        }
        if (best == null) {
            for (DeviceId h : holders) {
                if (best == null || better(h, best)) {
                    best = h;
                }
            }
            instanceSent.merge(best.instance(), slice.bytes(), Long::sum);
        }
        deviceSent.merge(best, slice.bytes(), Long::sum);
        transfers.add(new Transfer(slice, best, t));
        moved += slice.bytes();
    }

    private boolean better(DeviceId a, DeviceId b) {
        int c = Long.compare(instanceSent.getOrDefault(a.instance(), 0L), instanceSent.getOrDefault(b.instance(), 0L));
        if (c == 0) {
            c = Long.compare(deviceSent.getOrDefault(a, 0L), deviceSent.getOrDefault(b, 0L));
        }
        return c != 0 ? c < 0 : a.compareTo(b) < 0;
    }

    /** {@code a} minus {@code b}: zero, one or two ranges. */
    static List<ShardRange> subtract(ShardRange a, ShardRange b) {
        ShardRange i = a.intersect(b);
        if (i == null) {
            return List.of(a);
        }
        long u = ShardRange.lcm(a.units(), i.units());
        long a0 = (long) a.from() * (u / a.units());
        long a1 = (long) a.to() * (u / a.units());
        long i0 = (long) i.from() * (u / i.units());
        long i1 = (long) i.to() * (u / i.units());
        List<ShardRange> out = new ArrayList<>(2);
        if (a0 < i0) {
            out.add(new ShardRange((int) a0, (int) i0, (int) u));
        }
        if (i1 < a1) {
            out.add(new ShardRange((int) i1, (int) a1, (int) u));
        }
        return out;
    }

    /** What every old holder no longer needs: its old slices minus its new position's needs. */
    private void buildFrees() {
        Map<DeviceId, Position> newPos = new HashMap<>();
        placement.forEach((p, d) -> newPos.put(d, p));
        oldHolder.forEach((o, dev) -> {
            Position v = newPos.get(dev);
            List<PlannedSlice> out = new ArrayList<>();
            int last = oc.pipelineStages() - 1;
            ShardRange held = ShardRange.ofShard(o.shard(), oc.tensorShards());
            ShardRange wanted = v == null ? null : ShardRange.ofShard(v.shard(), nc.tensorShards());
            if (o.stage() == 0 && model.shardedVocab()) {
                for (ShardRange r : v != null && v.stage() == 0 ? subtract(held, wanted) : List.of(held)) {
                    out.add(new PlannedSlice(PlannedSlice.Kind.EMBEDDING, -1, r, -1, r.bytesOf(model.embeddingBytes())));
                }
            } else if (o.stage() == 0 && !(v != null && v.stage() == 0) && model.embeddingBytes() > 0) {
                out.add(new PlannedSlice(PlannedSlice.Kind.EMBEDDING, -1, ShardRange.FULL, -1, model.embeddingBytes()));
            }
            int g = o.pipeline();
            boolean keepsKv = v != null && run.newOf[g] == v.pipeline();
            for (int l = run.first(o.stage(), oc); l < run.first(o.stage() + 1, oc); l++) {
                boolean needed = v != null && model.stageOf(l, nc.pipelineStages()) == v.stage();
                List<ShardRange> gone = needed ? subtract(held, wanted) : List.of(held);
                for (ShardRange r : gone) {
                    out.add(new PlannedSlice(PlannedSlice.Kind.WEIGHTS, l, r, -1, r.bytesOf(model.layerWeightBytes())));
                }
                if (run.allKv[g] == 0) {
                    continue;
                }
                List<ShardRange> kvGone = needed && keepsKv ? subtract(held, wanted) : List.of(held);
                for (ShardRange r : kvGone) {
                    out.add(new PlannedSlice(PlannedSlice.Kind.KV_CACHE, l, r, g, r.bytesOf(run.allKv[g])));
                }
                if (needed && keepsKv && run.allKv[g] != run.keptKv[g]) {
                    // the retained range still frees the part of the dropped batches
                    ShardRange r = held.intersect(wanted);
                    if (r != null) {
                        long b = r.bytesOf(run.allKv[g]) - r.bytesOf(run.keptKv[g]);
                        out.add(new PlannedSlice(PlannedSlice.Kind.KV_CACHE, l, r, g, b));
                    }
                }
            }
            if (o.stage() == last && model.shardedVocab()) {
                boolean stillLast = v != null && v.stage() == nc.pipelineStages() - 1;
                for (ShardRange r : stillLast ? subtract(held, wanted) : List.of(held)) {
                    out.add(new PlannedSlice(PlannedSlice.Kind.CLASSIFIER, -1, r, -1, r.bytesOf(model.classifierBytes())));
                }
            } else if (o.stage() == last && !(v != null && v.stage() == nc.pipelineStages() - 1) && model.classifierBytes() > 0) {
                out.add(new PlannedSlice(PlannedSlice.Kind.CLASSIFIER, -1, ShardRange.FULL, -1, model.classifierBytes()));
            }
            out.removeIf(s -> s.bytes() == 0);
            if (!out.isEmpty()) {
                frees.put(dev, out);
            }
        });
    }
}
