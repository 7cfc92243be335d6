package io.spotserve.engine;

import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.Deployment;
import io.spotserve.plan.DeviceId;
import io.spotserve.plan.DeviceMapper;
import io.spotserve.plan.DeviceMapping;
import io.spotserve.plan.InflightBatch;
import io.spotserve.plan.MigrationPlanner;
import io.spotserve.plan.ModelContext;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.Position;
import io.spotserve.plan.TargetFleet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.stream.LongStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Property test of a reparallelization on real arenas (SpotServe §3.3–§3.4), against a brute-force oracle: random
 * old (D, P, M) on random devices of 2-GPU instances, requests with filled KV caches, random instance fates (lost
 * outright, under notice = source only, surviving, fresh), a random new (D, P, M); then the device mapper, the
 * migration planner's order and {@link ContextMigration}. Every new pipeline must be complete, every request the
 * mapper kept must continue with next-token logits equal (to float rounding) to the same tokens prefilled on a
 * freshly loaded pipeline of the new layout, the bytes moved / reloaded must stay within the mapper's prediction
 * (plus the replicated-norm slack), and closing everything must leave every device arena empty (no leaked slice).
 */
class ContextMigrationPropertyTest {
    private static final LlamaConfig C = CHECKPOINT.config();
    private static final int[] STAGES = {1, 2, 3, 5};
    private static final int[] SHARDS = {1, 2, 4};
    private static final long CAPACITY = 32L << 20;

    private Executor executor;

    @BeforeEach
    void setUp() {
        executor = EngineFixtures.executor();
    }

    @AfterEach
    void tearDown() {
        executor.close();
    }

