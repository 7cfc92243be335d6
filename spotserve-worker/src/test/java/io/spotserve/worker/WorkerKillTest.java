package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.SystemEngineClock;
import io.spotserve.engine.Token;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Issue 13, serving across real machines: a worker JVM that is SIGKILLed while the engine generates on it is a
 * preemption without notice. One pipeline runs its three stages on three worker processes; once tokens have streamed,
 * one worker is killed. No request fails: the engine re-queues them (they recompute from their committed
 * tokens), takes the dead worker out of the fleet and re-plans on the two that remain, and every request ends with the
 * same tokens as the in-process engine. Waits are bounded hang guards, never speed assertions.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class WorkerKillTest {
    private static final String TOKEN = "kill-token-0123456789abcdef";
    private static final String[] PROMPTS = {"Once upon a time", "The little dog", "Lily and Ben went to the park",
        "One day", "Tom had a red ball. He", "The sun was"};

    private static ServingEngine.Builder configure(ServingEngine.Builder b) {
        // P = 3 over three one-device workers; fallback layouts let two workers serve as P = 2 after the kill
        return b.parallelism(3, 1).maxBatch(4);
    }

    private static List<GenerationRequest> requests(int count, int maxNew) {
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(GenerationRequest.of(PROMPTS[i % PROMPTS.length], maxNew + 7 * i));
        }
        return out;
    }

    /**
     * Counts the tokens streamed to one request; opens {@code streamed} once it has seen {@code after}, and notes in
     * {@code resumed} when the first token after the kill ({@code killedAt}, set by the test) and the re-plan that
     * followed it ({@code replanned}) arrived: a token the engine committed in between came from a step that ended
     * before the kill.
     */
    private static final class Counter implements Flow.Subscriber<Token> {
        final AtomicInteger tokens = new AtomicInteger();
        final CountDownLatch streamed;
        final int after;
        final AtomicLong killedAt;
        final AtomicLong resumed;
        final BooleanSupplier replanned;

        Counter(CountDownLatch streamed, int after, AtomicLong killedAt, AtomicLong resumed, BooleanSupplier replanned) {
            this.streamed = streamed;
            this.after = after;
            this.killedAt = killedAt;
            this.resumed = resumed;
            this.replanned = replanned;
        }

        @Override
        public void onSubscribe(Flow.Subscription s) {
            s.request(Long.MAX_VALUE);
        }

        @Override
        public void onNext(Token t) {
            if (tokens.incrementAndGet() == after) {
                streamed.countDown();
            }
            if (killedAt.get() != 0 && resumed.get() == 0 && replanned.getAsBoolean()) {
                resumed.compareAndSet(0, System.nanoTime());
            }
        }

        @Override
        public void onError(Throwable t) {
        }

        @Override
        public void onComplete() {
        }
    }

    private static LlamaCheckpoint ckpt;
    private static Tokenizer tok;
    private static final List<GenerationRequest> REQUESTS = requests(6, 100);
    private static final List<GenerationRequest> LATER = requests(3, 30);
    /** The in-process engine's tokens for REQUESTS then LATER. */
    private static final List<int[]> EXPECTED = new ArrayList<>();

    @BeforeAll
    static void inProcess() throws Exception {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        tok = Tokenizer.load(SharedData.tok512(), ckpt.config().vocabSize());
        List<GenerationRequest> requests = REQUESTS;
        List<GenerationRequest> later = LATER;
        List<int[]> expected = EXPECTED;
        try (Executor cpu = new CpuExecutor(ExecutorOptions.defaults().withThreads(1))) {
            LocalInstanceProvider local = new LocalInstanceProvider(new SystemEngineClock(), null);
            for (int i = 0; i < 3; i++) {
                local.add(new InstanceType("local", 1, 16L << 20, 1, InstanceType.Market.SPOT));
            }
            try (ServingEngine engine = configure(ServingEngine.builder().model(ckpt, tok).instances(local)
                    .executor(cpu)).build()) {
                List<CompletableFuture<Completion>> fs = new ArrayList<>();
                for (GenerationRequest r : requests) {
                    fs.add(engine.submit(r));
                }
                for (GenerationRequest r : later) {
                    fs.add(engine.submit(r));
                }
                for (CompletableFuture<Completion> f : fs) {
                    expected.add(f.get(120, TimeUnit.SECONDS).tokens());
                }
            }
        }
    }

    /** Kills the middle worker (a step relayed through it fails on every worker) or the first (the step's entry). */
    @ParameterizedTest(name = "worker {0} killed")
    @ValueSource(ints = {1, 0})
    void aKilledWorkerIsAPreemptionNoRequestFailsAndServingGoesOnWithTheOthers(int killed) throws Exception {
        List<GenerationRequest> requests = REQUESTS;
        List<GenerationRequest> later = LATER;
        List<int[]> expected = EXPECTED;

        SystemEngineClock clock = new SystemEngineClock();
        try (WorkerJvms jvms = new WorkerJvms("kill-" + killed);
             // a long lease, so a busy CI machine never expires a healthy worker: the killed one is seen at once by
             // its dropped connection
             RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(WireSecurity.token(TOKEN))
                     .leaseTimeout(Duration.ofSeconds(6)).clock(clock::now).build()) {
            String token = jvms.tokenFile("token", TOKEN).toString();
            List<String> ids = new ArrayList<>();
            List<Process> processes = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                // one at a time, so each process is known by the instance id it registers as
                processes.add(jvms.start("worker" + i, "--controller", controller.address(), "--devices", "1",
                        "--device-memory", "16m", "--token-file", token, "--label", "w" + i));
                long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (controller.liveWorkers().size() < i + 1) {
                    assertTrue(System.nanoTime() < deadline, "worker " + i + " registered: " + jvms.log("worker" + i));
                    Thread.sleep(20);
                }
                List<String> live = new ArrayList<>(controller.liveWorkers());
                live.removeAll(ids);
                ids.add(live.get(0));
            }
            try (ServingEngine engine = configure(ServingEngine.builder().model(ckpt, tok).instances(controller)
                    .executor(controller.executor()).clock(clock)).build()) {
                CountDownLatch streamed = new CountDownLatch(1);
                AtomicLong killedAt = new AtomicLong();
                AtomicLong resumed = new AtomicLong();
                List<CompletableFuture<Completion>> fs = new ArrayList<>();
                // the three Acquired events may reach the engine apart (a loaded machine): it can start on a fallback
                // layout and grow to P = 3 when the last joins; the kill is made on the P = 3 configuration
                long until = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (!ids.stream().allMatch(engine.configuration()::contains)) {
                    assertTrue(System.nanoTime() < until, "the engine serves on all three workers: "
                            + engine.configuration());
                    Thread.sleep(20);
                }
                AtomicInteger configsAtKill = new AtomicInteger(Integer.MAX_VALUE);
                BooleanSupplier replanned = () -> engine.metrics().reconfigurations().size() > configsAtKill.get();
                for (GenerationRequest r : requests) {
                    fs.add(engine.submit(r, new Counter(streamed, 8, killedAt, resumed, replanned)));
                }
                assertTrue(streamed.await(120, TimeUnit.SECONDS), "tokens streamed before the kill");
                String before = engine.configuration();
                configsAtKill.set(engine.metrics().reconfigurations().size());
                String victim = ids.get(killed);
                assertTrue(before.contains(victim), "the victim serves: " + before);
                Process p = processes.get(killed);
                killedAt.set(System.nanoTime());
                p.destroyForcibly(); // SIGKILL: no notice, no goodbye
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the killed worker is gone");
                long running = fs.stream().filter(f -> !f.isDone()).count();
                assertTrue(running > 0, "requests were still generating when the worker was killed");

                for (int i = 0; i < requests.size(); i++) {
                    Completion c = fs.get(i).get(120, TimeUnit.SECONDS);
                    assertArrayEquals(expected.get(i), c.tokens(), "request " + i + " (" + c.restarts() + " restarts)");
                }
                EngineMetrics m = engine.metrics();
                assertEquals(0, m.failed(), m.toString());
                assertTrue(m.restarts() > 0, "the requests on the killed worker's pipeline recomputed: " + m);
                String after = engine.configuration();
                assertFalse(after.contains(victim), "the killed worker is out of the configuration: " + after);
                List<String> others = new ArrayList<>(ids);
                others.remove(victim);
                assertTrue(after.contains(others.get(0)) && after.contains(others.get(1)), "the others serve: " + after);
                assertEquals(others, controller.liveWorkers());

                // it keeps serving on the two that remain
                for (int i = 0; i < later.size(); i++) {
                    Completion c = engine.submit(later.get(i)).get(120, TimeUnit.SECONDS);
                    assertArrayEquals(expected.get(requests.size() + i), c.tokens(), "later request " + i);
                }
                m = engine.metrics();
                assertEquals(0, m.failed(), m.toString());
                assertEquals(requests.size() + later.size(), m.completed(), m.toString());
                System.out.printf("worker %s killed with %d requests running: first token again %.0f ms after the kill; %d "
                        + "restarts, %d reconfigurations, configuration %s -> %s%n", victim, running,
                        (resumed.get() - killedAt.get()) / 1e6, m.restarts(), m.reconfigurations().size(), before,
                        after);
            }
        }
    }
}
