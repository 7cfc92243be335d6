package io.spotserve.engine;

import io.spotserve.clock.VirtualClock;
import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ShardLayout;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaConfig;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Reconfigurations really move context between device arenas (SpotServe §3.3–§3.4): weights a device already
 * holds stay there, only what the device mapper says moves, a preemption in the middle of a migration falls back to
 * the next replica or the checkpoint, and a device sized for the new configuration alone is enough because every
 * unit leaves its old position before it lands in the new one. Outputs stay token-identical to solo runs throughout.
 */
class ContextMigrationTest {
    private static final LlamaConfig C = CHECKPOINT.config();
    private static final InstanceType ONE_GPU = new InstanceType("local.1x", 1, 32L << 20, 1.9, InstanceType.Market.SPOT);

    private Executor executor;

    @BeforeEach
    void setUp() {
        executor = EngineFixtures.executor();
    }

    @AfterEach
    void tearDown() {
        executor.close();
    }

    private static long weights(int stages, int shards, int stage, int shard) {
        return ShardLayout.split(C, stages, shards).weightBytes(stage, shard);
    }

    private static void checkOutputs(List<GenerationRequest> requests, List<CompletableFuture<Completion>> futures) {
        for (int i = 0; i < requests.size(); i++) {
            assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).join().tokens(), "request " + i);
        }
    }

    private static Reconfiguration byReason(EngineMetrics m, String reason) {
        return m.reconfigurations().stream().filter(r -> r.reason().contains(reason)).findFirst()
                .orElseThrow(() -> new AssertionError("no reconfiguration for " + reason + ": " + m.reconfigurations()));
    }

    @Test
    void survivingReplicasKeepTheirWeightsInPlace() {
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, ONE_GPU.on(InstanceType.Market.ON_DEMAND, 3.9));
        Instance a = provider.add(ONE_GPU);
        provider.add(ONE_GPU);
        provider.add(ONE_GPU);
        // 6 requests, 2 per pipeline: the two survivors (B = 4 each) can take over all of them
        List<GenerationRequest> requests = EngineFixtures.requests(11, 6, 60, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).parallelism(1, 1).maxBatch(4).build()) {
            // short requests: the notice comes from the engine thread while they run (a polling test thread can miss them)
            EngineFixtures.submitThen(engine, requests, futures, 2, () -> provider.deliver(
                    new InstanceEvent.PreemptionNotice(a.id(), clock.now(), clock.now().plusMillis(30))));
            checkOutputs(requests, futures);
            EngineMetrics m = engine.metrics();
            Reconfiguration off = byReason(m, "notice " + a.id());
            long full = weights(1, 1, 0, 0);
            assertEquals(0, off.bytesLoaded(), off.toString());
            assertTrue(off.bytesKept() >= 2 * full, "both survivors keep their whole model: " + off);
            assertEquals(0, off.bytesMigrated() % C.kvBytesPerPosition(), "only KV caches move: " + off);
            assertEquals(off.plannedBytesMoved(), off.bytesMigrated(), off.toString()); // M = 1: exact byte model
            assertEquals(0, off.interruptedRequests(), off.toString());
        }
    }

    @Test
    void aSourceDyingMidMigrationIsReplacedByTheCheckpointAndRequestsStillComplete() {
        // 1 MB/s: moving a whole model (~1.2 MB) to a new instance takes over a second of virtual time; steps take 1 ms
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1), Duration.ZERO, 1_000_000);
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, ONE_GPU.on(InstanceType.Market.ON_DEMAND, 3.9));
        Instance a = provider.add(ONE_GPU);
        List<GenerationRequest> requests = EngineFixtures.requests(12, 6, 400, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = startRunning(provider, clock, 1, 1, 4, requests, futures)) {
            Duration t = clock.now().plusMillis(5);
            // a dies without notice while its weights are on the way to b (the death is posted first, so it is
            // already queued when the migration starts, however the two threads are scheduled)
            provider.deliver(new InstanceEvent.Terminated(a.id(), t.plusMillis(400)));
            provider.deliver(new InstanceEvent.Acquired(new Instance("b", ONE_GPU), t));
            checkOutputs(requests, futures);
            EngineMetrics m = engine.metrics();
            Reconfiguration grow = byReason(m, "acquired b");
            assertTrue(grow.bytesMigrated() > 0, "some units left a before it died: " + grow);
            assertTrue(grow.bytesLoaded() > 0, "the rest came from the checkpoint: " + grow);
            assertEquals(0, grow.plannedBytesReloaded(), "the mapper planned no reload: " + grow);
            assertTrue(grow.bytesMigrated() + grow.bytesLoaded() >= weights(1, 1, 0, 0), grow.toString());
            assertTrue(grow.pause().compareTo(Duration.ofMillis(400)) > 0, "the migration spans the death: " + grow);
            Reconfiguration after = byReason(m, "terminated " + a.id());
            assertEquals(0, after.bytesLoaded(), "b is complete after the migration: " + after);
            assertTrue(m.restarts() > 0, "requests left on a recompute: " + m);
        }
    }

    @Test
    void devicesSizedForTheNewConfigurationSufficeBecauseUnitsLeaveBeforeTheyArrive() {
        int batch = 2;
        ShardLayout one = ShardLayout.split(C, 1, 1);
        long capacity = one.weightBytes(0, 0) + (long) batch * C.seqLen() * one.kvBytesPerPosition(0, 0);
        InstanceType tight = new InstanceType("local.tight", 1, capacity, 1.9, InstanceType.Market.SPOT);
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, tight.on(InstanceType.Market.ON_DEMAND, 3.9));
        Instance x = provider.add(tight);
        Instance y = provider.add(tight);
        List<GenerationRequest> requests = EngineFixtures.requests(13, 4, 400, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).parallelism(2, 1).maxBatch(batch).build()) {
            // the notice comes from the engine thread between steps: a test thread descheduled between reading the
            // clock and posting could let the 20 ms grace pass first (CI, 2 cores: handled at 22 ms, a cold start)
            EngineFixtures.submitThen(engine, requests, futures, 2, () -> provider.deliver(
                    new InstanceEvent.PreemptionNotice(y.id(), clock.now(), clock.now().plusMillis(20))));
            checkOutputs(requests, futures);
            EngineMetrics m = engine.metrics();
            Reconfiguration shrink = byReason(m, "notice " + y.id());
            assertTrue(shrink.to().startsWith("[P1M1@[" + x.id() + "]"), shrink.toString());
            assertEquals(0, shrink.bytesLoaded(), "no cold start: " + shrink);
            // x keeps the stage it had, receives the other one from y: the whole model without the checkpoint
            assertTrue(shrink.bytesKept() >= Math.min(weights(2, 1, 0, 0), weights(2, 1, 1, 0)), shrink.toString());
            assertTrue(shrink.bytesKept() + shrink.bytesMigrated() >= weights(1, 1, 0, 0), shrink.toString());
            assertEquals(shrink.plannedBytesMoved(), shrink.bytesMigrated(), shrink.toString());
            assertTrue(shrink.resumedRequests() > 0, shrink.toString());
        }
    }

    @ParameterizedTest(name = "host KV budget {0} B")
    @ValueSource(longs = {256L << 20, 0})
    void losingEverySpotInstanceParksKvCachesInHostMemoryUntilAnInstanceReturns(long budget) {
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, EngineFixtures.ON_DEMAND);
        Instance a = provider.add(EngineFixtures.SPOT);
        // long requests (400 tokens): they are still running when the test thread delivers the notice
        List<GenerationRequest> requests = EngineFixtures.requests(14, 4, 400, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).parallelism(1, 2).maxBatch(4).hostKvBudget(budget).build()) {
            PreemptionTest.Recorder first = new PreemptionTest.Recorder();
            for (GenerationRequest r : requests) {
                futures.add(futures.isEmpty() ? engine.submit(r, first) : engine.submit(r));
            }
            PreemptionTest.awaitRunning(engine, requests.size());
            // the only instance leaves after a 50 ms notice; another one arrives only 300 ms later (posted between
            // two steps from the engine thread, so the grace cannot pass before the engine sees the notice)
            first.atNextToken(() -> {
                Duration now = clock.now();
                provider.deliver(new InstanceEvent.Acquired(new Instance("later", EngineFixtures.SPOT), now.plusMillis(350)));
                provider.deliver(new InstanceEvent.PreemptionNotice(a.id(), now, now.plusMillis(50)));
            });
            checkOutputs(requests, futures);
            EngineMetrics m = engine.metrics();
            // the reconfiguration records account for every parked cache: the change onto "later" counts the requests
            // parked on the doomed pipeline (no configuration fitted then, so no record was made at the notice)
            int parked = 0;
            int resumed = 0;
            for (Reconfiguration r : m.reconfigurations()) {
                parked += r.parkedRequests();
                resumed += r.resumedRequests();
            }
            if (budget > 0) {
                // those still running at the notice (some stop early at BOS) resumed with their parked caches
                assertEquals(0, m.restarts(), "every request resumed with its parked cache: " + m);
                assertTrue(m.migrations() >= 1, m.toString());
                assertTrue(parked >= 1, "the records show the parked caches: " + m.reconfigurations());
                assertEquals(m.migrations(), parked + resumed, "each resumed request is parked or migrated in a record: "
                        + m.reconfigurations());
            } else {
                assertTrue(m.restarts() >= 1 && m.migrations() == 0, "without host memory they recompute: " + m);
                assertEquals(0, parked, m.reconfigurations().toString());
            }
        }
    }

    /** An engine on {@code provider} serving P x M pipelines, with {@code requests} submitted and some running. */
    private ServingEngine startRunning(LocalInstanceProvider provider, VirtualClock clock, int stages, int shards,
                                       int batch, List<GenerationRequest> requests,
                                       List<CompletableFuture<Completion>> futures) {
        ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).parallelism(stages, shards).maxBatch(batch).build();
        for (GenerationRequest r : requests) {
            futures.add(engine.submit(r));
        }
        awaitRunning(engine);
        return engine;
    }

    private static void awaitRunning(ServingEngine engine) {
        long until = System.nanoTime() + 30_000_000_000L;
        while (engine.metrics().running() == 0) {
            if (System.nanoTime() > until) {
                throw new AssertionError("no request started: " + engine.metrics());
            }
            Thread.onSpinWait();
        }
    }
}