    static LongStream seeds() {
        return LongStream.rangeClosed(1, 40);
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void anyReparallelizationKeepsContextExactAndLeaksNothing(long seed) {
        MeteredExecutor staged = new MeteredExecutor(this.executor, false);
        ContextMigration.Result one = migrate(seed, staged);
        // the same reparallelization with an executor that batches transfers: pieces from other instances go straight
        // from their old positions, several units per call; the same bytes move, and no device ever holds more
        MeteredExecutor batched = new MeteredExecutor(this.executor, true);
        ContextMigration.Result two = migrate(seed, batched);
        String what = "seed " + seed;
        assertEquals(one.bytesMoved(), two.bytesMoved(), what);
        assertEquals(one.bytesKept(), two.bytesKept(), what);
        assertEquals(one.bytesReloaded(), two.bytesReloaded(), what);
        assertEquals(one.resumed(), two.resumed(), what);
        assertEquals(staged.peaks().keySet(), batched.peaks().keySet(), what);
        for (var e : batched.peaks().entrySet()) {
            long before = staged.peaks().get(e.getKey());
            assertTrue(e.getValue() <= before, "device " + e.getKey() + " peaked at " + e.getValue()
                    + " bytes with batched transfers, " + before + " staged one by one: " + what);
        }
        assertTrue(staged.transferCalls().isEmpty(), what);
        // and sent after every unit (the bound a clock that decodes between units would need at tiny sizes): the same
        // bytes, no higher peaks, at least as many calls
        MeteredExecutor unitByUnit = new MeteredExecutor(this.executor, true);
        ContextMigration.Result three = migrate(seed, unitByUnit, 1);
        assertEquals(one.bytesMoved(), three.bytesMoved(), what);
        assertEquals(one.bytesReloaded(), three.bytesReloaded(), what);
        for (var e : unitByUnit.peaks().entrySet()) {
            assertTrue(e.getValue() <= staged.peaks().get(e.getKey()), "device " + e.getKey() + ": " + what);
        }
        assertTrue(unitByUnit.transferCalls().size() >= batched.transferCalls().size(), what);
        boundedCalls += unitByUnit.transferCalls().size();
        unboundedCalls += batched.transferCalls().size();
        if (two.bytesMoved() > 0) {
            // something crossed devices; what crossed instances went in batches
            batchedSlices += batched.transferCalls().stream().mapToInt(Integer::intValue).sum();
            batchedCalls += batched.transferCalls().size();
            batchedKvSlices += batched.kvSlicesTransferred();
        }
    }

    private static int boundedCalls;
    private static int unboundedCalls;
    private static int batchedSlices;
    private static int batchedCalls;
    private static int batchedKvSlices;

    @org.junit.jupiter.api.AfterAll
    static void someTransfersCarriedSeveralSlicesAndSomeKvCachesWentDirect() {
        assertTrue(batchedSlices > batchedCalls, batchedSlices + " slices in " + batchedCalls
                + " transferAll calls over all seeds: never more than one per call");
        assertTrue(batchedKvSlices > 0, "no KV cache went straight from its old sequence over all seeds");
        assertTrue(boundedCalls > unboundedCalls, "a 1-byte batch bound sent no more calls (" + boundedCalls
                + ") than the default (" + unboundedCalls + "): the bound does nothing");
    }

    /** One random reparallelization on {@code executor}; checks everything a migration must hold and returns it. */
    private ContextMigration.Result migrate(long seed, MeteredExecutor executor) {
        return migrate(seed, executor, ContextMigration.DIRECT_BATCH_BYTES);
    }

    /** {@link #migrate(long, MeteredExecutor)} sending queued direct pieces once they reach {@code directBatchBytes}. */
    private ContextMigration.Result migrate(long seed, MeteredExecutor executor, long directBatchBytes) {
        Random rnd = new Random(seed);
        int instanceCount = 4;
        Map<DeviceId, Device> devices = new LinkedHashMap<>();
        for (int i = 0; i < instanceCount; i++) {
            for (int g = 0; g < 2; g++) {
                DeviceId id = new DeviceId("i" + i, g);
                devices.put(id, executor.createDevice(id, CAPACITY));
            }
        }
        // old deployment: (D, P, M) on a shuffled device list
        ParallelConfig oc = randomConfig(rnd, devices.size());
        List<Device> shuffled = new ArrayList<>(devices.values());
        Collections.shuffle(shuffled, rnd);
        ShardLayout ol = ShardLayout.split(C, oc.pipelineStages(), oc.tensorShards());
        List<PipelineSlot> old = new ArrayList<>();
        long ids = 1;
        Map<Long, int[]> tokensOf = new LinkedHashMap<>();
        for (int d = 0; d < oc.dataParallel(); d++) {
            List<Device> devs = shuffled.subList(d * ol.stages() * ol.shards(), (d + 1) * ol.stages() * ol.shards());
            Pipeline p = executor.createPipeline(ol, devs, 16);
            p.loadWeights(CHECKPOINT);
            PipelineSlot slot = new PipelineSlot(d, p, devs);
            for (int k = rnd.nextInt(3); k > 0; k--) {
                int[] prompt = randomTokens(rnd, 3 + rnd.nextInt(8));
                LiveRequest r = request(ids++, prompt);
                p.openSequence(r.id, 64);
                p.prefill(r.id, prompt, 0);
                r.slot = slot;
                slot.active.add(r);
                tokensOf.put(r.id, prompt);
            }
            old.add(slot);
        }
        // fates: 0 lost, 1 under notice (source only), else survives; plus maybe a fresh instance
        List<TargetFleet.Instance> fleet = new ArrayList<>();
        Set<String> lost = new HashSet<>();
        for (int i = 0; i < instanceCount; i++) {
            int fate = rnd.nextInt(5);
            if (fate == 0) {
                lost.add("i" + i);
            } else if (fate != 1) {
                fleet.add(new TargetFleet.Instance("i" + i, 2));
            }
        }
        if (fleet.isEmpty() || rnd.nextBoolean()) {
            for (int g = 0; g < 2; g++) {
                DeviceId id = new DeviceId("fresh", g);
                devices.put(id, executor.createDevice(id, CAPACITY));
            }
            fleet.add(new TargetFleet.Instance("fresh", 2));
        }
        List<LiveRequest> droppedByLoss = new ArrayList<>();
        for (PipelineSlot s : old) {
            for (int st = 0; st < ol.stages(); st++) {
                for (int m = 0; m < ol.shards(); m++) {
                    if (lost.contains(s.pipeline.device(st, m).id().instance()) && s.lost.add(st * ol.shards() + m)) {
                        for (ContextSlice w : ol.weightSlices(st, m)) {
                            s.pipeline.releaseSlice(st, m, w);
                        }
                    }
                }
            }
            if (s.broken()) { // as the engine does: an incomplete cache is dropped
                for (LiveRequest r : s.active) {
                    s.pipeline.closeSequence(r.id);
                    droppedByLoss.add(r);
                }
                s.active.clear();
            }
        }
        for (String i : lost) {
            for (int g = 0; g < 2; g++) {
                Device d = devices.remove(new DeviceId(i, g));
                assertEquals(0, d.usedBytes(), "a lost device was emptied before it is destroyed");
                executor.destroyDevice(d);
            }
        }
        int fleetGpus = fleet.stream().mapToInt(TargetFleet.Instance::gpus).sum();
        ParallelConfig nc = randomConfig(rnd, fleetGpus);
        // the engine's view of the old deployment, then the planning core
        Map<Position, DeviceId> placement = new LinkedHashMap<>();
        Map<Integer, List<InflightBatch>> batches = new LinkedHashMap<>();
        Map<String, LiveRequest> byBatch = new LinkedHashMap<>();
        for (int i = 0; i < old.size(); i++) {
            PipelineSlot s = old.get(i);
            for (int st = 0; st < ol.stages(); st++) {
                for (int m = 0; m < ol.shards(); m++) {
                    if (s.alive(st, m)) {
                        placement.put(new Position(i, st, m), s.pipeline.device(st, m).id());
                    }
                }
            }
            List<InflightBatch> mine = new ArrayList<>();
            for (LiveRequest r : s.active) {
                mine.add(new InflightBatch("r" + r.id, 1, s.pipeline.length(r.id), 0));
                byBatch.put("r" + r.id, r);
            }
            if (!mine.isEmpty()) {
                batches.put(i, mine);
            }
        }
        executor.resetPeaks();
        DeviceMapping mapping = DeviceMapper.map(ModelContext.of("stories260K", C), new Deployment(oc, placement, batches),
                new TargetFleet(nc, fleet));
        List<io.spotserve.plan.ContextUnit> order = MigrationPlanner.plan(mapping, Long.MAX_VALUE).order();
        int[] next = {100};
        KvParking parking = new KvParking(C, 1L << 30);
        ContextMigration.Result result = new ContextMigration(executor, io.spotserve.exec.WeightSource.of(CHECKPOINT), old, mapping, devices, parking,
                byBatch).directBatchBytes(directBatchBytes).runAll(order, 16, () -> next[0]++);
        String what = "seed " + seed + ": " + oc + " -> " + nc + ", lost " + lost + ", fleet " + fleet;

        assertEquals(nc.dataParallel(), result.slots().size(), what);
        int kept = mapping.keptBatches().values().stream().mapToInt(List::size).sum();
        int placed = result.slots().stream().mapToInt(sl -> sl.active.size()).sum();
        assertEquals(kept, placed, "every batch the mapper kept continues with its cache: " + what);
        assertTrue(result.resumed() <= placed, what);
        assertEquals(tokensOf.size(), placed + result.dropped().size() + droppedByLoss.size(), what);
        for (PipelineSlot s : result.slots()) {
            assertTrue(s.pipeline.isReady(), "new pipeline complete: " + what);
            for (LiveRequest r : s.active) {
                checkNextLogits(s.pipeline, r.id, tokensOf.get(r.id), what);
            }
        }
        // requests the new configuration had no room for parked their caches in host memory: restored into any new
        // pipeline later, they continue exactly as well
        for (LiveRequest r : result.dropped()) {
            assertTrue(r.parked != null, "a dropped request from an intact pipeline is parked: " + what);
            Pipeline target = result.slots().get((int) (r.id % result.slots().size())).pipeline;
            target.openSequence(r.id, 64);
            assertTrue(parking.restore(r, target), "parked cache restores into " + target.layout() + ": " + what);
            checkNextLogits(target, r.id, tokensOf.get(r.id), what);
            target.closeSequence(r.id);
        }
        assertEquals(0, parking.usedBytes(), "restored caches leave host memory: " + what);
        long slack = EngineFixtures.replicatedNormSlack(oc.tensorShards(), nc.tensorShards(), nc.dataParallel())
                + (long) nc.dataParallel() * nc.tensorShards() * C.dim() * Float.BYTES; // + the final norm per shard
        assertTrue(result.bytesMoved() <= mapping.bytesMoved() + slack,
                result.bytesMoved() + " moved > mapper " + mapping.bytesMoved() + " + " + slack + ": " + what);
        assertTrue(result.bytesReloaded() <= mapping.bytesReloaded() + slack,
                result.bytesReloaded() + " reloaded > mapper " + mapping.bytesReloaded() + " + " + slack + ": " + what);
        for (PipelineSlot s : result.slots()) {
            s.pipeline.close();
        }
        for (PipelineSlot s : old) {
            s.pipeline.close(); // already closed unless reused: close is idempotent
        }
        for (Device d : devices.values()) {
            assertEquals(0, d.usedBytes(), "device " + d.id() + " holds leaked bytes: " + what);
            executor.destroyDevice(d);
        }
        return result;
    }

    /** The next token's logits after migration equal those of a fresh pipeline of the same layout (float rounding). */
    private void checkNextLogits(Pipeline migrated, long seq, int[] prompt, String what) {
        int filled = migrated.length(seq);
        assertEquals(prompt.length, filled, "KV length after migration: " + what);
        ShardLayout l = migrated.layout();
        List<Device> fresh = new ArrayList<>();
        for (int i = 0; i < l.stages() * l.shards(); i++) {
            fresh.add(executor.createDevice(new DeviceId("oracle-" + seq, i), CAPACITY));
        }
        Pipeline oracle = executor.createPipeline(l, fresh, 16);
        try {
            oracle.loadWeights(CHECKPOINT);
            oracle.openSequence(seq, 64);
            oracle.prefill(seq, prompt, 0);
            int token = 1 + (int) (seq % (C.vocabSize() - 1));
            float[] want = oracle.decode(new long[] {seq}, new int[] {token}, new int[] {filled})[0];
            float[] got = migrated.decode(new long[] {seq}, new int[] {token}, new int[] {filled})[0];
            for (int v = 0; v < want.length; v++) {
                assertTrue(Math.abs(want[v] - got[v]) <= 1e-3f * Math.max(1f, Math.abs(want[v])),
                        "logit " + v + ": migrated " + got[v] + " vs fresh " + want[v] + ": " + what);
            }
        } finally {
            oracle.close();
            for (Device d : fresh) {
                executor.destroyDevice(d);
            }
        }
    }

    private static ParallelConfig randomConfig(Random rnd, int gpus) {
        while (true) {
            int p = STAGES[rnd.nextInt(STAGES.length)];
            int m = SHARDS[rnd.nextInt(SHARDS.length)];
            if (p * m <= gpus) {
                return ParallelConfig.of(1 + rnd.nextInt(Math.min(3, gpus / (p * m))), p, m, 4);
            }
        }
    }

    private static int[] randomTokens(Random rnd, int n) {
        int[] t = new int[n];
        t[0] = 1; // BOS
        for (int i = 1; i < n; i++) {
            t[i] = 2 + rnd.nextInt(C.vocabSize() - 2);
        }
        return t;
    }

    private static LiveRequest request(long id, int[] prompt) {
        GenerationRequest g = GenerationRequest.builder().promptTokens(prompt).maxNewTokens(8).build();
        return new LiveRequest(id, g, prompt, TOKENIZER.streamDecoder(prompt[prompt.length - 1]),
                new CompletableFuture<>(), null, Duration.ZERO);
    }
}
