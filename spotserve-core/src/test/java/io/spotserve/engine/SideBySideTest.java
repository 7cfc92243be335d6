package io.spotserve.engine;

import io.spotserve.clock.SystemEngineClock;
import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/**
 * Pipelines compute side by side: a forward step of one pipeline runs on its own thread, and the engine keeps serving
 * the other pipelines meanwhile. Load-independent: a pipeline is blocked outright, not merely slow.
 */
class SideBySideTest {
    /** One device of 32 MiB: one P1M1 pipeline per instance. */
    private static final InstanceType ONE = new InstanceType("local.1x", 1, 32L << 20, 1.0, InstanceType.Market.SPOT);

    /** An executor whose pipelines on devices matching {@code blocked} wait at {@code gate} in every forward step. */
    private static Executor gated(Executor real, Predicate<String> blocked, CountDownLatch gate) {
        return (Executor) Proxy.newProxyInstance(Executor.class.getClassLoader(), new Class<?>[] {Executor.class},
                (proxy, m, args) -> {
                    Object out = invoke(real, m, args);
                    if (!m.getName().equals("createPipeline")) {
                        return out;
                    }
                    Pipeline p = (Pipeline) out;
                    boolean stop = blocked.test(p.device(0, 0).id().instance());
                    return Proxy.newProxyInstance(Pipeline.class.getClassLoader(), new Class<?>[] {Pipeline.class},
                            (pp, pm, pargs) -> {
                                if (stop && pm.getName().equals("forward")) {
                                    assertTrue(gate.await(60, TimeUnit.SECONDS), "gate never opened");
                                }
                                return invoke(p, pm, pargs);
                            });
                });
    }

    private static Object invoke(Object target, java.lang.reflect.Method m, Object[] args) throws Throwable {
        try {
            return m.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /** With pipeline 0 stuck in a step, the other pipeline's request still completes; then both finish, as solo. */
    @Test
    void aBlockedPipelineDoesNotHoldUpTheOthers() throws Exception {
        Executor real = EngineFixtures.executor();
        CountDownLatch gate = new CountDownLatch(1);
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        provider.add(ONE);
        provider.add(ONE);
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(gated(real, "local-0"::equals, gate)).clock(clock).maxBatch(1)
                .drainTimeout(Duration.ZERO).build()) {
            List<GenerationRequest> requests = List.of(GenerationRequest.of("Once upon a time", 24),
                    GenerationRequest.of("The little dog", 24));
            List<CompletableFuture<Completion>> futures = new ArrayList<>();
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r)); // B = 1: one request per pipeline
            }
            CompletableFuture<Object> first = CompletableFuture.anyOf(futures.toArray(new CompletableFuture[0]));
            first.get(60, TimeUnit.SECONDS); // hang guard: with pipelines stepped in turn this never completes
            long done = futures.stream().filter(CompletableFuture::isDone).count();
            assertEquals(1, done, "exactly the request on the free pipeline finished while the other was blocked");
            assertFalse(gate.getCount() == 0);
            gate.countDown();
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).get(60, TimeUnit.SECONDS).tokens(),
                        "request " + i);
            }
            assertEquals(2, engine.configuration().split("@").length - 1, engine.configuration());
        } finally {
            gate.countDown();
            real.close();
        }
    }

    /**
     * On the real clock (steps in flight on their own threads while the engine applies events), a preemption with
     * grace and one without lose nothing: every output equals the solo oracle.
     */
    @Test
    void preemptionsWhileStepsAreInFlightLoseNothing() throws Exception {
        Executor executor = EngineFixtures.executor();
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        provider.add(ONE);
        provider.add(ONE);
        provider.add(ONE);
        List<GenerationRequest> requests = EngineFixtures.requests(77, 9, 60, true);
        try (ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                .executor(executor).clock(clock).maxBatch(2).drainTimeout(Duration.ZERO).build()) {
            List<CompletableFuture<Completion>> futures = new ArrayList<>();
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r));
            }
            PreemptionTest.awaitRunning(engine, 2);
            provider.preempt("local-0", Duration.ofMillis(100));
            PreemptionTest.awaitRunning(engine, 1);
            provider.kill("local-1");
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).get(60, TimeUnit.SECONDS).tokens(),
                        "request " + i);
            }
            assertEquals(requests.size(), engine.metrics().completed());
        } finally {
            executor.close();
        }
    }
}
