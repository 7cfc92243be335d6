package io.spotserve.plan;

import static io.spotserve.plan.PlanFixtures.assertSoundAndComplete;
import static io.spotserve.plan.PlanFixtures.bruteForceVolume;
import static io.spotserve.plan.PlanFixtures.keptKv;
import static io.spotserve.plan.PlanFixtures.volume;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class DeviceMapperTest {

    private static DeviceId dev(String instance, int gpu) {
        return new DeviceId(instance, gpu);
    }

    private static List<DeviceId> singleGpuDevices(String prefix, int n) {
        List<DeviceId> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(dev(prefix + i, 0));
        }
        return out;
    }

    private static List<DeviceId> instanceDevices(String prefix, int instances, int gpus) {
        List<DeviceId> out = new ArrayList<>();
        for (int i = 0; i < instances; i++) {
            for (int g = 0; g < gpus; g++) {
                out.add(dev(prefix + i, g));
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ optimality

    @Test
    void bytesMovedEqualsBruteForceOptimumOnRandomSmallCases() {
        Random r = new Random(20240427);
        for (int trial = 0; trial < 300; trial++) {
            PlanFixtures.Case c = PlanFixtures.randomSingleGpuCase(r, 6);
            DeviceMapping m = DeviceMapper.map(c.model(), c.old(), c.target());
            long brute = bruteForceVolume(c.model(), c.old(), c.target(), m);
            assertEquals(brute, m.bytesTransferred(), "trial " + trial + ": " + c);
            assertEquals(volume(c.model(), c.old(), m.newConfig(), m.placement(), m.inheritedFrom(), keptKv(c.old(), m)),
                    m.bytesTransferred(), "trial " + trial + ": reported bytes vs oracle for its own placement");
            assertSoundAndComplete(c, m);
        }
    }

    @Test
    void neverWorseThanKeepingTheIdentityMapping() {
        Random r = new Random(7);
        for (int trial = 0; trial < 300; trial++) {
            int gpusPerInstance = new int[] {1, 2, 4}[r.nextInt(3)];
            int layers = 4 + r.nextInt(9);
            ModelContext model = PlanFixtures.randomModel(r, layers);
            ParallelConfig oc = PlanFixtures.randomConfig(r, 16, layers, 4);
            ParallelConfig nc = PlanFixtures.randomConfig(r, 16, layers, 4);
            int instances = (Math.max(oc.gpus(), nc.gpus()) + gpusPerInstance - 1) / gpusPerInstance;
            List<DeviceId> all = instanceDevices("i", instances, gpusPerInstance);
            Deployment old = Deployment.packed(oc, all.subList(0, oc.gpus())).withBatches(PlanFixtures.randomBatches(r, oc));
            TargetFleet fleet = new TargetFleet(nc, TargetFleet.uniform("i", instances, gpusPerInstance));
            DeviceMapping m = DeviceMapper.map(model, old, fleet);
            Map<Position, DeviceId> identity = new LinkedHashMap<>();
            List<Position> positions = Deployment.positions(nc);
            for (int i = 0; i < positions.size(); i++) {
                identity.put(positions.get(i), all.get(i));
            }
            long id = volume(model, old, nc, identity, m.inheritedFrom(), keptKv(old, m));
            assertTrue(m.bytesTransferred() <= id, "trial " + trial + " " + oc + "->" + nc + " G=" + gpusPerInstance
                    + ": mapper " + m.bytesTransferred() + " > identity " + id);
            assertSoundAndComplete(new PlanFixtures.Case(model, old, fleet), m);
        }
    }

    @Test
    void unchangedConfigurationMovesNothing() {
        ModelContext model = ModelContext.gpt20b();
        ParallelConfig c = ParallelConfig.of(2, 2, 8, 4);
        Deployment old = Deployment.packed(c, instanceDevices("i", 8, 4))
                .withBatches(Map.of(0, List.of(new InflightBatch("a", 4, 512, 10)), 1, List.of(new InflightBatch("b", 2, 512, 90))));
        DeviceMapping m = DeviceMapper.map(model, old, new TargetFleet(c, TargetFleet.uniform("i", 8, 4)));
        assertEquals(0, m.bytesTransferred());
        assertTrue(m.transfers().isEmpty());
        assertTrue(m.frees().isEmpty(), m.frees().toString());
        old.placement().forEach((p, d) -> assertEquals(d, m.deviceOf(p)));
    }

    @Test
    void replicatedSlicesAreSentByTheLeastLoadedReplica() {
        ModelContext model = new ModelContext("m", 8, 1000, 500, 700, 1);
        Deployment old = Deployment.packed(ParallelConfig.of(2, 1, 1, 1), singleGpuDevices("o", 2));
        TargetFleet fleet = new TargetFleet(ParallelConfig.of(4, 1, 1, 1), List.of(new TargetFleet.Instance("o0", 1),
                new TargetFleet.Instance("o1", 1), new TargetFleet.Instance("n0", 1), new TargetFleet.Instance("n1", 1)));
        DeviceMapping m = DeviceMapper.map(model, old, fleet);
        Map<String, InstanceTraffic> t = m.trafficPerInstance();
        long total = 2 * (8 * 1000 + 500 + 700);
        assertEquals(total, m.bytesMoved());
        assertEquals(total, t.get("n0").receivedBytes() + t.get("n1").receivedBytes());
        // both replicas send, and neither sends more than one slice more than the other
        long s0 = t.get("o0").sentBytes();
        long s1 = t.get("o1").sentBytes();
        assertEquals(total, s0 + s1);
        assertTrue(Math.abs(s0 - s1) <= 1000, s0 + " vs " + s1);
        assertEquals(m, DeviceMapper.map(model, old, fleet), "deterministic");
    }

    // ------------------------------------------------------------------ the paper's Fig. 4

    /**
     * Fig. 4: old (D,P,M) = (2,2,2) on u0..u7, new (2,3,1). 12 layers: old stages own 0-5 / 6-11, new
     * stages 0-3 / 4-7 / 8-11. u6 and u7 (old pipeline 1, stage 1) are under preemption notice: they may
     * send but take no position. New pipeline 0 inherits old pipeline 0's requests, 1 inherits 1's.
     */
    @Test
    void paperFigure4Example() {
        ModelContext model = new ModelContext("fig4", 12, 1_000_000, 300_000, 400_000, 100);
        List<DeviceId> u = singleGpuDevices("u", 8);
        Deployment old = Deployment.packed(ParallelConfig.of(2, 2, 2, 2), u).withBatches(Map.of(
                0, List.of(new InflightBatch("p0", 2, 64, 10)),
                1, List.of(new InflightBatch("p1", 2, 64, 30))));
        List<TargetFleet.Instance> available = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            available.add(new TargetFleet.Instance("u" + i, 1));
        }
        TargetFleet fleet = new TargetFleet(ParallelConfig.of(2, 3, 1, 2), available);
        DeviceMapping m = DeviceMapper.map(model, old, fleet);

        assertEquals(Map.of(0, List.of(0), 1, List.of(1)), m.inheritedFrom());
        assertTrue(m.droppedBatches().isEmpty());
        // u0/u1 held (pipeline 0, stage 0): layers 0-5 half each + embedding + pipeline 0's cache; they
        // overlap most with new stage 0 (layers 0-3) and then stage 1 (layers 4-5) of the inheriting pipeline 0'
        assertEquals(Set.of(u.get(0), u.get(1)), Set.of(m.deviceOf(new Position(0, 0, 0)), m.deviceOf(new Position(0, 1, 0))));
        // likewise u4/u5 (pipeline 1, stage 0) go to pipeline 1', which inherits pipeline 1's cache
        assertEquals(Set.of(u.get(4), u.get(5)), Set.of(m.deviceOf(new Position(1, 0, 0)), m.deviceOf(new Position(1, 1, 0))));
        // u2/u3 are the only available holders of layers 8-11 and the classifier: the new last stages
        assertEquals(Set.of(u.get(2), u.get(3)), Set.of(m.deviceOf(new Position(0, 2, 0)), m.deviceOf(new Position(1, 2, 0))));
        // source-only u6/u7 send pipeline 1's cache of layers 8-11 to the device of (1,2,0), receive nothing
        DeviceId last1 = m.deviceOf(new Position(1, 2, 0));
        for (DeviceId dying : List.of(u.get(6), u.get(7))) {
            assertNull(m.positionOf(dying));
            assertTrue(m.transfers().stream().noneMatch(t -> t.target().equals(dying)));
            assertTrue(m.transfers().stream().anyMatch(t -> dying.equals(t.source())
                    && t.slice().kind() == PlannedSlice.Kind.KV_CACHE && t.slice().requestGroup() == 1
                    && t.target().equals(last1)));
        }
        long brute = bruteForceVolume(model, old, fleet, m);
        assertEquals(brute, m.bytesTransferred());
        assertSoundAndComplete(new PlanFixtures.Case(model, old, fleet), m);
        // new stage 0 of pipeline 0 keeps its own half of layers 0-3 and needs the other half from its twin
        DeviceId first0 = m.deviceOf(new Position(0, 0, 0));
        DeviceId twin = first0.equals(u.get(0)) ? u.get(1) : u.get(0);
        for (int l = 0; l < 4; l++) {
            int layer = l;
            assertTrue(m.transfers().stream().anyMatch(t -> t.target().equals(first0) && twin.equals(t.source())
                    && t.slice().kind() == PlannedSlice.Kind.KV_CACHE && t.slice().layer() == layer),
                    "pipeline 0's cache of layer " + l + " comes from the only device holding it");
        }
    }

    // ------------------------------------------------------------------ capacity

    @Test
    void capacityShrinkKeepsTheMostProgressedBatches() {
        ModelContext model = new ModelContext("m", 4, 10_000, 0, 0, 10);
        ParallelConfig oc = ParallelConfig.of(4, 1, 1, 2);
        Deployment old = Deployment.packed(oc, singleGpuDevices("o", 4)).withBatches(Map.of(
                0, List.of(new InflightBatch("a", 2, 8, 5)),
                1, List.of(new InflightBatch("b", 2, 8, 40)),
                2, List.of(new InflightBatch("c", 1, 8, 12), new InflightBatch("c2", 1, 8, 2)),
                3, List.of(new InflightBatch("d", 2, 8, 30))));
        TargetFleet fleet = new TargetFleet(ParallelConfig.of(2, 1, 1, 2), List.of(
                new TargetFleet.Instance("o0", 1), new TargetFleet.Instance("o1", 1), new TargetFleet.Instance("o2", 1)));
        DeviceMapping m = DeviceMapper.map(model, old.without("o3").withBatches(old.batches()), fleet);
        // d (30 steps) lived on the lost o3: its cache is gone; then b (40) and c (12) are the most progressed
        assertEquals(Map.of(0, List.of(1), 1, List.of(2)), m.inheritedFrom());
        assertEquals(List.of("b"), m.keptBatches().get(0).stream().map(InflightBatch::id).toList());
        assertEquals(List.of("c", "c2"), m.keptBatches().get(1).stream().map(InflightBatch::id).toList());
        assertEquals(Set.of("a", "d"), new HashSet<>(m.droppedBatches().stream().map(InflightBatch::id).toList()));
        // the inheriting pipelines sit on the devices that hold their caches
        assertEquals(dev("o1", 0), m.deviceOf(new Position(0, 0, 0)));
        assertEquals(dev("o2", 0), m.deviceOf(new Position(1, 0, 0)));
        assertTrue(m.transfers().isEmpty());
        // o0 drops its weights and the cache of the dropped batch a
        assertTrue(m.frees().get(dev("o0", 0)).stream().anyMatch(s -> s.kind() == PlannedSlice.Kind.KV_CACHE));
    }

    /** D shrinks 2 → 1 but B_new = 5 leaves room: the single new pipeline resumes both old request groups. */
    @Test
    void fewerPipelinesWithRoomResumeSeveralRequestGroups() {
        ModelContext model = new ModelContext("m", 2, 10_000, 100, 100, 10);
        Deployment old = Deployment.packed(ParallelConfig.of(2, 1, 1, 3), singleGpuDevices("o", 2)).withBatches(Map.of(
                0, List.of(new InflightBatch("g0a", 2, 8, 10), new InflightBatch("g0b", 1, 8, 3)),
                1, List.of(new InflightBatch("g1", 3, 8, 7))));
        TargetFleet fleet = new TargetFleet(ParallelConfig.of(1, 1, 1, 5),
                List.of(new TargetFleet.Instance("o0", 1), new TargetFleet.Instance("o1", 1)));
        DeviceMapping m = DeviceMapper.map(model, old, fleet);
        // by progress: g0a (10) opens the pipeline, g1 (7) fits beside it (2 + 3 = 5), g0b (3) no longer fits
        assertEquals(Map.of(0, List.of(0, 1)), m.inheritedFrom());
        assertEquals(List.of("g0a", "g1"), m.keptBatches().get(0).stream().map(InflightBatch::id).toList());
        assertEquals(List.of("g0b"), m.droppedBatches().stream().map(InflightBatch::id).toList());
        // o1 holds the larger cache (3 × 15 tokens vs 2 × 18): it keeps the position and receives group 0's cache
        assertEquals(dev("o1", 0), m.deviceOf(new Position(0, 0, 0)));
        long kv0 = 2L * 18 * 10 * 2;                       // 2 requests × 18 tokens × 10 B × 2 layers
        assertEquals(kv0, m.transfers().stream().filter(t -> t.slice().kind() == PlannedSlice.Kind.KV_CACHE)
                .peek(t -> assertEquals(dev("o0", 0), t.source())).mapToLong(Transfer::bytes).sum());
        assertEquals(bruteForceVolume(model, old, fleet, m), m.bytesTransferred());
        assertSoundAndComplete(new PlanFixtures.Case(model, old, fleet), m);
    }

    @Test
    void smallerBatchLimitDropsTheLeastProgressedBatchOfAGroup() {
        ModelContext model = new ModelContext("m", 2, 10_000, 0, 0, 10);
        Deployment old = Deployment.packed(ParallelConfig.of(1, 1, 1, 4), singleGpuDevices("o", 1)).withBatches(Map.of(
                0, List.of(new InflightBatch("x", 1, 8, 3), new InflightBatch("y", 2, 8, 9), new InflightBatch("z", 1, 8, 6))));
        DeviceMapping m = DeviceMapper.map(model, old,
                new TargetFleet(ParallelConfig.of(1, 1, 1, 3), List.of(new TargetFleet.Instance("o0", 1))));
        assertEquals(List.of("y", "z"), m.keptBatches().get(0).stream().map(InflightBatch::id).toList());
        assertEquals(List.of("x"), m.droppedBatches().stream().map(InflightBatch::id).toList());
        // the retained slice frees exactly the dropped batch's cache: 1 request × 11 tokens × 10 B × 2 layers
        long freedKv = m.frees().get(dev("o0", 0)).stream().filter(s -> s.kind() == PlannedSlice.Kind.KV_CACHE)
                .mapToLong(PlannedSlice::bytes).sum();
        assertEquals(2 * 11 * 10, freedKv);
    }

    // ------------------------------------------------------------------ hierarchical matching

    /**
     * Brute force over instance→slot assignments (slot = gcd(M, GPUs per instance) shards, one slot per
     * instance, so exact only when that is all an instance can host), each slot's GPUs tried in every order
     * (the volume is a sum over positions, so each (instance, slot) pair is minimised once).
     */
    private static long hierarchicalBruteForce(ModelContext model, Deployment old, TargetFleet fleet, DeviceMapping m) {
        ParallelConfig nc = fleet.config();
        List<TargetFleet.Instance> inst = fleet.instances();
        int c = ShardRange.gcd(nc.tensorShards(), inst.get(0).gpus());
        int slots = nc.gpus() / c;
        List<Position> positions = Deployment.positions(nc);
        long[] kept = keptKv(old, m);
        long[][] table = new long[inst.size()][slots];
        for (int i = 0; i < inst.size(); i++) {
            List<DeviceId> gpus = new ArrayList<>();
            for (int g = 0; g < inst.get(i).gpus(); g++) {
                gpus.add(dev(inst.get(i).name(), g));
            }
            for (int s = 0; s < slots; s++) {
                List<Position> mine = positions.subList(s * c, s * c + c);
                long[] best = {Long.MAX_VALUE};
                PlanFixtures.permute(gpus, mine, 0, new DeviceId[c], new boolean[gpus.size()], a -> {
                    Map<Position, DeviceId> p = new LinkedHashMap<>();
                    for (int k = 0; k < c; k++) {
                        p.put(mine.get(k), a[k]);
                    }
                    best[0] = Math.min(best[0], volume(model, old, nc, p, m.inheritedFrom(), kept));
                });
                table[i][s] = best[0];
            }
        }
        long[] best = {Long.MAX_VALUE};
        int[] pick = new int[slots];
        assignSlots(0, slots, inst.size(), new boolean[inst.size()], pick, () -> {
            long sum = 0;
            for (int s = 0; s < slots; s++) {
                sum += table[pick[s]][s];
            }
            best[0] = Math.min(best[0], sum);
        });
        return best[0];
    }

    private static void assignSlots(int s, int slots, int n, boolean[] used, int[] pick, Runnable leaf) {
        if (s == slots) {
            leaf.run();
            return;
        }
        for (int i = 0; i < n; i++) {
            if (!used[i]) {
                used[i] = true;
                pick[s] = i;
                assignSlots(s + 1, slots, n, used, pick, leaf);
                used[i] = false;
            }
        }
    }

    private static void assertTensorGroupsInsideInstances(DeviceMapping m) {
        ParallelConfig nc = m.newConfig();
        for (int d = 0; d < nc.dataParallel(); d++) {
            for (int p = 0; p < nc.pipelineStages(); p++) {
                Set<String> inst = new HashSet<>();
                for (int s = 0; s < nc.tensorShards(); s++) {
                    inst.add(m.deviceOf(new Position(d, p, s)).instance());
                }
                assertEquals(1, inst.size(), "stage (" + d + "," + p + ") spans " + inst);
            }
        }
    }

    /** 3 four-GPU instances (1,3,4) → (1,2,4) after the middle instance is lost (GPT-20B, 44 layers). */
    @Test
    void hierarchicalOneInstanceLost() {
        ModelContext model = ModelContext.gpt20b();
        Deployment old = Deployment.packed(ParallelConfig.of(1, 3, 4, 1), instanceDevices("i", 3, 4))
                .withBatches(Map.of(0, List.of(new InflightBatch("r", 1, 512, 64)))).without("i1");
        TargetFleet fleet = new TargetFleet(ParallelConfig.of(1, 2, 4, 1),
                List.of(new TargetFleet.Instance("i0", 4), new TargetFleet.Instance("i2", 4)));
        DeviceMapping m = DeviceMapper.map(model, old, fleet);
        assertTensorGroupsInsideInstances(m);
        // old stage 0 (layers 0-13) stays on i0 as new stage 0 (0-21); old stage 2 (29-43) on i2 as new stage 1 (22-43)
        for (int s = 0; s < 4; s++) {
            assertEquals(dev("i0", s), m.deviceOf(new Position(0, 0, s)), "shard " + s + " keeps its slice");
            assertEquals(dev("i2", s), m.deviceOf(new Position(0, 1, s)));
        }
        // the pipeline lost a stage: its cache is gone, the request is recomputed
        assertEquals(List.of("r"), m.droppedBatches().stream().map(InflightBatch::id).toList());
        // layers 14-28 were only on i1: reloaded from the checkpoint, one shard-slice per GPU
        long reloaded = m.transfers().stream().filter(Transfer::isReload).mapToLong(Transfer::bytes).sum();
        assertEquals(15 * model.layerWeightBytes(), reloaded);
        assertTrue(m.transfers().stream().filter(Transfer::isReload).allMatch(t -> t.slice().layer() >= 14 && t.slice().layer() <= 28));
        assertEquals(hierarchicalBruteForce(model, old, fleet, m), m.bytesTransferred());
        assertSoundAndComplete(new PlanFixtures.Case(model, old, fleet), m);
    }

    /** §6.2 GPT-20B narrative: (2,2,8) on 8 instances, one preempted, → (2,3,4) on the 7 survivors. */
    @Test
    void hierarchicalGpt20bAfterOnePreemption() {
        ModelContext model = ModelContext.gpt20b();
        Deployment old = Deployment.packed(ParallelConfig.of(2, 2, 8, 4), instanceDevices("i", 8, 4))
                .withBatches(Map.of(0, List.of(new InflightBatch("a", 4, 512, 100)), 1, List.of(new InflightBatch("b", 4, 512, 20))));
        // i5 (pipeline 1, stage 0, shards 4-7) is under notice: source only
        TargetFleet fleet = new TargetFleet(ParallelConfig.of(2, 3, 4, 4), List.of(
                new TargetFleet.Instance("i0", 4), new TargetFleet.Instance("i1", 4), new TargetFleet.Instance("i2", 4),
                new TargetFleet.Instance("i3", 4), new TargetFleet.Instance("i4", 4), new TargetFleet.Instance("i6", 4),
                new TargetFleet.Instance("i7", 4)));
        DeviceMapping m = DeviceMapper.map(model, old, fleet);
        assertTensorGroupsInsideInstances(m);
        assertEquals(Map.of(0, List.of(0), 1, List.of(1)), m.inheritedFrom());
        assertEquals(hierarchicalBruteForce(model, old, fleet, m), m.bytesTransferred());
        assertSoundAndComplete(new PlanFixtures.Case(model, old, fleet), m);
        assertTrue(m.transfers().stream().anyMatch(t -> t.source() != null && t.source().instance().equals("i5")),
                "the instance under notice still sends");
        assertNotEquals(0, m.bytesReused());
        Map<String, InstanceTraffic> traffic = m.trafficPerInstance();
        assertEquals(m.bytesMoved(), traffic.values().stream().mapToLong(t -> t.receivedBytes() + t.intraInstanceBytes()).sum());
        assertEquals(traffic.values().stream().mapToLong(InstanceTraffic::sentBytes).sum(),
                traffic.values().stream().mapToLong(InstanceTraffic::receivedBytes).sum());
        assertEquals(0, traffic.get("i5").receivedBytes());
    }

    @Test
    void multiGpuRandomCasesAreSoundAndExactWhenEachInstanceHostsOneSlot() {
        Random r = new Random(99);
        int exactChecked = 0;
        for (int trial = 0; trial < 200; trial++) {
            PlanFixtures.Case c = PlanFixtures.randomMultiGpuCase(r);
            DeviceMapping m = DeviceMapper.map(c.model(), c.old(), c.target());
            assertSoundAndComplete(c, m);
            int gpus = c.target().instances().get(0).gpus();
            int width = ShardRange.gcd(m.newConfig().tensorShards(), gpus);
            for (int d = 0; d < m.newConfig().dataParallel(); d++) {
                for (int p = 0; p < m.newConfig().pipelineStages(); p++) {
                    for (int s = 0; s < m.newConfig().tensorShards(); s += width) {
                        Set<String> inst = new HashSet<>();
                        for (int k = s; k < s + width; k++) {
                            inst.add(m.deviceOf(new Position(d, p, k)).instance());
                        }
                        assertEquals(1, inst.size(), "trial " + trial + ": tensor group split over " + inst);
                    }
                }
            }
            if (width == gpus && c.target().instances().size() <= 8) {
                assertEquals(hierarchicalBruteForce(c.model(), c.old(), c.target(), m), m.bytesTransferred(), "trial " + trial);
                exactChecked++;
            }
        }
        assertTrue(exactChecked > 40, "cases checked against brute force: " + exactChecked);
    }

    @Test
    void newEmptyInstancesTakeTheLeftovers() {
        ModelContext model = ModelContext.opt6_7b();
        Deployment old = Deployment.packed(ParallelConfig.of(2, 1, 4, 2), instanceDevices("i", 2, 4));
        TargetFleet fleet = new TargetFleet(ParallelConfig.of(3, 1, 4, 2), List.of(
                new TargetFleet.Instance("new", 4), new TargetFleet.Instance("i0", 4), new TargetFleet.Instance("i1", 4)));
        DeviceMapping m = DeviceMapper.map(model, old, fleet);
        assertTensorGroupsInsideInstances(m);
        Set<String> pipelines2 = new HashSet<>();
        for (int s = 0; s < 4; s++) {
            pipelines2.add(m.deviceOf(new Position(2, 0, s)).instance());
        }
        assertEquals(Set.of("new"), pipelines2);
        assertEquals(model.weightBytesPerPosition(ParallelConfig.of(3, 1, 4, 2), new Position(2, 0, 0)) * 4, m.bytesMoved());
        assertSoundAndComplete(new PlanFixtures.Case(model, old, fleet), m);
    }

    // ------------------------------------------------------------------ bad input

    @Test
    void rejectsBadInputWithMessages() {
        ModelContext model = new ModelContext("m", 4, 100, 0, 0, 1);
        Deployment old = Deployment.packed(ParallelConfig.of(1, 2, 1, 1), singleGpuDevices("o", 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new TargetFleet(ParallelConfig.of(1, 3, 1, 1), List.of(new TargetFleet.Instance("o0", 1))));
        assertTrue(e.getMessage().contains("needs 3 GPUs") && e.getMessage().contains("offer 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DeviceMapper.map(model, old,
                new TargetFleet(ParallelConfig.of(1, 5, 1, 1), TargetFleet.uniform("n", 5, 1))));
        assertTrue(e.getMessage().contains("P=5") && e.getMessage().contains("4 layers"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Deployment(ParallelConfig.of(1, 2, 1, 1),
                Map.of(new Position(0, 0, 0), dev("a", 0), new Position(0, 1, 0), dev("a", 0)), Map.of()));
        assertTrue(e.getMessage().contains("a/0 holds two old positions"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Deployment(ParallelConfig.of(1, 2, 1, 1),
                Map.of(new Position(0, 2, 0), dev("a", 0)), Map.of()));
        assertTrue(e.getMessage().contains("(0,2,0) does not exist"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DeviceMapper.map(model,
                Deployment.packed(ParallelConfig.of(1, 1, 1, 1), List.of(dev("o0", 3))),
                new TargetFleet(ParallelConfig.of(1, 1, 1, 1), List.of(new TargetFleet.Instance("o0", 2)))));
        assertTrue(e.getMessage().contains("has only 2 GPUs"), e.getMessage());
    }
}
