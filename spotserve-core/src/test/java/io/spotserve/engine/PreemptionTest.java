package io.spotserve.engine;

import io.spotserve.clock.VirtualClock;
import io.spotserve.exec.ShardLayout;

import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.ON_DEMAND;
import static io.spotserve.engine.EngineFixtures.SPOT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.Executor;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Slice 2: instances come and go while requests run. Whatever happens, every accepted request completes exactly
 * once, its stream carries each token exactly once and in order, and its tokens equal a solo, uninterrupted
 * run (greedy), because requests resume from their committed tokens.
 */
class PreemptionTest {
    private Executor executor;
    private VirtualClock clock;
    private LocalInstanceProvider provider;

    @BeforeEach
    void setUp() {
        executor = EngineFixtures.executor();
        clock = new VirtualClock(Duration.ofMillis(10), Duration.ofMillis(1));
        provider = new LocalInstanceProvider(clock, ON_DEMAND);
    }

    @AfterEach
    void tearDown() {
        executor.close();
    }

    /** A stream subscriber that checks it sees indices 0, 1, 2, ... once each and exactly one terminal signal. */
    static final class Recorder implements Flow.Subscriber<Token> {
        final List<Integer> ids = new CopyOnWriteArrayList<>();
        final List<String> problems = new CopyOnWriteArrayList<>();
        final AtomicInteger terminal = new AtomicInteger();
        /** Runs once at the next token, on the engine thread (all demand is requested up front). */
        private final java.util.concurrent.atomic.AtomicReference<Runnable> atNextToken =
                new java.util.concurrent.atomic.AtomicReference<>();

        @Override
        public void onSubscribe(Flow.Subscription s) {
            s.request(Long.MAX_VALUE);
        }

        @Override
        public void onNext(Token t) {
            if (t.index() != ids.size()) {
                problems.add("token index " + t.index() + " after " + ids.size() + " tokens");
            }
            ids.add(t.id());
            Runnable r = atNextToken.getAndSet(null);
            if (r != null) {
                r.run();
            }
        }

        /**
         * Runs {@code action} at this request's next token, between two engine steps, and waits (bounded) until it
         * ran: a test thread that reads the clock and posts an event itself can be descheduled while the engine's
         * virtual time runs past a short grace period.
         */
        void atNextToken(Runnable action) {
            java.util.concurrent.CompletableFuture<Void> ran = new java.util.concurrent.CompletableFuture<>();
            atNextToken.set(() -> {
                try {
                    action.run();
                    ran.complete(null);
                } catch (RuntimeException e) {
                    ran.completeExceptionally(e);
                }
            });
            ran.orTimeout(60, java.util.concurrent.TimeUnit.SECONDS).join();
        }

        @Override
        public void onError(Throwable t) {
            terminal.incrementAndGet();
            problems.add("onError " + t);
        }

        @Override
        public void onComplete() {
            terminal.incrementAndGet();
        }
    }

