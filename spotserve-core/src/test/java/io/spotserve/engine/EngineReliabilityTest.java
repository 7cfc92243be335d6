package io.spotserve.engine;

import io.spotserve.clock.EngineClock;
import io.spotserve.clock.SystemEngineClock;
import io.spotserve.clock.VirtualClock;
import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.SPOT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.Executor;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceProvider;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Regression tests for the reliability defects of issue 12, found by hostile probing; each failed before its fix.
 * Waits are hang guards (bounded), never speed assertions.
 */
class EngineReliabilityTest {
    private static final Duration CENTURIES = Duration.ofDays(300L * 365);

    private Executor executor;
    private VirtualClock clock;
    private LocalInstanceProvider provider;

    @BeforeEach
    void setUp() {
        executor = EngineFixtures.executor();
        clock = new VirtualClock(Duration.ofMillis(10), Duration.ofMillis(1));
        provider = new LocalInstanceProvider(clock, null);
    }

    @AfterEach
    void tearDown() {
        executor.close();
    }

    private ServingEngine.Builder engine(EngineClock c, InstanceProvider p) {
        return ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(p).executor(executor).clock(c)
                .drainTimeout(Duration.ZERO);
    }

    /** Defect 1: an instance's events are applied in the order the provider emitted them, whatever their dates. */
    @Test
    void eventsOfOneInstanceApplyInProviderOrder() throws Exception {
        provider.add(SPOT);
        try (ServingEngine engine = engine(clock, provider).build()) {
            GenerationRequest r = GenerationRequest.of("Once upon a time", 8);
            engine.submit(r).get(60, TimeUnit.SECONDS);
            Duration now = clock.now();
            // the Acquired is held until its (later) date; the notice that follows it must not overtake it
            Instance late = new Instance("late-0", SPOT);
            provider.deliver(new InstanceEvent.Acquired(late, now.plusSeconds(1)));
            provider.deliver(new InstanceEvent.PreemptionNotice("late-0", now, now.plusSeconds(5)));
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (provider.live().stream().anyMatch(i -> i.id().equals("late-0")) && System.nanoTime() < until) {
                Thread.sleep(10);
            }
            assertFalse(provider.live().stream().anyMatch(i -> i.id().equals("late-0")),
                    "the noticed instance is released at its deadline, not served past it");
            assertTrue(clock.now().compareTo(now.plusSeconds(5)) >= 0, "released at the deadline: " + clock.now());
            assertArrayEquals(EngineFixtures.solo(r), engine.submit(r).get(60, TimeUnit.SECONDS).tokens());
        }
    }

