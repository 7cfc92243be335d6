package io.spotserve.engine;

import io.spotserve.clock.VirtualClock;
import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.ON_DEMAND;
import static io.spotserve.engine.EngineFixtures.SPOT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.spotserve.exec.Executor;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.LocalInstanceProvider;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Instance-hours and cost per market, accrued on the engine's virtual clock. */
class EngineCostTest {
    private static final double EPS = 1e-9;

    @Test
    void spotAndOnDemandAccrueFromAcquisitionAndPreemptedSpotStopsAtTermination() throws Exception {
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        Instance spot = provider.add(SPOT); // at 0 h
        Instance onDemand = provider.add(ON_DEMAND); // at 0 h
        try (Executor executor = EngineFixtures.executor();
             ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                     .executor(executor).clock(clock).build()) {
            // a spot preemption with a 1 h notice, terminated at 2 h: the engine jumps its virtual clock there
            provider.deliver(new InstanceEvent.PreemptionNotice(spot.id(), Duration.ofHours(1), Duration.ofHours(2)));
            provider.deliver(new InstanceEvent.Terminated(spot.id(), Duration.ofHours(2)));
            awaitSpotEnded(engine);
            clock.advanceTo(Duration.ofHours(3));
            EngineMetrics m = awaitSpotHours(engine, 2.0);
            assertEquals(Duration.ofHours(3), m.now());
            assertEquals(2.0, m.spotInstanceHours(), EPS, "spot stops accruing at its termination");
            assertEquals(3.0, m.onDemandInstanceHours(), EPS);
            assertEquals(2 * 1.9, m.spotCost(), EPS);
            assertEquals(3 * 3.9, m.onDemandCost(), EPS);
            assertEquals(2 * 1.9 + 3 * 3.9, m.totalCost(), EPS);
            assertEquals(5.0, m.instanceHours(), EPS);
            assertEquals(5 * 3.9, m.onDemandOnlyCost(3.9), EPS);

            clock.advanceTo(Duration.ofHours(5)); // only the on-demand instance is still running
            EngineMetrics later = engine.metrics();
            assertEquals(2.0, later.spotInstanceHours(), EPS);
            assertEquals(5.0, later.onDemandInstanceHours(), EPS);
            assertEquals(2 * 3.9 + 5 * 3.9, later.onDemandOnlyCost(3.9), EPS);
            assertThrows(IllegalArgumentException.class, () -> later.onDemandOnlyCost(-1));
        }
    }

    /** Waits (real time, bounded) until the engine thread has applied the spot instance's termination. */
    private static void awaitSpotEnded(ServingEngine engine) throws InterruptedException {
        long until = System.nanoTime() + 10_000_000_000L;
        while (!done(engine) && System.nanoTime() < until) {
            Thread.sleep(5);
        }
        assertEquals(true, done(engine), engine.configuration());
    }

    /**
     * Waits (real time, bounded) until the engine thread has applied the Terminated event, which may happen
     * after the test moved the shared virtual clock on; billing must still end at the event's own time.
     */
    private static EngineMetrics awaitSpotHours(ServingEngine engine, double hours) throws InterruptedException {
        long until = System.nanoTime() + 10_000_000_000L;
        EngineMetrics m = engine.metrics();
        while (Math.abs(m.spotInstanceHours() - hours) > EPS && System.nanoTime() < until) {
            Thread.sleep(5);
            m = engine.metrics();
        }
        return m;
    }

    /** Pipelines were rebuilt on local-1 alone, which the engine does only after it forgot local-0. */
    private static boolean done(ServingEngine engine) {
        String c = engine.configuration();
        return c.contains("local-1") && !c.contains("local-0");
    }
}
