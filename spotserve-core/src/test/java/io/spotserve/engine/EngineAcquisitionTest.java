package io.spotserve.engine;

import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.ON_DEMAND;
import static io.spotserve.engine.EngineFixtures.SPOT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static io.spotserve.engine.EngineFixtures.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.clock.VirtualClock;
import io.spotserve.exec.Executor;
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
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The interruption arranger at an acquisition notice (SpotServe §3.4): an instance announced with
 * {@link InstanceEvent.Launching} joins the configuration where the arranger puts it. The running batches keep
 * decoding while it initializes and their caches then move (MIGRATE), they finish before it is ready (FINISH), or
 * they go to the new configuration without their caches because moving them costs more than the steps it waits
 * (REROUTE). Every branch is driven on a virtual clock of 10 ms per step, with a cost model that prices a decode step
 * at the same 10 ms, and a scripted Algorithm 1 that spreads one pipeline over whatever it has (one instance: P1M2;
 * two: P1M4, priced faster than keeping P1M2 twice so the re-plan gate's hysteresis takes it), so the join changes the
 * pipeline the requests run on.
 */
class EngineAcquisitionTest {
    private static final Duration STEP = Duration.ofMillis(10);
    private static Executor executor;
    private static CostModel costModel;

    @BeforeAll
    static void model() {
        executor = EngineFixtures.executor();
        // a decode step of the whole model: 10 ms at M <= 2 (the configuration the requests run on); M = 4 is priced
        // far faster, so the re-plan gate finds the newcomer's shape worth its pause
        costModel = EngineFixtures.flatCostModel("10 ms per step", 4, tp -> STEP.toMillis() / (tp == 4 ? 8.0 : 1.0));
    }

    @AfterAll
    static void close() {
        executor.close();
    }

    /** One pipeline over all the devices it is given: P1M2 on one 2-GPU instance, P1M4 on two. */
    private static final ParallelConfigOptimizer ONE_PIPELINE = (n, onDemand, rate) -> {
        ParallelConfig c = ParallelConfig.of(1, 1, n >= 2 ? 4 : 2, 8);
        return new Decision(Optional.of(new ConfigEstimate(c, 1, 1, 0.1, 0.0, 0.1, 10.0, 1L << 20)), true, rate, n,
                n, n, 0, 0, 0, 0, ParallelConfigOptimizer.Policy.PAPER, "scripted: one pipeline over " + n);
    };

    /** What a run with one launched instance left behind. */
    private record Joined(EngineMetrics metrics, Duration launchedAt, Duration readyAt, List<Completion> completions,
                          Reconfiguration join) {
    }

    /**
     * Six greedy requests of up to {@code maxNew} tokens run on one pipeline on one instance; a few tokens in, a second
     * instance is launched that initializes for {@code startup} (null: acquired at once, without an acquisition
     * notice). Every output must equal the solo oracle.
     */
    private static Joined runWithLaunch(long seed, int maxNew, Duration startup) {
        VirtualClock clock = new VirtualClock(STEP);
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, ON_DEMAND);
        provider.add(SPOT);
        List<GenerationRequest> requests = EngineFixtures.requests(seed, 6, maxNew, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).maxBatch(8).planning(costModel, ONE_PIPELINE).build()) {
            // the newcomer is launched from the engine thread as the last submitted request commits its second token,
            // so where it happens on the virtual clock does not depend on how fast this thread runs: every request was
            // admitted before it (FIFO) and the long ones are all running then
            CompletableFuture<Instance> launched = new CompletableFuture<>();
            CompletableFuture<Duration> launchedAt = new CompletableFuture<>();
            EngineFixtures.submitThen(engine, requests, futures, 2, () -> {
                launchedAt.complete(clock.now());
                launched.complete(startup == null ? provider.add(SPOT) : provider.launch(SPOT, startup));
            });
            Instance newcomer = launched.orTimeout(60, TimeUnit.SECONDS).join();
            List<Completion> done = new ArrayList<>();
            for (int i = 0; i < requests.size(); i++) {
                done.add(futures.get(i).join());
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), done.get(i).tokens(), "request " + i);
            }
            String tag = "acquired " + newcomer.id();
            await(() -> engine.metrics().reconfigurations().stream().anyMatch(r -> r.reason().contains(tag)), engine);
            EngineMetrics m = engine.metrics();
            Reconfiguration join = m.reconfigurations().stream().filter(r -> r.reason().contains(tag)).findFirst()
                    .orElseThrow();
            assertEquals(ParallelConfig.of(1, 1, 4, 8), join.configuration(), join.toString());
            Duration at = launchedAt.join();
            return new Joined(m, at, startup == null ? at : at.plus(startup), done, join);
        }
    }

    /**
     * MIGRATE: 300 ms of initialization against about 2 s of remaining decoding and a migration of a few steps. The
     * batch keeps decoding the 30 steps that cover the initialization, then the newcomer joins and every cache moves to
     * the new pipeline: nobody recomputes.
     */
    @Test
    void theBatchDecodesWhileTheNewcomerInitializesThenItsCachesMove() {
        Joined run = runWithLaunch(31, 200, Duration.ofMillis(300));
        Reconfiguration join = run.join();
        assertTrue(join.reason().contains(": migrate"), join.toString());
        assertTrue(join.at().compareTo(run.readyAt()) >= 0, join + " before the newcomer was ready at " + run.readyAt());
        assertTrue(join.at().compareTo(run.readyAt().plus(STEP.multipliedBy(3))) <= 0,
                join + ": the arranger's S_t covers the 300 ms within a step or two, ready at " + run.readyAt());
        assertEquals(6, join.resumedRequests(), "every running request carried its cache over: " + join);
        assertEquals(0, join.interruptedRequests(), join.toString());
        assertEquals(0, run.metrics().restarts(), run.metrics().toString());
    }

    /**
     * REROUTE: the newcomer is ready after 5 ms, so the arranger's S_t is one 10 ms step, and moving the caches (two
     * steps' lead at least) would take longer than that: the requests go to the new pipeline without their caches and
     * recompute from their committed tokens (outputs unchanged).
     */
    @Test
    void aNewcomerReadySoonerThanTheCachesCouldMoveReroutesTheRequests() {
        Joined run = runWithLaunch(32, 200, Duration.ofMillis(5));
        Reconfiguration join = run.join();
        assertTrue(join.reason().contains(": reroute"), join.toString());
        assertEquals(0, join.resumedRequests(), "no cache is carried: " + join);
        assertEquals(6, join.interruptedRequests(), "every running request recomputes: " + join);
        assertTrue(run.metrics().restarts() >= 6, run.metrics().toString());
    }

    /**
     * FINISH: 12 tokens take 120 ms, the newcomer needs 2 s: the batch finishes on its own and the newcomer joins on
     * arrival with nothing running, so nothing is interrupted or moved.
     */
    @Test
    void aBatchThatFinishesBeforeTheNewcomerIsReadyIsLeftAlone() {
        Joined run = runWithLaunch(33, 12, Duration.ofSeconds(2));
        Reconfiguration join = run.join();
        assertTrue(join.reason().contains(": batches finished first"), join.toString());
        assertTrue(join.at().compareTo(run.readyAt()) >= 0, join.toString());
        for (Completion c : run.completions()) {
            assertTrue(c.finishedAt().compareTo(run.readyAt()) < 0, c + " finished after the newcomer joined");
        }
        assertEquals(0, join.interruptedRequests(), join.toString());
        assertEquals(0, join.resumedRequests(), join.toString());
        assertEquals(0, run.metrics().restarts(), run.metrics().toString());
    }

    /** Without a notice (only {@code Acquired}), the newcomer joins on arrival and the caches move, as before. */
    @Test
    void anInstanceAcquiredWithoutNoticeJoinsOnArrival() {
        Joined run = runWithLaunch(34, 200, null);
        Reconfiguration join = run.join();
        assertTrue(join.at().compareTo(run.launchedAt().plus(STEP)) <= 0, join + ": at most the step in flight later");
        assertEquals(0, join.interruptedRequests(), join.toString());
        assertEquals(6, join.resumedRequests(), join.toString());
    }

    @Test
    void aLaunchNoticeMustNotBeReadyBeforeItWasSent() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new InstanceEvent.Launching("i-1", Duration.ofSeconds(5), Duration.ofSeconds(4)));
        assertTrue(e.getMessage().contains("before its launch notice"), e.getMessage());
        assertEquals(Duration.ofSeconds(3),
                new InstanceEvent.Launching("i-1", Duration.ofSeconds(1), Duration.ofSeconds(4)).startup());
    }
}
