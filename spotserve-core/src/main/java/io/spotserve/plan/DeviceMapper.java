package io.spotserve.plan;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Device mapper of SpotServe §3.3: maps the available GPUs to the positions (d, p, m) of the new
 * configuration so that as much existing context (weights and KV cache) as possible stays in place, by
 * maximum-weight bipartite matching with {@link KuhnMunkres}.
 *
 * <p>Edge weight of device u (holding old position o) and new position v = bytes u already holds that v
 * needs: (old ∩ new layer range) × (old ∩ new shard range) of the block weights, the embedding if both are
 * first stages, the classifier if both are last stages, and the KV cache of the same slice only when v's
 * pipeline inherits the requests of o's pipeline. Maximizing reuse minimizes the bytes to transfer, since
 * the bytes every new position needs do not depend on the mapping.
 *
 * <p>Multi-GPU instances are matched in two levels (as the authors' artifact does): positions are grouped
 * into slots of c = gcd(M_new, GPUs per instance) consecutive shards of one stage, so a tensor group stays
 * inside an instance; level 1 solves, for every (instance, slot), the GPU→shard matching; level 2 matches
 * instance units (GPUs/c per instance) to slots with the level-1 optima as weights; a final matching per
 * instance fixes its GPUs for the slots it won. With one GPU per slot (c = 1) a single exact matching over
 * all devices is used. Instances without context (new ones) take the leftover slots.
 *
 * <p>Capacity: an old pipeline's requests (its KV "request group") move as a whole to one new pipeline;
 * a new pipeline holds at most B_new requests and may resume several groups (continuous batching) when D
 * shrinks. Batches are admitted in order of decoding progress, so when capacity shrinks the most
 * progressed ones keep their cache. A pipeline that lost any position lost part of its cache: its batches
 * are dropped (recomputed from committed tokens).
 *
 * <p>Deterministic: no clock, no threads, no hash-order dependence.
 */
public final class DeviceMapper {
    private DeviceMapper() {
    }

    /**
     * Maps {@code target}'s devices to the new configuration.
     *
     * @throws IllegalArgumentException when a configuration cannot split the model, a placed device lies
     *                                  outside its target instance, or the fleet is too small
     */
    public static DeviceMapping map(ModelContext model, Deployment old, TargetFleet target) {
        return new Run(model, old, target).run();
    }

    /** One mapping computation; package-private state holder. */
    static final class Run {
        final ModelContext model;
        final Deployment old;
        final TargetFleet target;
        final ParallelConfig oc;
        final ParallelConfig nc;
        final Map<DeviceId, Position> oldPos = new LinkedHashMap<>();
        final int[] newOf;               // old pipeline -> new pipeline resuming its requests, or -1
        final long[] keptKv;             // old pipeline -> KV bytes per layer (M=1) of kept batches
        final long[] allKv;              // old pipeline -> KV bytes per layer (M=1) of all its batches
        final Map<Integer, List<InflightBatch>> kept = new TreeMap<>();
        final List<InflightBatch> dropped = new ArrayList<>();

        Run(ModelContext model, Deployment old, TargetFleet target) {
            this.model = model;
            this.old = old;
            this.target = target;
            this.oc = old.config();
            this.nc = target.config();
            model.checkStages(oc.pipelineStages());
            model.checkStages(nc.pipelineStages());
            Map<String, Integer> gpus = new HashMap<>();
            target.instances().forEach(i -> gpus.put(i.name(), i.gpus()));
            old.placement().forEach((p, d) -> {
                Integer g = gpus.get(d.instance());
                if (g != null && d.gpu() >= g) {
                    throw new IllegalArgumentException("device " + d + " holds old position " + p + " but target instance "
                            + d.instance() + " has only " + g + " GPUs");
                }
                oldPos.put(d, p);
            });
            newOf = new int[oc.dataParallel()];
            keptKv = new long[oc.dataParallel()];
            allKv = new long[oc.dataParallel()];
            chooseInheritance();
        }

        /** Capacity rule: most-progressed batches first; whole old pipelines map to new pipelines. */
        private void chooseInheritance() {
            boolean[] complete = new boolean[oc.dataParallel()];
            int perPipeline = oc.pipelineStages() * oc.tensorShards();
            int[] present = new int[oc.dataParallel()];
            old.placement().keySet().forEach(p -> present[p.pipeline()]++);
            for (int d = 0; d < complete.length; d++) {
                complete[d] = present[d] == perPipeline;
            }
            record Entry(int pipeline, int index, InflightBatch batch) {
            }
            List<Entry> all = new ArrayList<>();
            old.batches().forEach((d, list) -> {
                for (int i = 0; i < list.size(); i++) {
                    all.add(new Entry(d, i, list.get(i)));
                    allKv[d] = Math.addExact(allKv[d], list.get(i).kvBytesPerLayer(model));
                }
            });
            all.sort(Comparator.comparingInt((Entry e) -> -e.batch().decodedSteps())
                    .thenComparingInt(Entry::pipeline).thenComparingInt(Entry::index));
            // bind each old pipeline (request group) to one new pipeline: an empty one while any is left,
            // then the first with room; every new pipeline holds at most B_new requests
            int[] slot = new int[oc.dataParallel()];
            Arrays.fill(slot, -1);
            int[] load = new int[nc.dataParallel()];
            int used = 0;
            Map<Integer, boolean[]> keep = new HashMap<>();
            old.batches().forEach((d, list) -> keep.put(d, new boolean[list.size()]));
            for (Entry e : all) {
                int d = e.pipeline();
                int r = e.batch().requests();
                if (!complete[d] || r > nc.maxBatch()) {
                    continue;
                }
                int n = slot[d];
                if (n < 0) {
                    if (used < nc.dataParallel()) {
                        n = used++;
                    } else {
                        for (int k = 0; k < used && n < 0; k++) {
                            if (load[k] + r <= nc.maxBatch()) {
                                n = k;
                            }
                        }
                    }
                    if (n < 0) {
                        continue;
                    }
                    slot[d] = n;
                } else if (load[n] + r > nc.maxBatch()) {
                    continue;
                }
                load[n] += r;
                keep.get(d)[e.index()] = true;
            }
            // number new pipelines by the smallest old pipeline they resume
            int[] rename = new int[nc.dataParallel()];
            Arrays.fill(rename, -1);
            int next = 0;
            Arrays.fill(newOf, -1);
            for (int d = 0; d < oc.dataParallel(); d++) {
                if (slot[d] >= 0) {
                    if (rename[slot[d]] < 0) {
                        rename[slot[d]] = next++;
                    }
                    newOf[d] = rename[slot[d]];
                }
            }
            // report kept batches in their original order
            old.batches().forEach((d, list) -> {
                for (int i = 0; i < list.size(); i++) {
                    InflightBatch b = list.get(i);
                    if (keep.get(d)[i]) {
                        kept.computeIfAbsent(newOf[d], x -> new ArrayList<>()).add(b);
                        keptKv[d] = Math.addExact(keptKv[d], b.kvBytesPerLayer(model));
                    } else {
                        dropped.add(b);
                    }
                }
            });
        }

        int first(int stage, ParallelConfig c) {
            return model.firstLayer(stage, c.pipelineStages());
        }

        /** Bytes device at old position {@code o} already holds that new position {@code v} needs. */
        long reuse(Position o, Position v) {
            if (o == null) {
                return 0;
            }
            long bytes = 0;
            int lo = Math.max(first(o.stage(), oc), first(v.stage(), nc));
            int hi = Math.min(first(o.stage() + 1, oc), first(v.stage() + 1, nc));
            if (hi > lo) {
                ShardRange s = ShardRange.ofShard(o.shard(), oc.tensorShards())
                        .intersect(ShardRange.ofShard(v.shard(), nc.tensorShards()));
                if (s != null) {
                    bytes += (hi - lo) * s.bytesOf(model.layerWeightBytes());
                    if (newOf[o.pipeline()] == v.pipeline()) {
                        bytes += (hi - lo) * s.bytesOf(keptKv[o.pipeline()]);
                    }
                }
            }
            ShardRange common = ShardRange.ofShard(o.shard(), oc.tensorShards())
                    .intersect(ShardRange.ofShard(v.shard(), nc.tensorShards()));
            if (o.stage() == 0 && v.stage() == 0) {
                bytes += !model.shardedVocab() ? model.embeddingBytes()
                        : common == null ? 0 : common.bytesOf(model.embeddingBytes());
            }
            if (o.stage() == oc.pipelineStages() - 1 && v.stage() == nc.pipelineStages() - 1) {
                bytes += !model.shardedVocab() ? model.classifierBytes()
                        : common == null ? 0 : common.bytesOf(model.classifierBytes());
            }
            return bytes;
        }

        DeviceMapping run() {
            Map<Position, DeviceId> placement = match();
            Transfers t = new Transfers(this, placement);
            t.build();
            long reused = 0;
            for (Map.Entry<Position, DeviceId> e : placement.entrySet()) {
                reused += reuse(oldPos.get(e.getValue()), e.getKey());
            }
            long needed = 0;
            for (Position v : placement.keySet()) {
                needed += need(v);
            }
            if (needed - reused != t.moved + t.reloaded) {
                throw new IllegalStateException("internal: needed " + needed + " - reused " + reused + " != transferred "
                        + (t.moved + t.reloaded));
            }
            Map<Integer, List<Integer>> inh = new TreeMap<>();
            for (int d = 0; d < newOf.length; d++) {
                if (newOf[d] >= 0) {
                    inh.computeIfAbsent(newOf[d], x -> new ArrayList<>()).add(d);
                }
            }
            return new DeviceMapping(model, oc, nc, placement, inh, kept, dropped, t.transfers, t.frees, reused,
                    t.moved, t.reloaded);
        }

        /** Bytes new position {@code v} needs in total. */
        long need(Position v) {
            long b = model.weightBytesPerPosition(nc, v);
            int n = first(v.stage() + 1, nc) - first(v.stage(), nc);
            for (int g = 0; g < newOf.length; g++) {
                if (newOf[g] == v.pipeline()) {
                    b += n * ShardRange.ofShard(v.shard(), nc.tensorShards()).bytesOf(keptKv[g]);
                }
            }
            return b;
        }

        // ---------------------------------------------------------------- matching

        private Map<Position, DeviceId> match() {
            List<Position> positions = Deployment.positions(nc);
            int c = nc.tensorShards();
            for (TargetFleet.Instance i : target.instances()) {
                c = ShardRange.gcd(c, i.gpus());
            }
            int slotWidth = c;
            int slots = positions.size() / slotWidth;
            // free GPUs per instance, in fleet order
            Map<String, List<DeviceId>> free = new LinkedHashMap<>();
            List<String> contextInstances = new ArrayList<>();
            for (TargetFleet.Instance i : target.instances()) {
                List<DeviceId> gpus = new ArrayList<>();
                boolean ctx = false;
                for (int g = 0; g < i.gpus(); g++) {
                    DeviceId d = new DeviceId(i.name(), g);
                    gpus.add(d);
                    ctx |= oldPos.containsKey(d);
                }
                free.put(i.name(), gpus);
                if (ctx) {
                    contextInstances.add(i.name());
                }
            }
            DeviceId[] chosen = new DeviceId[positions.size()];
            if (slotWidth == 1) {
                List<DeviceId> rows = new ArrayList<>();
                for (String inst : contextInstances) {
                    for (DeviceId d : free.get(inst)) {
                        if (oldPos.containsKey(d)) {
                            rows.add(d);
                        }
                    }
                }
                if (!rows.isEmpty()) {
                    double[][] w = new double[rows.size()][positions.size()];
                    for (int r = 0; r < rows.size(); r++) {
                        for (int v = 0; v < positions.size(); v++) {
                            w[r][v] = reuse(oldPos.get(rows.get(r)), positions.get(v));
                        }
                    }
                    Assignment a = KuhnMunkres.maximize(w);
                    for (int r = 0; r < rows.size(); r++) {
                        int v = a.columnOf(r);
                        if (v >= 0) {
                            chosen[v] = rows.get(r);
                            free.get(rows.get(r).instance()).remove(rows.get(r));
                        }
                    }
                }
            } else {
                // candidate A: flexible GPU choice inside an instance (exact when an instance hosts one slot);
                // candidate B: fixed groups of c consecutive GPUs (exact over such groupings, so never worse
                // than keeping a packed deployment in place). Keep the one that reuses more.
                Map<String, List<DeviceId>> freeA = copy(free);
                DeviceId[] a = new DeviceId[positions.size()];
                matchHierarchical(positions, slotWidth, slots, contextInstances, freeA, a);
                Map<String, List<DeviceId>> freeB = copy(free);
                DeviceId[] b = new DeviceId[positions.size()];
                matchFixedGroups(positions, slotWidth, slots, contextInstances, freeB, b);
                boolean useB = reuseOf(b, positions) > reuseOf(a, positions);
                System.arraycopy(useB ? b : a, 0, chosen, 0, chosen.length);
                free.clear();
                free.putAll(useB ? freeB : freeA);
            }
            // leftovers: instances without context first (new ones), then anything still free
            List<DeviceId> pool = new ArrayList<>();
            free.forEach((inst, list) -> {
                if (!contextInstances.contains(inst)) {
                    pool.addAll(list);
                }
            });
            free.forEach((inst, list) -> {
                if (contextInstances.contains(inst)) {
                    pool.addAll(list);
                }
            });
            int next = 0;
            for (int v = 0; v < chosen.length; v++) {
                if (chosen[v] == null) {
                    chosen[v] = pool.get(next++);
                }
            }
            Map<Position, DeviceId> out = new LinkedHashMap<>();
            for (int v = 0; v < chosen.length; v++) {
                out.put(positions.get(v), chosen[v]);
            }
            return out;
        }

        private void matchHierarchical(List<Position> positions, int c, int slots, List<String> contextInstances,
                                       Map<String, List<DeviceId>> free, DeviceId[] chosen) {
            if (contextInstances.isEmpty()) {
                return;
            }
            // level 1: per (instance, slot) the best GPU->shard matching inside the instance
            double[][] level1 = new double[contextInstances.size()][slots];
            for (int i = 0; i < contextInstances.size(); i++) {
                List<DeviceId> gpus = free.get(contextInstances.get(i));
                for (int s = 0; s < slots; s++) {
                    level1[i][s] = KuhnMunkres.maximize(weights(gpus, positions, s * c, c)).total();
                }
            }
            // level 2: instance units (GPUs / c per instance) to slots
            List<Integer> unitOwner = new ArrayList<>();
            for (int i = 0; i < contextInstances.size(); i++) {
                int units = free.get(contextInstances.get(i)).size() / c;
                for (int u = 0; u < units; u++) {
                    unitOwner.add(i);
                }
            }
            double[][] w2 = new double[unitOwner.size()][slots];
            for (int u = 0; u < unitOwner.size(); u++) {
                w2[u] = level1[unitOwner.get(u)].clone();
            }
            Assignment a2 = KuhnMunkres.maximize(w2);
            // final: per instance, exact GPU matching over the positions of the slots it won
            for (int i = 0; i < contextInstances.size(); i++) {
                List<Integer> cols = new ArrayList<>();
                for (int u = 0; u < unitOwner.size(); u++) {
                    int s = a2.columnOf(u);
                    if (unitOwner.get(u) == i && s >= 0) {
                        for (int k = 0; k < c; k++) {
                            cols.add(s * c + k);
                        }
                    }
                }
                if (cols.isEmpty()) {
                    continue;
                }
                List<DeviceId> gpus = new ArrayList<>(free.get(contextInstances.get(i)));
                double[][] w = new double[gpus.size()][cols.size()];
                for (int g = 0; g < gpus.size(); g++) {
                    for (int k = 0; k < cols.size(); k++) {
                        w[g][k] = reuse(oldPos.get(gpus.get(g)), positions.get(cols.get(k)));
                    }
                }
                Assignment a = KuhnMunkres.maximize(w);
                for (int g = 0; g < gpus.size(); g++) {
                    int k = a.columnOf(g);
                    if (k >= 0) {
                        chosen[cols.get(k)] = gpus.get(g);
                        free.get(contextInstances.get(i)).remove(gpus.get(g));
                    }
                }
            }
        }

        private static Map<String, List<DeviceId>> copy(Map<String, List<DeviceId>> free) {
            Map<String, List<DeviceId>> out = new LinkedHashMap<>();
            free.forEach((k, v) -> out.put(k, new ArrayList<>(v)));
            return out;
        }

        private long reuseOf(DeviceId[] chosen, List<Position> positions) {
            long sum = 0;
            for (int v = 0; v < chosen.length; v++) {
                if (chosen[v] != null) {
                    sum += reuse(oldPos.get(chosen[v]), positions.get(v));
                }
            }
            return sum;
        }

        /** Groups of c consecutive GPUs per instance matched to slots; each group's GPUs matched inside it. */
        private void matchFixedGroups(List<Position> positions, int c, int slots, List<String> contextInstances,
                                      Map<String, List<DeviceId>> free, DeviceId[] chosen) {
            List<List<DeviceId>> groups = new ArrayList<>();
            for (String inst : contextInstances) {
                List<DeviceId> gpus = free.get(inst);
                for (int g = 0; g + c <= gpus.size(); g += c) {
                    groups.add(new ArrayList<>(gpus.subList(g, g + c)));
                }
            }
            if (groups.isEmpty()) {
                return;
            }
            double[][] w = new double[groups.size()][slots];
            Assignment[][] inner = new Assignment[groups.size()][slots];
            for (int g = 0; g < groups.size(); g++) {
                for (int s = 0; s < slots; s++) {
                    inner[g][s] = KuhnMunkres.maximize(weights(groups.get(g), positions, s * c, c));
                    w[g][s] = inner[g][s].total();
                }
            }
            Assignment a = KuhnMunkres.maximize(w);
            for (int g = 0; g < groups.size(); g++) {
                int s = a.columnOf(g);
                if (s < 0) {
                    continue;
                }
                List<DeviceId> group = groups.get(g);
                for (int k = 0; k < c; k++) {
                    DeviceId d = group.get(k);
                    chosen[s * c + inner[g][s].columnOf(k)] = d;
                    free.get(d.instance()).remove(d);
                }
            }
        }

        private double[][] weights(List<DeviceId> gpus, List<Position> positions, int from, int count) {
            double[][] w = new double[gpus.size()][count];
            for (int g = 0; g < gpus.size(); g++) {
                for (int k = 0; k < count; k++) {
                    w[g][k] = reuse(oldPos.get(gpus.get(g)), positions.get(from + k));
                }
            }
            return w;
        }
    }
}
