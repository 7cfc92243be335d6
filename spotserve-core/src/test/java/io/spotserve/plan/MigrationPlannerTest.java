package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

class MigrationPlannerTest {

    /** Per-unit, per-instance received and freed bytes, computed from the mapping alone. */
    private record Effects(List<ContextUnit> units, List<String> instances, long[][] recv, long[][] freed) {
        static Effects of(DeviceMapping m) {
            TreeSet<ContextUnit> units = new TreeSet<>();
            TreeSet<String> inst = new TreeSet<>();
            m.transfers().forEach(t -> {
                units.add(t.slice().unit());
                inst.add(t.target().instance());
                if (t.source() != null) {
                    inst.add(t.source().instance());
                }
            });
            m.frees().forEach((d, l) -> {
                inst.add(d.instance());
                l.forEach(s -> units.add(s.unit()));
            });
            m.placement().values().forEach(d -> inst.add(d.instance()));
            List<ContextUnit> ul = new ArrayList<>(units);
            List<String> il = new ArrayList<>(inst);
            long[][] recv = new long[ul.size()][il.size()];
            long[][] freed = new long[ul.size()][il.size()];
            m.transfers().forEach(t -> recv[ul.indexOf(t.slice().unit())][il.indexOf(t.target().instance())] += t.bytes());
            m.frees().forEach((d, l) -> l.forEach(s -> freed[ul.indexOf(s.unit())][il.indexOf(d.instance())] += s.bytes()));
            return new Effects(ul, il, recv, freed);
        }
    }

    /** Minimum peak over every order of the non-KV units (KV first), by enumerating permutations. */
    private static long bruteForceMinPeak(Effects e) {
        int n = e.instances().size();
        long[] use = new long[n];
        long kvPeak = 0;
        List<Integer> rest = new ArrayList<>();
        for (int u = 0; u < e.units().size(); u++) {
            if (e.units().get(u).equals(ContextUnit.KV)) {
                for (int j = 0; j < n; j++) {
                    use[j] += e.recv()[u][j];
                    kvPeak = Math.max(kvPeak, use[j]);
                    use[j] -= e.freed()[u][j];
                }
            } else {
                rest.add(u);
            }
        }
        return permutations(e, rest, new boolean[rest.size()], use, kvPeak, 0, new long[] {Long.MAX_VALUE});
    }

    private static long permutations(Effects e, List<Integer> rest, boolean[] used, long[] use, long peak, int depth, long[] best) {
        if (peak >= best[0]) {
            return best[0];                        // cannot improve: prune
        }
        if (depth == rest.size()) {
            best[0] = peak;
            return peak;
        }
        for (int i = 0; i < rest.size(); i++) {
            if (used[i]) {
                continue;
            }
            int u = rest.get(i);
            long p = peak;
            long[] next = use.clone();
            for (int j = 0; j < next.length; j++) {
                next[j] += e.recv()[u][j];
                p = Math.max(p, next[j]);
                next[j] -= e.freed()[u][j];
            }
            used[i] = true;
            permutations(e, rest, used, next, p, depth + 1, best);
            used[i] = false;
        }
        return best[0];
    }

    /** Walks the plan's steps and returns each instance's peak buffer use. */
    private static Map<String, Long> replayPeaks(MigrationPlan plan) {
        Map<String, Long> use = new HashMap<>();
        Map<String, Long> peak = new TreeMap<>();
        for (MigrationPlan.Step s : plan.steps()) {
            if (s instanceof MigrationPlan.Migrate m) {
                for (Transfer t : m.transfers()) {
                    long u = use.merge(t.target().instance(), t.bytes(), Long::sum);
                    peak.merge(t.target().instance(), Math.max(0, u), Math::max);
                }
                for (MigrationPlan.Release r : m.releases()) {
                    use.merge(r.device().instance(), -r.slice().bytes(), Long::sum);
                }
            }
        }
        return peak;
    }

