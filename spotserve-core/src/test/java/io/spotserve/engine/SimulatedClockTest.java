package io.spotserve.engine;

import io.spotserve.clock.SimulatedClock;
import io.spotserve.clock.ForwardStep;
import io.spotserve.clock.DataMove;
import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.Executor;
import io.spotserve.exec.WeightSource;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The engine on a {@link SimulatedClock}: pipelines keep their own pace (a step keeps only its own pipeline busy),
 * dated submissions arrive when their time comes, migrations cost the busiest instance's copy time, and a held clock
 * makes the whole run deterministic — on the real stories260K with the CPU executor.
 */
class SimulatedClockTest {
    private static final InstanceType ONE_GPU = new InstanceType("local.1x", 1, 32L << 20, 1.9,
            InstanceType.Market.SPOT);
    private static final Duration STEP = Duration.ofMillis(10);

    @Test
    void aReconfigurationCostsItsBusiestInstancesCopyTime() {
        SimulatedClock clock = SimulatedClock.builder(s -> STEP).networkBytesPerSecond(1e9).localBytesPerSecond(2e9)
                .storageBytesPerSecond(4e9).build();
        clock.migrated(List.of(
                new DataMove("a", "b", 10_000_000_000L),  // a sends 10 GB, b receives 10 GB
                new DataMove("a", "c", 10_000_000_000L),  // a sends 20 GB in all: 20 s
                new DataMove("b", "b", 4_000_000_000L),   // b: 10 s network + 2 s local = 12 s
                new DataMove(null, "d", 40_000_000_000L))); // d reads 40 GB from storage: 10 s
        assertEquals(Duration.ofSeconds(20), clock.now());
        // the next unit of the same reconfiguration: d's own queue grows to 10 + 2 + 1 = 13 s, still behind a's 20 s
        clock.migrated(List.of(new DataMove(null, "d", 8_000_000_000L), new DataMove("d", "d", 2_000_000_000L)));
        assertEquals(Duration.ofSeconds(20), clock.now(), "instances copy side by side");
        clock.migrated(List.of(new DataMove("a", "b", 5_000_000_000L)));
        assertEquals(Duration.ofSeconds(25), clock.now(), "a's queue: 25 s");
        clock.migrationStarted();
        clock.migrated(List.of(new DataMove(null, "d", 8_000_000_000L), new DataMove("d", "d", 2_000_000_000L)));
        assertEquals(Duration.ofSeconds(28), clock.now(), "a new reconfiguration: storage 2 s + local 1 s add up");
    }

