package io.spotserve.engine;

import io.spotserve.clock.VirtualClock;
import io.spotserve.exec.ShardLayout;

import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.Executor;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaConfig;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The paper's baselines built into the engine ({@link ReconfigurationMode}): Rerouting keeps the surviving pipelines
 * as they are and recomputes the lost requests, loading new pipelines from storage; Reparallelization rebuilds
 * everything from storage and recomputes everything. Same instances, requests and preemption as SpotServe's
 * {@code ContextMigrationTest}; outputs stay token-identical to solo runs in every mode.
 */
class ReconfigurationModeTest {
    private static final LlamaConfig C = CHECKPOINT.config();
    private static final InstanceType ONE_GPU = new InstanceType("local.1x", 1, 32L << 20, 1.9,
            InstanceType.Market.SPOT);
    /** Bytes of every weight slice of one whole P1M1 replica (embedding and tied classifier each counted). */
    private static final long REPLICA = ShardLayout.split(C, 1, 1).weightSlices(0, 0).stream()
            .mapToLong(s -> s.bytes(C)).sum();

    private record Run(EngineMetrics metrics, Reconfiguration notice, Reconfiguration added) {
    }

    /** Three one-GPU instances (three P1M1 pipelines), six long requests; one instance is preempted, one added. */
    private static Run run(ReconfigurationMode mode) {
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1));
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        Instance a = provider.add(ONE_GPU);
        provider.add(ONE_GPU);
        provider.add(ONE_GPU);
        List<GenerationRequest> requests = EngineFixtures.requests(11, 6, 300, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (Executor executor = EngineFixtures.executor();
             ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                     .executor(executor).clock(clock).maxBatch(4).reconfigurationMode(mode).build()) {
            // the notice comes from the engine thread once all six run (at the last request's second token)
            EngineFixtures.submitThen(engine, requests, futures, 2, () -> provider.deliver(
                    new InstanceEvent.PreemptionNotice(a.id(), clock.now(), clock.now().plusMillis(30))));
            long until = System.nanoTime() + 30_000_000_000L;
            while (engine.metrics().reconfigurations().stream().noneMatch(x -> x.reason().contains("notice " + a.id()))) {
                if (System.nanoTime() > until) {
                    throw new AssertionError("no reconfiguration for the notice: " + engine.metrics());
                }
                Thread.onSpinWait();
            }
            Instance d = provider.add(ONE_GPU);
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).join().tokens(), "request " + i);
            }
            until = System.nanoTime() + 30_000_000_000L;
            while (engine.metrics().reconfigurations().stream().noneMatch(x -> x.reason().contains("acquired " + d.id()))) {
                if (System.nanoTime() > until) {
                    throw new AssertionError("no reconfiguration for the new instance: " + engine.metrics());
                }
                Thread.onSpinWait();
            }
            EngineMetrics m = engine.metrics();
            return new Run(m, find(m, "notice " + a.id()), find(m, "acquired " + d.id()));
        }
    }

    private static Reconfiguration find(EngineMetrics m, String reason) {
        return m.reconfigurations().stream().filter(x -> x.reason().contains(reason)).findFirst()
                .orElseThrow(() -> new AssertionError("no reconfiguration for " + reason + ": " + m.reconfigurations()));
    }

    @Test
    void migrateMovesTheDoomedRequestsWithTheirCaches() {
        Run r = run(ReconfigurationMode.MIGRATE);
        assertEquals(0, r.notice().interruptedRequests(), r.notice().toString());
        assertTrue(r.notice().resumedRequests() > 0, r.notice().toString());
        assertEquals(0, r.metrics().restarts(), r.metrics().toString());
        // the new instance's pipeline is copied from a survivor, not read from storage
        assertEquals(0, r.added().bytesLoaded(), r.added().toString());
        assertTrue(r.added().bytesMigrated() >= REPLICA, r.added().toString());
    }

    @Test
    void rerouteKeepsTheSurvivorsAndRecomputesTheLostRequests() {
        Run r = run(ReconfigurationMode.REROUTE);
        Reconfiguration off = r.notice();
        assertEquals(0, off.bytesMigrated(), "nothing is copied: " + off);
        assertEquals(0, off.bytesLoaded(), "the two survivors stay as they are: " + off);
        assertTrue(off.bytesKept() >= 2 * REPLICA, off.toString());
        assertEquals(0, off.resumedRequests(), off.toString());
        assertTrue(off.interruptedRequests() > 0, "the preempted pipeline's requests recompute: " + off);
        assertTrue(r.metrics().restarts() > 0, r.metrics().toString());
        // a new pipeline is read from storage, the running ones untouched
        assertEquals(REPLICA, r.added().bytesLoaded(), r.added().toString());
        assertEquals(0, r.added().bytesMigrated(), r.added().toString());
        assertEquals(0, r.added().interruptedRequests(), r.added().toString());
    }

    @Test
    void restartRebuildsEveryPipelineFromStorageAndRecomputesEverything() {
        Run r = run(ReconfigurationMode.RESTART);
        Reconfiguration off = r.notice();
        assertEquals(2 * REPLICA, off.bytesLoaded(), "both new pipelines are read from storage: " + off);
        assertEquals(0, off.bytesMigrated(), off.toString());
        assertEquals(0, off.bytesKept(), off.toString());
        assertEquals(0, off.resumedRequests(), off.toString());
        assertEquals(6, off.interruptedRequests(), "every running request recomputes: " + off);
        assertEquals(3 * REPLICA, r.added().bytesLoaded(), r.added().toString());
    }
}
