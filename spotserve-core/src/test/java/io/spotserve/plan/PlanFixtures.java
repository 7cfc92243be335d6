package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Random reconfiguration cases and independent oracles for the device mapper and migration planner tests.
 * The oracles work at the finest resolution (one unit of lcm(M_old, M_new) of one layer) and recompute
 * stage ranges themselves, sharing nothing with the code under test but {@link ShardRange#bytesOf}.
 */
final class PlanFixtures {
    private PlanFixtures() {
    }

    /** One random reconfiguration. */
    record Case(ModelContext model, Deployment old, TargetFleet target) {
    }

    static int first(int stage, int stages, int layers) {
        return (int) ((long) stage * layers / stages);
    }

    static int stageOf(int layer, int stages, int layers) {
        for (int p = stages - 1; p >= 0; p--) {
            if (first(p, stages, layers) <= layer) {
                return p;
            }
        }
        throw new AssertionError();
    }

    /** Random (D, P, M) with D·P·M ≤ maxGpus and P ≤ layers. */
    static ParallelConfig randomConfig(Random r, int maxGpus, int layers, int maxBatch) {
        while (true) {
            int d = 1 + r.nextInt(3);
            int p = 1 + r.nextInt(Math.min(3, layers));
            int m = 1 + r.nextInt(4);
            if (d * p * m <= maxGpus) {
                return ParallelConfig.of(d, p, m, 1 + r.nextInt(maxBatch));
            }
        }
    }

    static ModelContext randomModel(Random r, int layers) {
        return new ModelContext("rand", layers, 1000 + r.nextInt(5000), r.nextInt(3000), r.nextInt(3000), 1 + r.nextInt(40),
                r.nextBoolean());
    }

    static Map<Integer, List<InflightBatch>> randomBatches(Random r, ParallelConfig c) {
        Map<Integer, List<InflightBatch>> out = new HashMap<>();
        int id = 0;
        for (int d = 0; d < c.dataParallel(); d++) {
            int n = r.nextInt(3);
            List<InflightBatch> list = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                list.add(new InflightBatch("b" + d + "." + (id++), 1 + r.nextInt(3), 1 + r.nextInt(8), r.nextInt(12)));
            }
            out.put(d, list);
        }
        return out;
    }

    /**
     * Single-GPU instances: old deployment on o0.., some lost, some under notice (source-only), the rest
     * survive; new empty instances fill the fleet up to at most {@code maxTargets} devices.
     */
    static Case randomSingleGpuCase(Random r, int maxTargets) {
        int layers = 3 + r.nextInt(4);
        ModelContext model = randomModel(r, layers);
        ParallelConfig oc = randomConfig(r, 6, layers, 4);
        ParallelConfig nc = randomConfig(r, maxTargets, layers, 4);
        List<DeviceId> devs = new ArrayList<>();
        for (int i = 0; i < oc.gpus(); i++) {
            devs.add(new DeviceId("o" + i, 0));
        }
        Deployment dep = Deployment.packed(oc, devs).withBatches(randomBatches(r, oc));
        List<TargetFleet.Instance> targets = new ArrayList<>();
        for (int i = 0; i < oc.gpus(); i++) {
            int fate = r.nextInt(6);
            if (fate == 0) {
                dep = dep.without("o" + i);                 // lost
            } else if (fate == 1) {
                continue;                                 // under notice: source only
            } else if (targets.size() < maxTargets) {
                targets.add(new TargetFleet.Instance("o" + i, 1));
            }
        }
        int fresh = 0;
        while (targets.size() < nc.gpus() || (targets.size() < maxTargets && r.nextInt(3) == 0)) {
            targets.add(new TargetFleet.Instance("n" + fresh++, 1));
        }
        return new Case(model, dep, new TargetFleet(nc, targets));
    }

    /**
     * Multi-GPU instances (2 or 4 GPUs): old deployment packed on o0.., instances lost / under notice /
     * surviving at random, new empty instances added until the new configuration fits.
     */
    static Case randomMultiGpuCase(Random r) {
        int g = r.nextBoolean() ? 2 : 4;
        int layers = 3 + r.nextInt(4);
        ModelContext model = randomModel(r, layers);
        ParallelConfig oc = randomConfig(r, 12, layers, 4);
        ParallelConfig nc = randomConfig(r, 12, layers, 4);
        int oldInstances = (oc.gpus() + g - 1) / g;
        List<DeviceId> devs = new ArrayList<>();
        for (int i = 0; i < oldInstances; i++) {
            for (int k = 0; k < g; k++) {
                devs.add(new DeviceId("o" + i, k));
            }
        }
        Deployment dep = Deployment.packed(oc, devs.subList(0, oc.gpus())).withBatches(randomBatches(r, oc));
        List<TargetFleet.Instance> targets = new ArrayList<>();
        for (int i = 0; i < oldInstances; i++) {
            int fate = r.nextInt(5);
            if (fate == 0) {
                dep = dep.without("o" + i);
            } else if (fate != 1) {
                targets.add(new TargetFleet.Instance("o" + i, g));
            }
        }
        int fresh = 0;
        while (targets.size() * g < nc.gpus()) {
            targets.add(new TargetFleet.Instance("n" + fresh++, g));
        }
        return new Case(model, dep, new TargetFleet(nc, targets));
    }

    /** KV bytes per layer (M = 1) of the batches each old pipeline keeps (found by batch id). */
    static long[] keptKv(Deployment old, DeviceMapping m) {
        Set<String> kept = new HashSet<>();
        m.keptBatches().values().forEach(l -> l.forEach(b -> kept.add(b.id())));
        long[] kv = new long[old.config().dataParallel()];
        old.batches().forEach((d, list) -> {
            for (InflightBatch b : list) {
                if (kept.contains(b.id())) {
                    kv[d] += b.requests() * b.tokens() * m.model().kvBytesPerTokenPerLayer();
                }
            }
        });
        return kv;
    }

    /**
     * Bytes that must arrive (moved or reloaded) if {@code placement} is used, given the mapping's request
     * inheritance; computed unit by unit.
     */
    static long volume(ModelContext model, Deployment old, ParallelConfig nc, Map<Position, DeviceId> placement,
                       Map<Integer, List<Integer>> inheritedFrom, long[] keptKv) {
        ParallelConfig oc = old.config();
        Map<DeviceId, Position> oldPos = new HashMap<>();
        old.placement().forEach((p, d) -> oldPos.put(d, p));
        int u = (int) ShardRange.lcm(oc.tensorShards(), nc.tensorShards());
        int L = model.layers();
        long total = 0;
        for (Map.Entry<Position, DeviceId> e : placement.entrySet()) {
            Position v = e.getKey();
            Position o = oldPos.get(e.getValue());
            List<Integer> groups = inheritedFrom.getOrDefault(v.pipeline(), List.of());
            for (int l = first(v.stage(), nc.pipelineStages(), L); l < first(v.stage() + 1, nc.pipelineStages(), L); l++) {
                for (int x = v.shard() * (u / nc.tensorShards()); x < (v.shard() + 1) * (u / nc.tensorShards()); x++) {
                    boolean held = o != null && stageOf(l, oc.pipelineStages(), L) == o.stage()
                            && x / (u / oc.tensorShards()) == o.shard();
                    ShardRange unit = new ShardRange(x, x + 1, u);
                    if (!held) {
                        total += unit.bytesOf(model.layerWeightBytes());
                    }
                    for (int g : groups) {
                        if (!(held && o.pipeline() == g)) {
                            total += unit.bytesOf(keptKv[g]);
                        }
                    }
                }
            }
            boolean lastNew = v.stage() == nc.pipelineStages() - 1;
            boolean lastOld = o != null && o.stage() == oc.pipelineStages() - 1;
            if (model.shardedVocab()) {
                // vocabulary rows: unit by unit, held when the old position had the same role and that unit
                for (int x = v.shard() * (u / nc.tensorShards()); x < (v.shard() + 1) * (u / nc.tensorShards()); x++) {
                    ShardRange unit = new ShardRange(x, x + 1, u);
                    boolean inOldShard = o != null && x / (u / oc.tensorShards()) == o.shard();
                    if (v.stage() == 0 && !(o != null && o.stage() == 0 && inOldShard)) {
                        total += unit.bytesOf(model.embeddingBytes());
                    }
                    if (lastNew && !(lastOld && inOldShard)) {
                        total += unit.bytesOf(model.classifierBytes());
                    }
                }
                continue;
            }
            if (v.stage() == 0 && !(o != null && o.stage() == 0)) {
                total += model.embeddingBytes();
            }
            if (lastNew && !lastOld) {
                total += model.classifierBytes();
            }
        }
        return total;
    }

    /** Minimum {@link #volume} over every injective map of positions to the fleet's devices. */
    static long bruteForceVolume(ModelContext model, Deployment old, TargetFleet fleet, DeviceMapping m) {
        List<DeviceId> devices = new ArrayList<>();
        fleet.instances().forEach(i -> {
            for (int g = 0; g < i.gpus(); g++) {
                devices.add(new DeviceId(i.name(), g));
            }
        });
        List<Position> positions = Deployment.positions(fleet.config());
        long[] best = {Long.MAX_VALUE};
        long[] kept = keptKv(old, m);
        permute(devices, positions, 0, new DeviceId[positions.size()], new boolean[devices.size()], assignment -> {
            Map<Position, DeviceId> p = new LinkedHashMap<>();
            for (int i = 0; i < positions.size(); i++) {
                p.put(positions.get(i), assignment[i]);
            }
            best[0] = Math.min(best[0], volume(model, old, fleet.config(), p, m.inheritedFrom(), kept));
        });
        return best[0];
    }

    interface Visitor {
        void visit(DeviceId[] assignment);
    }

    static void permute(List<DeviceId> devices, List<Position> positions, int k, DeviceId[] cur, boolean[] used, Visitor v) {
        if (k == positions.size()) {
            v.visit(cur);
            return;
        }
        for (int i = 0; i < devices.size(); i++) {
            if (!used[i]) {
                used[i] = true;
                cur[k] = devices.get(i);
                permute(devices, positions, k + 1, cur, used, v);
                used[i] = false;
            }
        }
    }

    /** A slice at unit resolution: kind, layer, group, unit index (or -1 for replicated tensors). */
    record Cell(PlannedSlice.Kind kind, int layer, int group, int unit) {
    }

    /**
     * Checks that the transfers are sound and complete: every source holds what it sends, every target
     * ends with exactly what its new position needs (held or received, nothing twice), reloads only where
     * no live device holds the slice, bytes add up, and frees never drop something still needed.
     */
    static void assertSoundAndComplete(Case c, DeviceMapping m) {
        ModelContext model = c.model();
        ParallelConfig oc = c.old().config();
        ParallelConfig nc = m.newConfig();
        int u = (int) ShardRange.lcm(oc.tensorShards(), nc.tensorShards());
        int L = model.layers();
        Map<DeviceId, Position> oldPos = new HashMap<>();
        c.old().placement().forEach((p, d) -> oldPos.put(d, p));
        Map<Integer, List<Integer>> inh = m.inheritedFrom();
        long[] keptKv = keptKv(c.old(), m);
        // what each live device holds, at unit resolution
        Map<DeviceId, Set<Cell>> holds = new HashMap<>();
        oldPos.forEach((d, o) -> holds.put(d, cells(model, o, oc, u,
                c.old().batches().getOrDefault(o.pipeline(), List.of()).isEmpty() ? List.of() : List.of(o.pipeline()))));
        // sources hold what they send; reloads only when nobody holds it
        Map<DeviceId, Set<Cell>> received = new HashMap<>();
        long sum = 0;
        for (Transfer t : m.transfers()) {
            Set<Cell> cells = cellsOf(model, t.slice(), u);
            if (t.isReload()) {
                for (Cell cell : cells) {
                    for (Set<Cell> h : holds.values()) {
                        assertTrue(!h.contains(cell), "reload of " + cell + " although a live device holds it");
                    }
                }
            } else {
                assertTrue(holds.get(t.source()).containsAll(cells), t + ": source does not hold the slice");
            }
            for (Cell cell : cells) {
                assertTrue(received.computeIfAbsent(t.target(), x -> new HashSet<>()).add(cell), "received twice: " + cell + " by " + t.target());
            }
            assertTrue(c.target().contains(t.target().instance()), "target " + t.target() + " is not available");
            sum += t.bytes();
        }
        assertEquals(m.bytesMoved() + m.bytesReloaded(), sum, "transfer bytes");
        // each new position ends with exactly what it needs
        Set<DeviceId> used = new HashSet<>();
        m.placement().forEach((v, d) -> {
            assertTrue(used.add(d), "device " + d + " placed twice");
            assertTrue(c.target().contains(d.instance()), "device " + d + " is not on an available instance");
            List<Integer> groups = inh.getOrDefault(v.pipeline(), List.of()).stream().filter(g -> keptKv[g] > 0).toList();
            Set<Cell> need = cells(model, v, nc, u, groups);
            Set<Cell> have = new HashSet<>(received.getOrDefault(d, Set.of()));
            for (Cell cell : have) {
                assertTrue(need.contains(cell), d + " receives " + cell + " it does not need");
                assertTrue(!holds.getOrDefault(d, Set.of()).contains(cell), d + " receives " + cell + " it already holds");
            }
            Set<Cell> own = new HashSet<>(holds.getOrDefault(d, Set.of()));
            own.retainAll(need);
            have.addAll(own);
            assertEquals(need, have, "context of " + v + " on " + d);
        });
        // memory balance: old bytes - freed + received = what the new position needs (nothing without one)
        long[] allKv = new long[oc.dataParallel()];
        c.old().batches().forEach((d, list) -> list.forEach(b -> allKv[d] += b.requests() * b.tokens() * model.kvBytesPerTokenPerLayer()));
        Map<DeviceId, Long> balance = new HashMap<>();
        oldPos.forEach((d, o) -> balance.put(d, bytesAt(model, oc, o, List.of(o.pipeline()), allKv)));
        m.frees().forEach((d, slices) -> slices.forEach(sl -> balance.merge(d, -sl.bytes(), Long::sum)));
        m.transfers().forEach(t -> balance.merge(t.target(), t.bytes(), Long::sum));
        balance.forEach((d, b) -> {
            Position v = m.positionOf(d);
            long expected = v == null ? 0 : bytesAt(model, nc, v, inh.getOrDefault(v.pipeline(), List.of()), keptKv);
            assertEquals(expected, b, "bytes held by " + d + " after migration");
        });
        // frees: never something the device's new position needs
        m.frees().forEach((d, slices) -> {
            Position v = m.positionOf(d);
            for (PlannedSlice s : slices) {
                if (v == null || s.kind() == PlannedSlice.Kind.KV_CACHE) {
                    continue;
                }
                Set<Cell> need = cells(model, v, nc, u, List.of());
                for (Cell cell : cellsOf(model, s, u)) {
                    assertTrue(!need.contains(cell), d + " frees " + cell + " that " + v + " needs");
                }
            }
        });
    }

    /** Bytes position p holds: its weights plus, per layer, its shard of each group's KV. */
    static long bytesAt(ModelContext model, ParallelConfig c, Position p, List<Integer> groups, long[] kvPerLayer) {
        int n = first(p.stage() + 1, c.pipelineStages(), model.layers()) - first(p.stage(), c.pipelineStages(), model.layers());
        ShardRange shard = ShardRange.ofShard(p.shard(), c.tensorShards());
        long b = n * shard.bytesOf(model.layerWeightBytes());
        for (int g : groups) {
            b += n * shard.bytesOf(kvPerLayer[g]);
        }
        if (p.stage() == 0) {
            b += model.shardedVocab() ? shard.bytesOf(model.embeddingBytes()) : model.embeddingBytes();
        }
        if (p.stage() == c.pipelineStages() - 1) {
            b += model.shardedVocab() ? shard.bytesOf(model.classifierBytes()) : model.classifierBytes();
        }
        return b;
    }

    /** Unit cells of position p under config c, with the KV cells of the given request groups. */
    static Set<Cell> cells(ModelContext model, Position p, ParallelConfig c, int u, List<Integer> kvGroups) {
        int L = model.layers();
        Set<Cell> out = new HashSet<>();
        int w = u / c.tensorShards();
        for (int l = first(p.stage(), c.pipelineStages(), L); l < first(p.stage() + 1, c.pipelineStages(), L); l++) {
            for (int x = p.shard() * w; x < (p.shard() + 1) * w; x++) {
                out.add(new Cell(PlannedSlice.Kind.WEIGHTS, l, -1, x));
                for (int g : kvGroups) {
                    out.add(new Cell(PlannedSlice.Kind.KV_CACHE, l, g, x));
                }
            }
        }
        for (int x = p.shard() * w; x < (p.shard() + 1) * w; x++) {
            int cell = model.shardedVocab() ? x : -1;
            if (p.stage() == 0 && model.embeddingBytes() > 0 && unitBytes(model, model.embeddingBytes(), x, u) > 0) {
                out.add(new Cell(PlannedSlice.Kind.EMBEDDING, -1, -1, cell));
            }
            if (p.stage() == c.pipelineStages() - 1 && model.classifierBytes() > 0
                    && unitBytes(model, model.classifierBytes(), x, u) > 0) {
                out.add(new Cell(PlannedSlice.Kind.CLASSIFIER, -1, -1, cell));
            }
        }
        return out;
    }

    /** Bytes of unit x of u of a tensor (a replicated tensor's units count whole). */
    private static long unitBytes(ModelContext model, long total, int x, int u) {
        return model.shardedVocab() ? new ShardRange(x, x + 1, u).bytesOf(total) : total;
    }

    static Set<Cell> cellsOf(ModelContext model, PlannedSlice s, int u) {
        Set<Cell> out = new HashSet<>();
        boolean vocab = s.kind() == PlannedSlice.Kind.EMBEDDING || s.kind() == PlannedSlice.Kind.CLASSIFIER;
        if (vocab && !model.shardedVocab()) {
            out.add(new Cell(s.kind(), -1, -1, -1));
            return out;
        }
        ShardRange r = s.shard();
        if (u % r.units() != 0) {
            fail("slice " + s + " is not on the lcm grid " + u);
        }
        int f = u / r.units();
        for (int x = r.from() * f; x < r.to() * f; x++) {
            if (!vocab || unitBytes(model, s.kind() == PlannedSlice.Kind.EMBEDDING ? model.embeddingBytes()
                    : model.classifierBytes(), x, u) > 0) {
                out.add(new Cell(s.kind(), s.layer(), s.requestGroup(), x));
            }
        }
        return out;
    }
}