    private ServingEngine build(int stages, int shards) {
        return ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider).executor(executor).clock(clock)
                .parallelism(stages, shards).maxBatch(3).maxBatchTokens(16).build();
    }

    private void checkAll(ServingEngine engine, List<GenerationRequest> requests, List<CompletableFuture<Completion>> futures,
                          List<Recorder> recorders) {
        int restarts = 0;
        for (int i = 0; i < requests.size(); i++) {
            Completion c = futures.get(i).join();
            int[] expected = EngineFixtures.solo(requests.get(i));
            assertArrayEquals(expected, c.tokens(), "request " + i + " (" + c.restarts() + " restarts)");
            Recorder rec = recorders.get(i);
            assertTrue(rec.problems.isEmpty(), rec.problems.toString());
            assertEquals(1, rec.terminal.get());
            assertArrayEquals(expected, rec.ids.stream().mapToInt(Integer::intValue).toArray());
            restarts += c.restarts();
        }
        EngineMetrics m = engine.metrics();
        assertEquals(requests.size(), m.completed());
        assertEquals(0, m.failed());
        assertEquals(restarts, m.restarts());
    }

    @Test
    void scriptedPreemptionsGraceZeroSimultaneousNoticesAndAnOutage() {
        Instance a = provider.add(SPOT);
        Instance b = provider.add(SPOT);
        Instance c = provider.add(SPOT);
        List<GenerationRequest> requests = EngineFixtures.requests(3, 12, 40, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        List<Recorder> recorders = new ArrayList<>();
        try (ServingEngine engine = build(1, 2)) {
            ms(30, new InstanceEvent.PreemptionNotice(a.id(), ms(30), ms(30)));      // grace 0
            ms(60, new InstanceEvent.PreemptionNotice(b.id(), ms(60), ms(100)));     // two notices at once
            ms(60, new InstanceEvent.PreemptionNotice(c.id(), ms(60), ms(200)));
            ms(60, new InstanceEvent.PreemptionNotice(c.id(), ms(60), ms(200)));     // duplicate
            ms(70, new InstanceEvent.Terminated("never-seen", ms(70)));             // unknown
            // every spot instance is gone from 60 ms to 400 ms: requests wait, then resume
            Instance d = new Instance("spot-late-1", SPOT);
            ms(400, new InstanceEvent.Acquired(d, ms(400)));
            ms(400, new InstanceEvent.Acquired(d, ms(400)));                        // duplicate
            ms(500, new InstanceEvent.Acquired(new Instance("spot-late-2", SPOT), ms(500)));
            ms(700, new InstanceEvent.Terminated(d.id(), ms(700)));                 // no grace at all
            ms(710, new InstanceEvent.Terminated(d.id(), ms(710)));                 // late duplicate
            ms(720, new InstanceEvent.Acquired(new Instance("spot-late-3", SPOT), ms(720)));
            for (GenerationRequest r : requests) {
                Recorder rec = new Recorder();
                recorders.add(rec);
                futures.add(engine.submit(r, rec));
            }
            checkAll(engine, requests, futures, recorders);
            EngineMetrics m = engine.metrics();
            assertTrue(m.restarts() > 0, "the script must interrupt running requests");
            assertTrue(m.reconfigurations().size() >= 4, m.reconfigurations().toString());
        }
        assertTrue(provider.live().isEmpty(), "close released every instance: " + provider.live());
    }

    @ParameterizedTest(name = "survivor {0}")
    @ValueSource(strings = {"same layout P1M2", "other layout P1M1"})
    void noticeWithGraceMovesKvCachesInsteadOfRecomputing(String survivor) {
        InstanceType single = new InstanceType("local.1x", 1, 32L << 20, 1.0, InstanceType.Market.SPOT);
        Instance a = provider.add(SPOT);
        provider.add(survivor.startsWith("same") ? SPOT : single);
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            requests.add(GenerationRequest.builder().prompt(i % 2 == 0 ? "Once upon a time" : "The little dog")
                    .maxNewTokens(300 + i).build()); // long enough to still run when the notice is delivered
        }
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        List<Recorder> recorders = new ArrayList<>();
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).parallelism(1, 2).maxBatch(4).build()) {
            for (GenerationRequest r : requests) {
                Recorder rec = new Recorder();
                recorders.add(rec);
                futures.add(engine.submit(r, rec));
            }
            // the notice comes while all four run (300+ steps of 10 ms each; the grace is 100 ms)
            awaitRunning(engine, requests.size());
            recorders.get(0).atNextToken(() -> provider.deliver(
                    new InstanceEvent.PreemptionNotice(a.id(), clock.now(), clock.now().plusMillis(100))));
            checkAll(engine, requests, futures, recorders);
            EngineMetrics m = engine.metrics();
            assertEquals(0, m.restarts(), "every request on the noticed instance moved with its KV cache");
            assertEquals(1, m.notices(), m.toString());
            assertEquals(2, m.instances().size(), m.instances().toString());
            assertEquals(a.id(), m.instances().get(0).id());
            assertEquals(InstanceType.Market.SPOT, m.instances().get(0).market());
            // the noticed instance is gone after its deadline (or still noticed); the survivor runs unnoticed
            assertTrue(m.instances().get(0).state() != EngineMetrics.InstanceUsage.State.RUNNING, m.instances().toString());
            assertEquals(EngineMetrics.InstanceUsage.State.RUNNING, m.instances().get(1).state());
            Reconfiguration off = m.reconfigurations().stream().filter(r -> r.reason().contains("notice " + a.id()))
                    .findFirst().orElseThrow(() -> new AssertionError(m.reconfigurations().toString()));
            // the requests on the noticed instance's pipeline moved (those already on the survivor stayed put)
            assertTrue(off.resumedRequests() >= 1 && off.resumedRequests() <= requests.size(), off.toString());
            assertEquals(m.reconfigurations().stream().mapToInt(Reconfiguration::resumedRequests).sum(), m.migrations(),
                    m.toString());
            assertEquals(0, off.interruptedRequests(), off.toString());
            assertEquals(0, off.bytesLoaded(), "a surviving replica or the noticed instance serves every weight: " + off);
            // KV bytes: whole positions of the whole model, at most prompt + generated positions per request
            long perPosition = CHECKPOINT.config().kvBytesPerPosition();
            long kvBound = 0;
            for (CompletableFuture<Completion> f : futures) {
                kvBound += (long) (f.join().promptLength() + f.join().tokens().length) * perPosition;
            }
            long weights = ShardLayout.split(CHECKPOINT.config(), 1, 1).weightBytes(0, 0);
            if (survivor.startsWith("same")) {
                // the survivor already holds the same shards: weights stay in place, only KV caches move
                assertTrue(off.bytesMigrated() > 0 && off.bytesMigrated() % perPosition == 0 && off.bytesMigrated() <= kvBound,
                        off.toString());
                assertTrue(off.bytesKept() >= weights, off.toString());
            } else {
                // the new single-GPU survivor holds nothing: all weights move from the noticed instance
                assertTrue(off.bytesMigrated() >= weights, off.toString());
            }
            assertTrue(off.bytesMigrated() <= off.plannedBytesMoved() + EngineFixtures.replicatedNormSlack(2, 2, 1), off.toString());
            long moved = m.reconfigurations().stream().mapToLong(Reconfiguration::bytesMigrated).sum();
            assertEquals(m.migratedBytes(), moved, m.reconfigurations().toString());
        }
    }

    /** Seeds 4 and 5 charge migrations to the clock (bytes / bandwidth), so many events land mid-migration. */
    @ParameterizedTest(name = "seed {0}, migration {1} B/s")
    @CsvSource({"1, 0", "2, 0", "3, 0", "4, 20000000", "5, 5000000"})
    void chaos(long seed, long migrationBytesPerSecond) {
        clock = new VirtualClock(Duration.ofMillis(10), Duration.ofMillis(1), migrationBytesPerSecond);
        provider = new LocalInstanceProvider(clock, ON_DEMAND);
        Random rnd = new Random(seed);
        InstanceType tiny = new InstanceType("tiny", 1, 1L << 20, 0.5, InstanceType.Market.SPOT);
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            ids.add(provider.add(SPOT).id());
        }
        int stages = 1 + rnd.nextInt(2);
        int shards = 1 + rnd.nextInt(2);
        List<GenerationRequest> requests = EngineFixtures.requests(seed, 30, 32, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        List<Recorder> recorders = new ArrayList<>();
        try (ServingEngine engine = build(stages, shards)) {
            long t = 0;
            int events = 300;
            for (int e = 0; e < events; e++) {
                t += 1 + rnd.nextInt(25);
                Duration at = Duration.ofMillis(t);
                String victim = ids.get(rnd.nextInt(ids.size()));
                int kind = rnd.nextInt(10);
                InstanceEvent ev = switch (kind) {
                    case 0, 1, 2 -> {
                        Instance fresh = new Instance("chaos-" + e, rnd.nextInt(8) == 0 ? tiny : SPOT);
                        ids.add(fresh.id());
                        yield new InstanceEvent.Acquired(fresh, at);
                    }
                    case 3, 4 -> new InstanceEvent.PreemptionNotice(victim, at, at.plusMillis(rnd.nextInt(3) * 40L));
                    case 5 -> new InstanceEvent.PreemptionNotice(victim, at, at);
                    case 6 -> new InstanceEvent.Terminated(victim, at);
                    case 7 -> new InstanceEvent.Terminated("unknown-" + e, at);
                    case 8 -> new InstanceEvent.PreemptionNotice("unknown-" + e, at, at.plusMillis(10));
                    default -> new InstanceEvent.Acquired(new Instance(victim, SPOT), at); // duplicate or late
                };
                provider.deliver(ev);
            }
            // afterwards the market calms down: two fresh instances stay
            Duration end = Duration.ofMillis(t + 1);
            provider.deliver(new InstanceEvent.Acquired(new Instance("calm-1", SPOT), end));
            provider.deliver(new InstanceEvent.Acquired(new Instance("calm-2", SPOT), end));
            for (GenerationRequest r : requests) {
                Recorder rec = new Recorder();
                recorders.add(rec);
                futures.add(engine.submit(r, rec));
            }
            checkAll(engine, requests, futures, recorders);
            assertTrue(engine.metrics().restarts() > 0, "chaos must interrupt running requests");
            for (Reconfiguration r : engine.metrics().reconfigurations()) {
                int pipelines = r.to().split("P", -1).length - 1;
                assertTrue(r.bytesMigrated() <= r.plannedBytesMoved()
                        + EngineFixtures.replicatedNormSlack(shards, shards, pipelines), r.toString());
            }
        }
    }

    static void awaitRunning(ServingEngine engine, int running) {
        long until = System.nanoTime() + 30_000_000_000L;
        while (engine.metrics().running() < running) {
            if (System.nanoTime() > until) {
                throw new AssertionError("fewer than " + running + " requests started: " + engine.metrics());
            }
            Thread.onSpinWait();
        }
    }

    private Duration ms(long millis) {
        return Duration.ofMillis(millis);
    }

    private void ms(long millis, InstanceEvent e) {
        provider.deliver(e);
    }
}