    /** KV first, every transfer and free exactly once, markers exactly when a stage is complete, peaks right. */
    private static void assertWellFormed(DeviceMapping m, MigrationPlan plan) {
        List<MigrationPlan.Migrate> migrates = new ArrayList<>();
        List<Transfer> seen = new ArrayList<>();
        List<MigrationPlan.Release> released = new ArrayList<>();
        for (MigrationPlan.Step s : plan.steps()) {
            if (s instanceof MigrationPlan.Migrate mg) {
                migrates.add(mg);
                for (Transfer t : mg.transfers()) {
                    assertEquals(mg.unit(), t.slice().unit(), "transfer in the wrong step");
                    seen.add(t);
                }
                for (MigrationPlan.Release r : mg.releases()) {
                    assertEquals(mg.unit(), r.slice().unit(), "release in the wrong step");
                    released.add(r);
                }
            }
        }
        boolean anyKv = m.transfers().stream().anyMatch(t -> t.slice().kind() == PlannedSlice.Kind.KV_CACHE);
        if (anyKv) {
            assertEquals(ContextUnit.KV, migrates.get(0).unit(), "KV cache first");
        }
        for (int i = 1; i < migrates.size(); i++) {
            assertTrue(!migrates.get(i).unit().equals(ContextUnit.KV), "KV only in the first step");
        }
        assertEquals(sorted(m.transfers()), sorted(seen), "every transfer exactly once");
        List<String> frees = new ArrayList<>();
        m.frees().forEach((d, l) -> l.forEach(s -> frees.add(d + " " + s)));
        assertEquals(frees.stream().sorted().toList(), released.stream().map(r -> r.device() + " " + r.slice()).sorted().toList());
        // markers
        Map<String, Integer> markerAt = new HashMap<>();
        for (int i = 0; i < plan.steps().size(); i++) {
            if (plan.steps().get(i) instanceof MigrationPlan.StartStage st) {
                assertEquals(null, markerAt.put(st.pipeline() + "/" + st.stage(), i), "one marker per stage");
            }
        }
        ParallelConfig nc = m.newConfig();
        assertEquals(nc.dataParallel() * nc.pipelineStages(), markerAt.size(), "a marker for every new stage");
        for (int d = 0; d < nc.dataParallel(); d++) {
            for (int p = 0; p < nc.pipelineStages(); p++) {
                List<Transfer> into = m.transfersInto(d, p);
                int lastDelivery = -1;
                for (int i = 0; i < plan.steps().size(); i++) {
                    if (plan.steps().get(i) instanceof MigrationPlan.Migrate mg && mg.transfers().stream().anyMatch(into::contains)) {
                        lastDelivery = i;
                    }
                }
                int at = markerAt.get(d + "/" + p);
                assertTrue(at > lastDelivery, "stage " + d + "/" + p + " starts before its context arrived");
                for (int i = lastDelivery + 1; i < at; i++) {
                    assertInstanceOf(MigrationPlan.StartStage.class, plan.steps().get(i),
                            "stage " + d + "/" + p + " waited for a step that delivers nothing to it");
                }
            }
        }
        Map<String, Long> replay = replayPeaks(plan);
        replay.forEach((inst, peak) -> assertEquals(peak, plan.peakBufferBytes().get(inst), "peak of " + inst));
        plan.peakBufferBytes().forEach((inst, peak) -> assertEquals(replay.getOrDefault(inst, 0L), peak, "peak of " + inst));
    }

    private static List<String> sorted(List<Transfer> ts) {
        return ts.stream().map(Transfer::toString).sorted().toList();
    }

