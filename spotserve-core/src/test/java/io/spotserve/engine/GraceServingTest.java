package io.spotserve.engine;

import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
 * A noticed instance whose pipeline has no replacement keeps serving through its grace period while requests wait:
 * it takes new batches until its arranged time, then its caches move (or park) like those of any doomed batch. Before,
 * a doomed pipeline took nothing new, so the fleet served the whole grace period one pipeline short.
 */
class GraceServingTest {
    private static final InstanceType ONE_GPU = new InstanceType("local.1x", 1, 32L << 20, 1.9,
            InstanceType.Market.SPOT);
    private static final Duration STEP = Duration.ofMillis(50);

    @Test
    void aNoticedPipelineWithoutReplacementServesTheQueueUntilItLeaves() {
        SimulatedClock clock = SimulatedClock.builder(s -> STEP).build();
        clock.hold();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        provider.add(ONE_GPU);
        Instance b = provider.add(ONE_GPU);
        Duration arrival = Duration.ofSeconds(1);
        Duration notice = Duration.ofMillis(1100);
        Duration deadline = notice.plusSeconds(4);
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            requests.add(GenerationRequest.builder().prompt(i % 2 == 0 ? "Once upon a time" : "The little dog")
                    .maxNewTokens(16).sampling(EngineFixtures.greedy()).build());
        }
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (Executor executor = EngineFixtures.executor();
             ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                     .executor(executor).clock(clock).parallelism(1, 1).maxBatch(2).build()) {
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r, arrival));
            }
            provider.deliver(new InstanceEvent.PreemptionNotice(b.id(), notice, deadline));
            provider.deliver(new InstanceEvent.Terminated(b.id(), deadline));
            clock.release();
            Duration longest = Duration.ZERO;
            for (int i = 0; i < requests.size(); i++) {
                Completion c = futures.get(i).join();
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), c.tokens(), "request " + i);
                longest = c.latency().compareTo(longest) > 0 ? c.latency() : longest;
            }
            // 12 requests in batches of 2: three rounds on two pipelines take 2.4 s; with b idle after its first
            // batch (the old rule) the survivor serves the rest alone and the last request takes 4.0 s
            assertTrue(longest.compareTo(Duration.ofMillis(3200)) < 0,
                    "the noticed pipeline kept serving the queue: longest latency " + longest + ", "
                            + engine.metrics().reconfigurations());
            assertEquals(0, engine.metrics().restarts(), engine.metrics().toString());
        }
    }
}
