package io.spotserve.engine;

import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.SPOT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static io.spotserve.engine.EngineFixtures.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.clock.VirtualClock;
import io.spotserve.exec.Executor;
import io.spotserve.instance.Instance;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A fleet nobody shrinks puts its idle devices to work when that repays the change of shape
 * ({@code ReplanGate.takesIdleDevices}). Algorithm 1 is scripted as GPT-20B's was on 9–10 instances: at any rate it
 * keeps up with, it prefers one 4-stage pipeline (lower latency); at a rate nothing keeps up with, its maximum
 * throughput is 2-stage pipelines on every device. On two instances (4 devices) both hold every device; when a third
 * instance arrives the 4-stage shape still fits once and leaves 2 devices idle, while 2-stage pipelines hold all 6.
 * The cost model is flat (the same time per layer at any shape), so the 2-stage fleet serves about 3× as much.
 */
class IdleDevicesTest {
    private static final Duration STEP = Duration.ofMillis(10);
    private static final ParallelConfig LOW_LATENCY = ParallelConfig.of(1, 4, 1, 8);
    private static Executor executor;
    private static CostModel costModel;

    @BeforeAll
    static void model() {
        executor = EngineFixtures.executor();
        costModel = EngineFixtures.flatCostModel("10 ms per step", 2, tp -> STEP.toMillis());
    }

    @AfterAll
    static void close() {
        executor.close();
    }

    /** Algorithm 1 as scripted above: one P4 pipeline below a rate nothing keeps up with, else P2 on every device. */
    private static final ParallelConfigOptimizer SCRIPT = (n, onDemand, rate) -> {
        boolean most = rate > 1e9; // Algorithm 1's line 5: maximum throughput on the n instances
        ParallelConfig c = most ? ParallelConfig.of(n * SPOT.gpus() / 2, 2, 1, 8) : LOW_LATENCY;
        return new Decision(Optional.of(new ConfigEstimate(c, 1, 1, 0.1, 0.0, 0.1, 80.0, 1L << 20)), !most, rate, n,
                n, n, 0, 0, 0, 0, ParallelConfigOptimizer.Policy.PAPER, most ? "scripted: most throughput"
                : "scripted: lowest latency");
    };

    /** The configurations deployed as two instances serve and a third arrives, and the outputs of requests after. */
    private static List<ParallelConfig> growByOne() {
        VirtualClock clock = new VirtualClock(STEP);
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        provider.add(SPOT);
        provider.add(SPOT);
        List<GenerationRequest> requests = EngineFixtures.requests(41, 6, 12, false);
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).maxBatch(8).planning(costModel, SCRIPT)
                .build()) {
            await(() -> !engine.metrics().reconfigurations().isEmpty(), engine);
            Instance third = provider.add(SPOT);
            String tag = "acquired " + third.id();
            // the old rule kept the intact 4-stage pipeline: the acquisition changed nothing and left no record
            long until = System.nanoTime() + 20_000_000_000L;
            while (engine.metrics().reconfigurations().stream().noneMatch(r -> r.reason().contains(tag))) {
                assertTrue(System.nanoTime() < until, "the third instance's devices were not put to work in 20 s: "
                        + engine.metrics().reconfigurations());
                Thread.onSpinWait();
            }
            List<CompletableFuture<Completion>> futures = new ArrayList<>();
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r));
            }
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).join().tokens(), "request " + i);
            }
            assertEquals(0, engine.metrics().restarts(), engine.metrics().toString());
            return engine.metrics().reconfigurations().stream().map(Reconfiguration::configuration).toList();
        }
    }

    @Test
    void aFleetNobodyShrinksPutsTheDevicesAlgorithmOnesChoiceLeavesIdleToWork() {
        double phiLow = phi(LOW_LATENCY);
        double phiMost = phi(ParallelConfig.of(3, 2, 1, 8));
        assertTrue(phiMost > 2 * phiLow, "the premise: 2-stage pipelines on 6 devices serve far more: " + phiMost
                + " vs " + phiLow);
        List<ParallelConfig> deployed = growByOne();
        assertEquals(LOW_LATENCY, deployed.get(0), "4 devices: Algorithm 1's pipeline holds them all: " + deployed);
        assertEquals(ParallelConfig.of(3, 2, 1, 8), deployed.get(deployed.size() - 1),
                "6 devices: the idle two are put to work: " + deployed);
    }

    private static double phi(ParallelConfig c) {
        double best = 0;
        for (int m1 = 1; m1 <= c.maxBatch(); m1 *= 2) {
            for (int m2 = 1; m2 <= c.maxBatch(); m2 *= 2) {
                best = Math.max(best, costModel.throughput(c, m1, m2, Math.min(512, CHECKPOINT.config().seqLen() / 2),
                        Math.min(128, CHECKPOINT.config().seqLen() / 4)));
            }
        }
        return best;
    }
}
