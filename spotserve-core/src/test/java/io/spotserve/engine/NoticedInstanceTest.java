package io.spotserve.engine;

import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.ON_DEMAND;
import static io.spotserve.engine.EngineFixtures.SPOT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static io.spotserve.engine.EngineFixtures.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.clock.VirtualClock;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.plan.ConfigEstimate;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.Decision;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.ParallelConfigOptimizer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * When the engine leaves a noticed instance: the interruption arranger's time, kept against what happens during the
 * grace period (the step estimate growing, other notices at the same moment). The cost model prices a step at 50 µs,
 * far below the virtual clock's 10 ms, so the arranger lets the doomed batches decode (or FINISH) up to the latest
 * safe time, as a measured profile on a warm JVM does.
 */
class NoticedInstanceTest {
    private static final CostModel FAST = EngineFixtures.flatCostModel("50 us per step", 4, tp -> 0.05);
    private static Executor executor;

    @BeforeAll
    static void start() {
        executor = EngineFixtures.executor();
    }

    @AfterAll
    static void close() {
        executor.close();
    }

    /** Algorithm 1 scripted to {@code config} on whatever instances are at hand (an unmanaged fleet). */
    private static ParallelConfigOptimizer always(ParallelConfig config) {
        return (n, onDemand, rate) -> new Decision(
                Optional.of(new ConfigEstimate(config, 1, 1, 0.1, 0.0, 0.1, 10.0, 1L << 20)), true, rate, n, n, n, 0, 0,
                0, 0, ParallelConfigOptimizer.Policy.PAPER, "scripted: " + config);
    }

