package io.spotserve.engine;

import io.spotserve.clock.VirtualClock;
import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.SPOT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.Executor;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.LocalInstanceProvider;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 13: a device that dies under the engine (its worker process was killed: the executor throws
 * {@link io.spotserve.exec.DeviceLostException}, here wrapped in another exception) is a preemption without grace,
 * never a failed request. The requests of the pipeline that hit it recompute from their committed tokens and end
 * with exactly the tokens of an undisturbed run; the instance is released and never used again; the engine re-plans
 * on the others; the provider's own late events for it change nothing. Same when the loss hits a migration.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DeviceLostTest {
    private Executor cpu;
    private VirtualClock clock;
    private LocalInstanceProvider provider;

    @BeforeEach
    void setUp() {
        cpu = EngineFixtures.executor();
        clock = new VirtualClock(Duration.ofMillis(10), Duration.ofMillis(1));
        provider = new LocalInstanceProvider(clock, null);
    }

    @AfterEach
    void tearDown() {
        cpu.close();
    }

    private ServingEngine.Builder engine(Executor executor) {
        return ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider).executor(executor).clock(clock)
                .parallelism(2, 1).maxBatch(3).maxBatchTokens(16);
    }

    private static List<GenerationRequest> requests(int count, int base) {
        String[] prompts = {"Once upon a time", "The little dog", "Lily and Ben went to the park", "One day",
            "Tom had a red ball. He", "The sun was"};
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(GenerationRequest.of(prompts[i % prompts.length], base + 3 * i));
        }
        return out;
    }

    /** Every request completes with the tokens of a solo, undisturbed greedy run; returns the restarts seen. */
    private static int checkAll(List<GenerationRequest> requests, List<CompletableFuture<Completion>> futures)
            throws Exception {
        int restarts = 0;
        for (int i = 0; i < requests.size(); i++) {
            Completion c = futures.get(i).get(60, TimeUnit.SECONDS);
            assertArrayEquals(EngineFixtures.solo(requests.get(i)), c.tokens(), "request " + i + " (" + c.restarts()
                    + " restarts)");
            restarts += c.restarts();
        }
        return restarts;
    }

    /** The instance is released, ended in the metrics, not in the configuration, and late events for it are harmless. */
    private void checkGone(ServingEngine engine, FaultyExecutor faulty, String victim) throws Exception {
        EngineMetrics m = engine.metrics();
        assertEquals(0, m.failed(), m.toString());
        EngineMetrics.InstanceUsage usage = m.instances().stream().filter(u -> u.id().equals(victim)).findFirst()
                .orElseThrow(() -> new AssertionError(m.instances().toString()));
        assertEquals(EngineMetrics.InstanceUsage.State.ENDED, usage.state(), m.instances().toString());
        assertFalse(provider.live().stream().anyMatch(i -> i.id().equals(victim)), "the lost instance was released");
        assertFalse(engine.configuration().contains(victim), engine.configuration());
        assertTrue(m.reconfigurations().stream().anyMatch(r -> r.reason().contains("lost " + victim)),
                m.reconfigurations().toString());
        // the provider's own events for the instance, late: harmless
        Duration now = clock.now();
        provider.deliver(new InstanceEvent.Terminated(victim, now));
        provider.deliver(new InstanceEvent.PreemptionNotice(victim, now, now.plusMillis(50)));
        provider.deliver(new InstanceEvent.Terminated(victim, now));
        List<GenerationRequest> after = requests(3, 10);
        List<CompletableFuture<Completion>> fs = new ArrayList<>();
        for (GenerationRequest r : after) {
            fs.add(engine.submit(r));
        }
        checkAll(after, fs);
        assertFalse(engine.configuration().contains(victim), engine.configuration());
        assertEquals(0, engine.metrics().failed());
        assertEquals(List.of(), faulty.violations(), "the lost instance was used again");
    }

    @Test
    void aDeviceLostInAForwardStepRequeuesItsRequestsAndReplansWithoutTheInstance() throws Exception {
        Instance a = provider.add(SPOT);
        provider.add(SPOT);
        provider.add(SPOT);
        FaultyExecutor faulty = new FaultyExecutor(cpu, a.id(), FaultyExecutor.Trigger.FORWARD, 6);
        List<GenerationRequest> requests = requests(9, 20);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = engine(faulty).build()) {
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r));
            }
            int restarts = checkAll(requests, futures);
            assertTrue(faulty.fired(), "the victim's forward step must fail");
            EngineMetrics m = engine.metrics();
            assertEquals(requests.size(), m.completed(), m.toString());
            assertEquals(0, m.failed(), m.toString());
            assertTrue(restarts > 0 && m.restarts() == restarts, "restarts: " + restarts + ", metrics " + m.restarts());
            Reconfiguration lost = m.reconfigurations().stream().filter(r -> r.reason().contains("lost " + a.id()))
                    .findFirst().orElseThrow(() -> new AssertionError(m.reconfigurations().toString()));
            assertTrue(lost.interruptedRequests() > 0, lost.toString());
            assertFalse(lost.to().contains(a.id()), lost.toString());
            checkGone(engine, faulty, a.id());
        }
    }

    @Test
    void aDeviceLostDuringAMigrationRequeuesTheRequestsAndReplans() throws Exception {
        provider.add(SPOT);
        FaultyExecutor faulty = new FaultyExecutor(cpu, "late-b", FaultyExecutor.Trigger.WEIGHT_LOAD, 0);
        List<GenerationRequest> requests = requests(6, 60);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (ServingEngine engine = engine(faulty).build()) {
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r));
            }
            PreemptionTest.awaitRunning(engine, 3);
            // a second instance arrives while the first serves: the migration onto it finds it dead
            provider.deliver(new InstanceEvent.Acquired(new Instance("late-b", SPOT), clock.now()));
            int restarts = checkAll(requests, futures);
            assertTrue(faulty.fired(), "the weight load onto the new instance must fail");
            EngineMetrics m = engine.metrics();
            assertEquals(requests.size(), m.completed(), m.toString());
            assertEquals(0, m.failed(), m.toString());
            assertTrue(restarts > 0 && m.restarts() == restarts, "restarts: " + restarts + ", metrics " + m.restarts());
            checkGone(engine, faulty, "late-b");
        }
    }
}