    @Test
    void aStepKeepsOnlyItsPipelineBusyAndDoesNotMoveTheClock() {
        SimulatedClock clock = SimulatedClock.builder(s -> STEP.multipliedBy(s.positions())).build();
        assertEquals(Duration.ofMillis(50), clock.computed(new ForwardStep(1, 1, 1, 4, 1)));
        assertEquals(Duration.ZERO, clock.now());
        SimulatedClock broken = SimulatedClock.builder(s -> Duration.ofMillis(-1)).build();
        assertThrows(IllegalStateException.class, () -> broken.computed(new ForwardStep(1, 1, 0, 0, 1)));
        assertThrows(IllegalArgumentException.class, () -> new ForwardStep(1, 1, 2, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> SimulatedClock.builder(s -> STEP)
                .networkBytesPerSecond(Double.NaN));
    }

    /** Two pipelines, one request each, submitted for t = 1 s: both finish at 1 s + tokens × step, side by side. */
    @Test
    void pipelinesRunSideBySideAndDatedRequestsArriveOnTime() {
        List<Completion> first = run();
        for (Completion c : first) {
            assertEquals(Duration.ofSeconds(1), c.submittedAt(), c.toString());
            assertEquals(Duration.ofSeconds(1).plus(STEP), c.firstTokenAt(), "one prefill step: " + c);
            // one prefill step samples the first token, every further token one decode step
            assertEquals(Duration.ofSeconds(1).plus(STEP.multipliedBy(c.tokens().length)), c.finishedAt(), c.toString());
        }
        assertEquals(first.get(0).finishedAt(), first.get(1).finishedAt(), "same length, run in parallel");
        List<Completion> again = run();
        for (int i = 0; i < first.size(); i++) {
            assertEquals(first.get(i).finishedAt(), again.get(i).finishedAt());
            assertArrayEquals(first.get(i).tokens(), again.get(i).tokens());
        }
    }

    private static List<Completion> run() {
        SimulatedClock clock = SimulatedClock.builder(s -> STEP).build();
        clock.hold();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        provider.add(ONE_GPU);
        provider.add(ONE_GPU);
        GenerationRequest request = GenerationRequest.builder().prompt("Once upon a time").maxNewTokens(24)
                .sampling(EngineFixtures.greedy()).build();
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (Executor executor = EngineFixtures.executor();
             ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                     .executor(executor).clock(clock).maxBatch(1).build()) {
            futures.add(engine.submit(request, Duration.ofSeconds(1)));
            futures.add(engine.submit(request, Duration.ofSeconds(1)));
            clock.release();
            List<Completion> out = new ArrayList<>();
            int[] solo = EngineFixtures.solo(request);
            for (CompletableFuture<Completion> f : futures) {
                Completion c = f.join();
                assertArrayEquals(solo, c.tokens());
                out.add(c);
            }
            assertEquals(2, engine.metrics().completed());
            return out;
        }
    }

    @Test
    void badSimulationSettingsNameTheValueAndLeaveTheBuilderUsable() {
        ServingEngine.Builder b = ServingEngine.builder();
        for (double bad : new double[] {-0.5, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.minimumArrivalRate(bad));
            assertTrue(e.getMessage().contains("minimumArrivalRate") && e.getMessage().contains(String.valueOf(bad)),
                    e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.admissionGroup(0));
        assertTrue(e.getMessage().contains("admissionGroup must be >= 1, was 0"), e.getMessage());
        assertThrows(NullPointerException.class, () -> b.reconfigurationMode(null));
        e = assertThrows(IllegalArgumentException.class, () -> new DataMove("a", "b", -1));
        assertTrue(e.getMessage().contains("-1"), e.getMessage());
        assertThrows(NullPointerException.class, () -> new DataMove("a", null, 1));
        // the rejected calls changed nothing: the same builder still serves with its defaults
        SimulatedClock clock = SimulatedClock.builder(s -> STEP).build();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        provider.add(ONE_GPU);
        GenerationRequest request = GenerationRequest.builder().prompt("Once upon a time").maxNewTokens(8)
                .sampling(EngineFixtures.greedy()).build();
        try (Executor executor = EngineFixtures.executor();
             ServingEngine engine = b.model(CHECKPOINT, TOKENIZER).instances(provider).executor(executor).clock(clock)
                     .build()) {
            assertArrayEquals(EngineFixtures.solo(request), engine.submit(request).join().tokens());
        }
    }

    @Test
    void aModelWithoutTokenizerServesTokenPromptsAndRejectsText() {
        SimulatedClock clock = SimulatedClock.builder(s -> STEP).build();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        provider.add(ONE_GPU);
        GenerationRequest text = GenerationRequest.builder().prompt("Once upon a time").maxNewTokens(8)
                .sampling(EngineFixtures.greedy()).build();
        int[] prompt = TOKENIZER.encode("Once upon a time", true, false);
        GenerationRequest tokens = GenerationRequest.builder().promptTokens(prompt).maxNewTokens(8)
                .sampling(EngineFixtures.greedy()).build();
        try (Executor executor = EngineFixtures.executor();
             ServingEngine engine = ServingEngine.builder().model(WeightSource.of(CHECKPOINT)).instances(provider)
                     .executor(executor).clock(clock).build()) {
            assertNull(engine.tokenizer());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> engine.submit(text));
            assertTrue(e.getMessage().contains("promptTokens"), e.getMessage());
            Completion c = engine.submit(tokens).join();
            assertArrayEquals(EngineFixtures.solo(text), c.tokens());
            assertEquals("", c.text());
        }
    }
}
