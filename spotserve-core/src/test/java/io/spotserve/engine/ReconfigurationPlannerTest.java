package io.spotserve.engine;

import io.spotserve.clock.VirtualClock;
import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.SPOT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.Executor;
import io.spotserve.instance.Instance;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.plan.Deployment;
import io.spotserve.plan.DeviceMapping;
import io.spotserve.plan.MigrationPlan;
import io.spotserve.plan.ModelContext;
import io.spotserve.plan.ReconfigurationPlanner;
import io.spotserve.plan.TargetFleet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The engine plans its reconfigurations with the host's {@link ReconfigurationPlanner} when given one. */
class ReconfigurationPlannerTest {

    /** A host's planner: SpotServe's mapping and order without a buffer cap; it records every call. */
    static final class HostPlanner implements ReconfigurationPlanner {
        final List<DeviceMapping> mapped = new ArrayList<>();
        final List<MigrationPlan> planned = new ArrayList<>();

        @Override
        public DeviceMapping map(ModelContext model, Deployment old, TargetFleet target) {
            DeviceMapping m = ReconfigurationPlanner.kuhnMunkres().map(model, old, target);
            mapped.add(m);
            return m;
        }

        @Override
        public MigrationPlan plan(DeviceMapping mapping, long bufferCapBytes) {
            // no buffer cap of its own: the engine's per-instance cap is ignored
            MigrationPlan p = ReconfigurationPlanner.kuhnMunkres().plan(mapping, Long.MAX_VALUE);
            planned.add(p);
            return p;
        }
    }

    @Test
    void theHostsPlannerIsTheOneUsed() throws Exception {
        Executor executor = EngineFixtures.executor();
        VirtualClock clock = new VirtualClock(Duration.ofMillis(10), Duration.ofMillis(1));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        Instance a = provider.add(SPOT);
        provider.add(SPOT);
        HostPlanner host = new HostPlanner();
        List<GenerationRequest> requests = EngineFixtures.requests(31, 6, 40, true);
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).maxBatch(4).reconfigurationPlanner(host).build()) {
            List<CompletableFuture<Completion>> futures = new ArrayList<>();
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r));
            }
            PreemptionTest.awaitRunning(engine, 1);
            provider.preempt(a.id(), Duration.ofSeconds(2));
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).get(60, TimeUnit.SECONDS).tokens(),
                        "request " + i);
            }
            // the notice's reconfiguration may come after the last request finished (a loaded machine): wait for it
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (engine.metrics().reconfigurations().size() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            int reconfigurations = engine.metrics().reconfigurations().size();
            assertTrue(reconfigurations >= 2, engine.metrics().toString());
            assertEquals(reconfigurations, host.mapped.size(), "every reconfiguration was mapped by the host's planner");
            assertEquals(reconfigurations, host.planned.size(), "and ordered by it");
        } finally {
            executor.close();
        }
    }
}