    /** Defect 2: a submission racing close() (slow onSubscribe, drain timeout 0) still has its future completed. */
    @Test
    void everySubmittedFutureCompletesWhenCloseRacesTheSubmit() throws Exception {
        provider.add(SPOT);
        ServingEngine engine = engine(clock, provider).build();
        CountDownLatch subscribing = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);
        Flow.Subscriber<Token> slow = subscriber(s -> {
            subscribing.countDown();
            try {
                closed.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            s.request(Long.MAX_VALUE);
        }, null);
        ExecutorService caller = Executors.newSingleThreadExecutor();
        try {
            Future<CompletableFuture<Completion>> submitted = caller.submit(
                    () -> engine.submit(GenerationRequest.of("Once upon a time", 8), slow));
            assertTrue(subscribing.await(30, TimeUnit.SECONDS));
            engine.close(); // returns once the engine thread has ended
            closed.countDown();
            CompletableFuture<Completion> f = submitted.get(30, TimeUnit.SECONDS);
            ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(30, TimeUnit.SECONDS));
            RequestFailedException cause = (RequestFailedException) e.getCause();
            assertEquals(RequestFailedException.Reason.ENGINE_CLOSED, cause.reason());
        } finally {
            closed.countDown();
            caller.shutdownNow();
            engine.close();
        }
    }

    /** Defect 3: a tiny positive temperature is sampled as its limit (greedy), and its batch-mates are unaffected. */
    @Test
    void tinyTemperatureNeitherFailsItselfNorItsBatchMates() throws Exception {
        provider.add(SPOT);
        try (ServingEngine engine = engine(clock, provider).maxBatch(4).build()) {
            List<GenerationRequest> batch = new ArrayList<>();
            batch.add(GenerationRequest.builder().prompt("Once upon a time").maxNewTokens(12).temperature(1e-40f)
                    .topP(0.9f).seed(5).build());
            batch.add(GenerationRequest.builder().prompt("The little dog").maxNewTokens(12).temperature(1e-40f)
                    .topP(1f).seed(6).build());
            batch.add(GenerationRequest.of("One day", 12));
            batch.add(GenerationRequest.builder().prompt("The sun was").maxNewTokens(12).temperature(0.8f).seed(9)
                    .build());
            List<CompletableFuture<Completion>> futures = new ArrayList<>();
            for (GenerationRequest r : batch) {
                futures.add(engine.submit(r));
            }
            for (int i = 0; i < batch.size(); i++) {
                int[] tokens = futures.get(i).get(60, TimeUnit.SECONDS).tokens();
                GenerationRequest r = batch.get(i);
                GenerationRequest greedy = GenerationRequest.of(r.prompt(), r.maxNewTokens());
                int[] expected = EngineFixtures.solo(r.sampling().temperature() < 1e-30f ? greedy : r);
                assertArrayEquals(expected, tokens, "request " + i);
            }
        }
    }

    /** Defect 4: a far-future deadline or dated arrival saturates the clock's wait and never stops the engine. */
    @Test
    void farFutureDeadlinesAndArrivalsDoNotStopTheEngine() throws Exception {
        LocalInstanceProvider real = new LocalInstanceProvider(new SystemEngineClock(), null);
        SystemEngineClock system = new SystemEngineClock();
        try (ServingEngine engine = engine(system, real).build()) {
            GenerationRequest r = GenerationRequest.builder().prompt("Once upon a time").maxNewTokens(8)
                    .timeout(CENTURIES).build();
            CompletableFuture<Completion> waiting = engine.submit(r); // no instance yet: the engine waits on its deadline
            CompletableFuture<Completion> dated = engine.submit(GenerationRequest.of("One day", 4),
                    system.now().plus(CENTURIES));
            Thread.sleep(200); // the engine thread goes idle with those two deadlines ahead
            real.add(SPOT);
            assertArrayEquals(EngineFixtures.solo(r), waiting.get(60, TimeUnit.SECONDS).tokens());
            // a timeout as long as a Duration gets saturates to a deadline that never comes
            GenerationRequest endless = GenerationRequest.builder().prompt("Tom had a red ball. He").maxNewTokens(6)
                    .timeout(Duration.ofSeconds(Long.MAX_VALUE)).build();
            assertArrayEquals(EngineFixtures.solo(endless), engine.submit(endless).get(60, TimeUnit.SECONDS).tokens());
            GenerationRequest after = GenerationRequest.of("The sun was", 6);
            assertArrayEquals(EngineFixtures.solo(after), engine.submit(after).get(60, TimeUnit.SECONDS).tokens());
            assertFalse(dated.isDone(), "the dated request waits for its arrival");
        }
    }

    /** Defect 5: a subscriber whose onSubscribe throws holds no admission capacity. */
    @Test
    void throwingOnSubscribeDoesNotConsumeQueueCapacity() throws Exception {
        provider.add(SPOT);
        IllegalStateException boom = new IllegalStateException("subscriber refuses");
        Flow.Subscriber<Token> refusing = subscriber(s -> {
            throw boom;
        }, null);
        try (ServingEngine engine = engine(clock, provider).queueCapacity(1).build()) {
            for (int i = 0; i < 3; i++) {
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> engine.submit(GenerationRequest.of("One day", 4), refusing));
                assertSame(boom, e);
            }
            GenerationRequest r = GenerationRequest.of("Once upon a time", 8);
            assertArrayEquals(EngineFixtures.solo(r), engine.submit(r).get(60, TimeUnit.SECONDS).tokens());
        }
    }

    /** Defect 6: a build() that fails leaves no thread behind (neither the engine's nor its executor's). */
    @Test
    void failedBuildLeavesNoThreadBehind() throws Exception {
        InstanceProvider broken = new InstanceProvider() {
            @Override
            public void start(Consumer<InstanceEvent> listener) {
                throw new ArithmeticException("long overflow");
            }

            @Override
            public void requestOnDemand(int count) {
            }

            @Override
            public void release(String instanceId) {
            }

            @Override
            public void close() {
            }
        };
        long before = spotserveThreads();
        for (int i = 0; i < 3; i++) {
            // no executor given: the engine creates (and owns) one, with worker threads
            ServingEngine.Builder b = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(broken)
                    .clock(clock);
            assertThrows(ArithmeticException.class, b::build);
        }
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (spotserveThreads() > before && System.nanoTime() < until) {
            Thread.sleep(10);
        }
        long after = spotserveThreads();
        assertTrue(after <= before, "threads left by failed builds: " + before + " before, " + after + " after");
    }

    private static long spotserveThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && t.getName().startsWith("spotserve")).count();
    }

    /** Defect 7: instances too small for the model fail requests with a specific reason once their deadline passes. */
    @Test
    void instancesTooSmallFailRequestsWithASpecificReason() throws Exception {
        provider.add(new InstanceType("tiny.1x", 1, 64L << 10, 0.1, InstanceType.Market.SPOT));
        try (ServingEngine engine = engine(clock, provider).build()) {
            CompletableFuture<Completion> f = engine.submit(GenerationRequest.builder().prompt("Once upon a time")
                    .maxNewTokens(8).timeout(Duration.ofSeconds(2)).build());
            ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(60, TimeUnit.SECONDS));
            RequestFailedException cause = (RequestFailedException) e.getCause();
            assertEquals("NO_CAPACITY", cause.reason().name(), cause.getMessage());
            assertTrue(cause.getMessage().contains("no configuration of the 1 usable instances"), cause.getMessage());
        }
    }

    /** Defect 9: a subscriber that throws in onNext fails the request with that cause; it is not a cancellation. */
    @Test
    void onNextThrowingFailsTheRequestWithItsCause() throws Exception {
        provider.add(SPOT);
        IllegalStateException boom = new IllegalStateException("onNext refuses");
        try (ServingEngine engine = engine(clock, provider).build()) {
            CompletableFuture<Completion> f = engine.submit(GenerationRequest.of("Once upon a time", 16),
                    subscriber(s -> s.request(Long.MAX_VALUE), boom));
            assertSame(boom, causeOf(f));
            GenerationRequest r = GenerationRequest.of("One day", 8);
            assertArrayEquals(EngineFixtures.solo(r), engine.submit(r).get(60, TimeUnit.SECONDS).tokens());
        }
    }

    /** Defect 9: request(n <= 0) fails the request with the rule 3.9 IllegalArgumentException as its cause. */
    @Test
    void requestOfZeroFailsTheRequestWithRule39() throws Exception {
        provider.add(SPOT);
        try (ServingEngine engine = engine(clock, provider).build()) {
            CompletableFuture<Completion> f = engine.submit(GenerationRequest.of("Once upon a time", 16),
                    subscriber(s -> s.request(0), null));
            Throwable cause = causeOf(f);
            assertTrue(cause instanceof IllegalArgumentException && cause.getMessage().contains("3.9"),
                    String.valueOf(cause));
        }
    }

    /** The cause behind the request's failure (the future must fail, not be cancelled). */
    private static Throwable causeOf(CompletableFuture<Completion> f) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(60, TimeUnit.SECONDS));
        RequestFailedException failed = (RequestFailedException) e.getCause();
        assertEquals("SUBSCRIBER_FAILED", failed.reason().name(), failed.getMessage());
        return failed.getCause();
    }

    private static Flow.Subscriber<Token> subscriber(Consumer<Flow.Subscription> onSubscribe, RuntimeException onNext) {
        return new Flow.Subscriber<>() {
            @Override
            public void onSubscribe(Flow.Subscription s) {
                onSubscribe.accept(s);
            }

            @Override
            public void onNext(Token item) {
                if (onNext != null) {
                    throw onNext;
                }
            }

            @Override
            public void onError(Throwable t) {
            }

            @Override
            public void onComplete() {
            }
        };
    }
}
