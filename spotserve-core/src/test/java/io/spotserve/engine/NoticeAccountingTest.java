package io.spotserve.engine;

import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.clock.SimulatedClock;
import io.spotserve.exec.Executor;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * A reconfiguration that takes pipelines off a noticed instance is forced by the notice, whatever set it off. Here the
 * notice leaves time for the batch to finish (the arranger's FINISH: no change at the notice), and an instance that
 * joins meanwhile becomes the change that moves the doomed batch off with its cache; before, that record said only
 * "acquired", so a summary of preemptions (the CLI's {@code interrupted_by_preemption}) missed the requests the notice
 * displaced.
 */
class NoticeAccountingTest {
    private static final InstanceType ONE_GPU = new InstanceType("local.1x", 1, 32L << 20, 1.9,
            InstanceType.Market.SPOT);
    private static final Duration STEP = Duration.ofMillis(50);

    @Test
    void aChangeThatLeavesANoticedInstanceIsForcedByTheCloud() {
        SimulatedClock clock = SimulatedClock.builder(s -> STEP).build();
        clock.hold();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        Instance a = provider.add(ONE_GPU);
        Instance b = provider.add(ONE_GPU);
        Duration arrival = Duration.ofSeconds(1);
        Duration notice = Duration.ofMillis(1200);
        Duration joins = Duration.ofMillis(1300);
        Duration deadline = notice.plusSeconds(30);
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            requests.add(GenerationRequest.builder().prompt(i % 2 == 0 ? "Once upon a time" : "The little dog")
                    .maxNewTokens(40).sampling(EngineFixtures.greedy()).build());
        }
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (Executor executor = EngineFixtures.executor();
             ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                     .executor(executor).clock(clock).parallelism(1, 1).maxBatch(2).build()) {
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r, arrival));
            }
            provider.deliver(new InstanceEvent.PreemptionNotice(b.id(), notice, deadline));
            provider.deliver(new InstanceEvent.Acquired(new Instance("c", ONE_GPU), joins));
            provider.deliver(new InstanceEvent.Terminated(b.id(), deadline));
            clock.release();
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).join().tokens(), "request " + i);
            }
            EngineMetrics m = engine.metrics();
            Reconfiguration join = m.reconfigurations().stream().filter(r -> r.reason().contains("acquired c"))
                    .findFirst().orElseThrow(() -> new AssertionError(m.reconfigurations().toString()));
            assertTrue(join.from().contains(b.id()) && !join.to().contains(b.id()), join.toString());
            assertTrue(join.resumedRequests() > 0, "the doomed batch moved with its cache: " + join);
            assertTrue(join.triggers().contains(Reconfiguration.Trigger.NOTICE), join.toString());
            assertTrue(join.forcedByCloud(), join.toString());
            assertTrue(join.reason().contains("left noticed " + b.id()), join.toString());
            assertFalse(join.reason().contains("left noticed " + a.id()), join.toString());
            assertEquals(0, m.restarts(), m.toString());
        }
    }
}