    @Test
    void neverExceedsTheCapWhenAnOrderExistsAndNamesTheMinimumOtherwise() {
        Random r = new Random(42);
        int infeasible = 0;
        for (int trial = 0; trial < 300; trial++) {
            PlanFixtures.Case c = trial % 2 == 0 ? PlanFixtures.randomSingleGpuCase(r, 6) : PlanFixtures.randomMultiGpuCase(r);
            DeviceMapping m = DeviceMapper.map(c.model(), c.old(), c.target());
            long min = bruteForceMinPeak(Effects.of(m));
            long[] caps = {min, Math.max(0, min - 1), min + r.nextInt(5000), 0, Long.MAX_VALUE / 4};
            for (long cap : caps) {
                if (cap >= min) {
                    MigrationPlan plan = MigrationPlanner.plan(m, cap);
                    assertTrue(plan.maxPeakBufferBytes() <= cap, "trial " + trial + ": peak " + plan.maxPeakBufferBytes() + " > cap " + cap);
                    assertEquals(cap, plan.bufferCapBytes());
                    assertWellFormed(m, plan);
                } else {
                    MigrationInfeasibleException e = assertThrows(MigrationInfeasibleException.class, () -> MigrationPlanner.plan(m, cap),
                            "trial " + trial + " cap " + cap + " < minimum " + min);
                    assertEquals(min, e.minimumFeasibleCap());
                    assertEquals(cap, e.cap());
                    assertTrue(e.exact());
                    assertTrue(e.getMessage().contains("U_max = " + cap + " bytes") && e.getMessage().contains(min + " bytes"), e.getMessage());
                    infeasible++;
                }
            }
        }
        assertTrue(infeasible > 50, "the random cases exercise infeasible caps: " + infeasible);
    }

    /**
     * Instance a first receives 1 byte of layer 0 (nothing to free), then 10 bytes of layer 1 while freeing
     * its old 10-byte slice of layer 1. With U_max = 10 the paper's sequential-then-min-max order takes
     * layer 0 first and peaks at 11; layer 1 first peaks at 10, which the exact search finds.
     */
    @Test
    void exactSearchFindsAnOrderTheGreedyMisses() {
        DeviceId a = new DeviceId("a", 0);
        DeviceId b = new DeviceId("b", 0);
        ShardRange lo = ShardRange.ofShard(0, 2);
        ShardRange hi = ShardRange.ofShard(1, 2);
        ParallelConfig c = ParallelConfig.of(1, 1, 2, 1);
        DeviceMapping m = new DeviceMapping(new ModelContext("syn", 2, 20, 0, 0, 1), c, c,
                Map.of(new Position(0, 0, 0), a, new Position(0, 0, 1), b), Map.of(), Map.of(), List.of(),
                List.of(new Transfer(new PlannedSlice(PlannedSlice.Kind.WEIGHTS, 0, lo, -1, 1), b, a),
                        new Transfer(new PlannedSlice(PlannedSlice.Kind.WEIGHTS, 1, hi, -1, 10), b, a)),
                Map.of(a, List.of(new PlannedSlice(PlannedSlice.Kind.WEIGHTS, 1, lo, -1, 10))), 0, 11, 0);
        MigrationPlanner.Units u = new MigrationPlanner.Units(m);
        assertEquals(11, MigrationPlanner.max(MigrationPlanner.replay(u, MigrationPlanner.greedy(u, new long[u.n], 10))));
        MigrationPlan plan = MigrationPlanner.plan(m, 10);
        assertEquals(List.of(ContextUnit.layer(1), ContextUnit.layer(0)), plan.order());
        assertEquals(10, plan.peakBufferBytes().get("a"));
        assertEquals(10, bruteForceMinPeak(Effects.of(m)));
        MigrationInfeasibleException e = assertThrows(MigrationInfeasibleException.class, () -> MigrationPlanner.plan(m, 9));
        assertEquals(10, e.minimumFeasibleCap());
        // with room to spare the paper's sequential order is kept
        assertEquals(List.of(ContextUnit.layer(0), ContextUnit.layer(1)), MigrationPlanner.plan(m, 11).order());
    }