    /**
     * The lead before a deadline follows the step estimate after the notice. The notice comes after the first step of
     * the one pipeline serving then (10 ms on the virtual clock), so it is arranged with that estimate; four requests
     * arriving with it fill all four pipelines, and each round of steps then takes 40 ms. Leaving at the latest time
     * taken at the notice (deadline minus two 10 ms steps) starts a last round that ends at the deadline, and the
     * doomed pipelines' caches are lost there (what full-suite runs showed when a measured profile made Algorithm 1
     * deploy four pipelines). A gate holds the first forward step until every arrival and the notice are in;
     * the arranger lets the batches FINISH by the latest safe time (as there).
     */
    @Test
    void theLeadBeforeADeadlineIsRetakenWithTheStepEstimateAfterTheNotice() throws Exception {
        ParallelConfigOptimizer script = always(ParallelConfig.of(4, 1, 1, 1));
        CountDownLatch gate = new CountDownLatch(1);
        AtomicBoolean first = new AtomicBoolean(true);
        Executor gated = new ForwardingExecutor(executor) {
            @Override
            public Pipeline createPipeline(ShardLayout layout, List<? extends Device> devices, int maxBatch) {
                return new ForwardingPipeline(real.createPipeline(layout, devices, maxBatch)) {
                    @Override
                    public void forward(long[] sequences, int[] tokens, int[] positions, int count,
                                        float[][] logits) {
                        if (first.getAndSet(false)) {
                            try {
                                gate.await(30, TimeUnit.SECONDS);
                            } catch (InterruptedException e) {
                                Thread.currentThread().interrupt();
                            }
                        }
                        delegate.forward(sequences, tokens, positions, count, logits);
                    }
                };
            }
        };
        VirtualClock clock = new VirtualClock(Duration.ofMillis(10));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, ON_DEMAND);
        Instance a = provider.add(SPOT);
        provider.add(SPOT);
        List<GenerationRequest> requests = EngineFixtures.requests(25, 5, 400, false);
        Duration noticeAt = Duration.ofMillis(10);
        Duration deadline = noticeAt.plusMillis(190);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(gated).clock(clock).maxBatch(8).planning(FAST, script).build()) {
            futures.add(engine.submit(requests.get(0)));
            for (GenerationRequest r : requests.subList(1, requests.size())) {
                futures.add(engine.submit(r, noticeAt));
            }
            provider.deliver(new InstanceEvent.PreemptionNotice(a.id(), noticeAt, deadline));
            gate.countDown();
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).join().tokens(), "request " + i);
            }
            EngineMetrics m = engine.metrics();
            Reconfiguration off = moveOff(m, a);
            assertTrue(off.at().compareTo(noticeAt) > 0 && off.at().compareTo(deadline) < 0,
                    off + ": left during the grace period, before the deadline " + deadline);
            assertFalse(off.triggers().contains(Reconfiguration.Trigger.DEADLINE), off.toString());
            assertEquals(0, off.interruptedRequests(), off.toString());
            assertTrue(off.resumedRequests() > 0, "the doomed pipelines' caches moved: " + off);
            assertEquals(0, m.restarts(), m.toString());
        }
    }

    /**
     * A notice for an instance that serves no pipeline does not re-plan at once. Four instances host two P1M4
     * pipelines and a fifth is idle; the cloud notices a host and the idle one at the same moment. The host's pipeline
     * keeps decoding through its grace period as the arranger says, then its requests move with their caches to the
     * other pipeline; re-planning for the idle one's notice took it off its
     * host at once (seen in the evaluation: LLaMA-30B, seed 8 B_S and seed 9 A_S, a 5 s pause in a backlog 30 s
     * before it was due).
     */
    @Test
    void aNoticeForAnIdleInstanceLeavesTheOthersArrangementAlone() {
        VirtualClock clock = new VirtualClock(Duration.ofMillis(10));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, ON_DEMAND);
        List<Instance> fleet = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            fleet.add(provider.add(SPOT));
        }
        List<GenerationRequest> requests = EngineFixtures.requests(26, 4, 300, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).maxBatch(4).planning(FAST, always(ParallelConfig.of(2, 1, 4, 4)))
                .build()) {
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r));
            }
            await(() -> engine.metrics().running() == requests.size(), engine);
            String deployed = engine.metrics().reconfigurations().get(0).to();
            Instance idle = fleet.stream().filter(i -> !deployed.contains(i.id())).findFirst()
                    .orElseThrow(() -> new AssertionError("no idle instance: " + deployed));
            Instance host = fleet.stream().filter(i -> deployed.contains(i.id())).findFirst().orElseThrow();
            Duration noticeAt = clock.now();
            Duration deadline = noticeAt.plusMillis(500);
            provider.deliver(new InstanceEvent.PreemptionNotice(host.id(), noticeAt, deadline));
            provider.deliver(new InstanceEvent.PreemptionNotice(idle.id(), noticeAt, deadline));
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).join().tokens(), "request " + i);
            }
            EngineMetrics m = engine.metrics();
            Reconfiguration off = moveOff(m, host);
            assertFalse(off.reason().contains("notice " + idle.id()), "the idle instance's notice re-planned: " + off);
            assertTrue(off.at().compareTo(noticeAt.plusMillis(100)) > 0 && off.at().compareTo(deadline) < 0,
                    off + ": the host's pipeline decodes through the grace period (notice at " + noticeAt + ")");
            assertEquals(0, off.interruptedRequests(), off.toString());
            assertEquals(0, m.restarts(), m.toString());
        }
    }

    /**
     * When leaving a noticed instance only drops its pipeline, the lead prices what moves then, the requests' KV
     * caches, at the measured migration rate, not the estimate of past migrations that moved weights. Three
     * instances, one P1M2 pipeline each; the third joined by copying the weights (≈ 1 MB at 1 MB/s on the virtual
     * clock, so past migrations took ≈ 1 s and twice that is longer than the 1.5 s grace). With the old lead the
     * noticed host stopped at once; now it decodes through most of its grace, and its requests still keep their
     * caches (parked in host memory: the other pipelines are full).
     */
    @Test
    void leavingThatOnlyDropsAPipelineLeadsByItsCachesNotByPastWeightMoves() {
        VirtualClock clock = new VirtualClock(Duration.ofMillis(10), Duration.ZERO, 1_000_000);
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, ON_DEMAND);
        provider.add(SPOT);
        provider.add(SPOT);
        List<GenerationRequest> requests = EngineFixtures.requests(27, 12, 400, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).maxBatch(4).planning(FAST, always(ParallelConfig.of(3, 1, 2, 4)))
                .build()) {
            await(() -> !engine.metrics().reconfigurations().isEmpty(), engine);
            Instance third = provider.add(SPOT);
            await(() -> engine.metrics().reconfigurations().stream()
                    .anyMatch(r -> r.to().contains(third.id()) && r.bytesMigrated() > 0), engine);
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r));
            }
            await(() -> engine.metrics().running() == requests.size(), engine);
            Duration noticeAt = clock.now();
            Duration deadline = noticeAt.plusMillis(1500);
            provider.deliver(new InstanceEvent.PreemptionNotice(third.id(), noticeAt, deadline));
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).join().tokens(), "request " + i);
            }
            EngineMetrics m = engine.metrics();
            Reconfiguration off = moveOff(m, third);
            assertTrue(off.at().compareTo(noticeAt.plusMillis(700)) > 0 && off.at().compareTo(deadline) < 0,
                    off + ": decoded through most of the grace period (notice at " + noticeAt + ")");
            assertEquals(0, off.interruptedRequests(), off.toString());
            // the other two pipelines are full (B 4): the caches go to host memory, and their requests resume with them
            assertTrue(off.resumedRequests() + off.parkedRequests() > 0, "the caches were kept: " + off);
            assertEquals(0, m.restarts(), m.toString());
        }
    }

    /** The reconfiguration that acted on {@code noticed}'s notice (the first whose reason names it). */
    private static Reconfiguration moveOff(EngineMetrics m, Instance noticed) {
        return m.reconfigurations().stream().filter(r -> r.reason().contains("notice " + noticed.id())).findFirst()
                .orElseThrow(() -> new AssertionError("no move off " + noticed.id() + ": " + m.reconfigurations()));
    }
}