    /** One new instance replaces the one that held stage 1: stage 0 can start at once, stage 1 after its last layer. */
    @Test
    void startMarkersAppearExactlyWhenAStageIsComplete() {
        ModelContext model = new ModelContext("m", 4, 1000, 100, 200, 1);
        Deployment old = Deployment.packed(ParallelConfig.of(1, 2, 1, 1), List.of(new DeviceId("a", 0), new DeviceId("b", 0)));
        TargetFleet fleet = new TargetFleet(ParallelConfig.of(1, 2, 1, 1),
                List.of(new TargetFleet.Instance("a", 1), new TargetFleet.Instance("c", 1)));
        DeviceMapping m = DeviceMapper.map(model, old, fleet);   // b is under notice: sends layers 2-3 + classifier to c
        MigrationPlan plan = MigrationPlanner.plan(m, Long.MAX_VALUE);
        assertEquals(List.of(new MigrationPlan.StartStage(0, 0)), plan.steps().subList(0, 1));
        assertEquals(List.of(ContextUnit.layer(2), ContextUnit.layer(3), ContextUnit.CLASSIFIER), plan.order());
        assertEquals(new MigrationPlan.StartStage(0, 1), plan.steps().get(plan.steps().size() - 1));
        assertEquals(5, plan.steps().size());
        assertEquals(Map.of("a", 0L, "b", 0L, "c", 2200L), plan.peakBufferBytes());
        assertWellFormed(m, plan);
    }

    private static DeviceMapping gpt20bReconfiguration() {
        ModelContext model = ModelContext.gpt20b();
        List<DeviceId> devices = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            for (int g = 0; g < 4; g++) {
                devices.add(new DeviceId("i" + i, g));
            }
        }
        Deployment old = Deployment.packed(ParallelConfig.of(2, 2, 8, 4), devices)
                .withBatches(Map.of(0, List.of(new InflightBatch("a", 4, 512, 100)), 1, List.of(new InflightBatch("b", 4, 512, 20))));
        List<TargetFleet.Instance> fleet = new ArrayList<>(TargetFleet.uniform("i", 8, 4));
        fleet.remove(5);
        return DeviceMapper.map(model, old, new TargetFleet(ParallelConfig.of(2, 3, 4, 4), fleet));
    }

    @Test
    void gpt20bMinimumCapIsTightAndBeatsTheNaiveOrder() {
        DeviceMapping m = gpt20bReconfiguration();
        MigrationPlan naive = MigrationPlanner.plan(m, Long.MAX_VALUE);
        // with no cap Algorithm 2 keeps the sequential order
        List<ContextUnit> sorted = new ArrayList<>(naive.order());
        sorted.sort(null);
        assertEquals(sorted, naive.order());
        assertWellFormed(m, naive);
        MigrationInfeasibleException e = assertThrows(MigrationInfeasibleException.class, () -> MigrationPlanner.plan(m, 0));
        long min = e.minimumFeasibleCap();
        assertTrue(e.exact());
        assertTrue(min > 0 && min <= naive.maxPeakBufferBytes(), min + " vs naive " + naive.maxPeakBufferBytes());
        MigrationPlan tight = MigrationPlanner.plan(m, min);
        assertEquals(min, tight.maxPeakBufferBytes());
        assertWellFormed(m, tight);
        assertThrows(MigrationInfeasibleException.class, () -> MigrationPlanner.plan(m, min - 1));
    }

    @Test
    void planAndMappingSurviveJavaSerialization() throws Exception {
        DeviceMapping m = gpt20bReconfiguration();
        MigrationPlan plan = MigrationPlanner.plan(m, Long.MAX_VALUE);
        assertEquals(plan, roundTrip(plan));
        assertEquals(m, roundTrip(m));
    }

    private static Object roundTrip(Object o) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(o);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            return in.readObject();
        }
    }

    @Test
    void rejectsNegativeCap() {
        DeviceMapping m = gpt20bReconfiguration();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MigrationPlanner.plan(m, -1));
        assertTrue(e.getMessage().contains("-1"), e.getMessage());
    }
}
