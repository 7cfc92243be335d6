package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.clock.SystemEngineClock;
import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.Reconfiguration;
import io.spotserve.engine.ServingEngine;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import io.spotserve.testing.SharedData;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 13, all three membership changes of a spot fleet on real worker processes in one run: a worker gets a SIGTERM
 * (its preemption notice, `--notices signal`), another is SIGKILLed, and a new worker JVM registers, while a P = 2
 * pipeline across two workers generates. The notice moves the pipeline off the noticed worker with its KV caches, the
 * kill makes its requests recompute from their committed tokens, the newcomer joins the configuration; every request
 * ends with the in-process engine's greedy tokens, and every streamed token arrives exactly once (nothing is repeated
 * when a request resumes). Waits are bounded hang guards, never speed assertions.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class WorkerChaosTest {
    private static final String TOKEN = "chaos-token-0123456789abcdef";
    private static final String[] PROMPTS = {"Once upon a time", "The little dog", "Lily and Ben went to the park",
        "One day"};

    private static ServingEngine.Builder configure(ServingEngine.Builder b) {
        // P = 2 over one-device workers; fallback layouts let a single survivor serve as P = 1
        return b.parallelism(2, 1).maxBatch(4);
    }

    private static List<GenerationRequest> requests() {
        List<GenerationRequest> out = new ArrayList<>();
        // enough work (six waves of four requests) that requests still run when the notice's 1 s of grace is over,
        // even where steps over the workers' step streams take well under a millisecond
        for (int i = 0; i < 6 * PROMPTS.length; i++) {
            out.add(GenerationRequest.of(PROMPTS[i % PROMPTS.length], 380 + 11 * (i % 8)));
        }
        return out;
    }

    @Test
    void aNoticeAKillAndANewWorkerInOneRunLoseAndRepeatNothing() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        Tokenizer tok = Tokenizer.load(SharedData.tok512(), ckpt.config().vocabSize());
        List<GenerationRequest> requests = requests();
        List<int[]> expected = new ArrayList<>();
        try (Executor cpu = new CpuExecutor(ExecutorOptions.defaults().withThreads(1))) {
            LocalInstanceProvider local = new LocalInstanceProvider(new SystemEngineClock(), null);
            local.add(new InstanceType("local", 1, 16L << 20, 1, InstanceType.Market.SPOT));
            local.add(new InstanceType("local", 1, 16L << 20, 1, InstanceType.Market.SPOT));
            try (ServingEngine engine = configure(ServingEngine.builder().model(ckpt, tok).instances(local)
                    .executor(cpu)).build()) {
                List<CompletableFuture<Completion>> fs = new ArrayList<>();
                for (GenerationRequest r : requests) {
                    fs.add(engine.submit(r));
                }
                for (CompletableFuture<Completion> f : fs) {
                    expected.add(f.get(120, TimeUnit.SECONDS).tokens());
                }
            }
        }

        SystemEngineClock clock = new SystemEngineClock();
        try (WorkerJvms jvms = new WorkerJvms("chaos");
             RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(WireSecurity.token(TOKEN))
                     // a long lease, so a busy machine never expires a healthy worker: the killed one is seen at once
                     // by its dropped connection
                     .leaseTimeout(Duration.ofSeconds(30)).clock(clock::now).build()) {
            String token = jvms.tokenFile("token", TOKEN).toString();
            List<String> ids = new ArrayList<>();
            List<Process> processes = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                // one at a time, so each process is known by the instance id it registers as; each takes a SIGTERM as
                // its preemption notice with 1 s of grace
                processes.add(jvms.start("worker" + i, "--controller", controller.address(), "--devices", "1",
                        "--device-memory", "16m", "--token-file", token, "--label", "w" + i, "--notices", "signal",
                        "--notice-grace", "1"));
                ids.add(awaitNewWorker(controller, ids, jvms, "worker" + i));
            }
            try (ServingEngine engine = configure(ServingEngine.builder().model(ckpt, tok).instances(controller)
                    .executor(controller.executor()).clock(clock)).build()) {
                CountDownLatch streamed = new CountDownLatch(1);
                List<TokenCollector> collectors = new ArrayList<>();
                List<CompletableFuture<Completion>> fs = new ArrayList<>();
                for (GenerationRequest r : requests) {
                    TokenCollector c = new TokenCollector(streamed, 8);
                    collectors.add(c);
                    fs.add(engine.submit(r, c));
                }
                assertTrue(streamed.await(120, TimeUnit.SECONDS), "tokens streamed before the notice");
                String first = engine.configuration();
                List<String> serving = new ArrayList<>();
                for (String id : ids) {
                    if (first.contains(id)) {
                        serving.add(id);
                    }
                }
                assertEquals(2, serving.size(), "one P = 2 pipeline on two of the three workers: " + first);

                // 1. a notice: SIGTERM to the first serving worker; the pipeline moves off it with its caches
                String noticed = serving.get(0);
                processes.get(ids.indexOf(noticed)).destroy();
                await(() -> !engine.configuration().contains(noticed) && engine.configuration().contains("@"), 60,
                        "the pipeline moved off " + noticed);
                assertTrue(fs.stream().anyMatch(f -> !f.isDone()), "requests still ran after the notice");

                // 2. a kill: SIGKILL to a worker of the new pipeline; its requests recompute
                String now = engine.configuration();
                String victim = ids.stream().filter(id -> !id.equals(noticed) && now.contains(id)).findFirst()
                        .orElseThrow(() -> new AssertionError("no serving worker to kill in " + now));
                Process p = processes.get(ids.indexOf(victim));
                p.destroyForcibly();
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the killed worker is gone");
                boolean runningAtKill = fs.stream().anyMatch(f -> !f.isDone());

                // 3. a new worker registers and joins
                jvms.start("worker3", "--controller", controller.address(), "--devices", "1", "--device-memory", "16m",
                        "--token-file", token, "--label", "w3");
                String newcomer = awaitNewWorker(controller, ids, jvms, "worker3");

                for (int i = 0; i < requests.size(); i++) {
                    Completion c = fs.get(i).get(120, TimeUnit.SECONDS);
                    assertArrayEquals(expected.get(i), c.tokens(), "request " + i + " (" + c.restarts() + " restarts)");
                    int[] streamedTokens = collectors.get(i).tokens.stream().mapToInt(Integer::intValue).toArray();
                    assertArrayEquals(c.tokens(), streamedTokens, "request " + i + ": each token streamed exactly once");
                }
                await(() -> engine.configuration().contains(newcomer), 60, "the new worker " + newcomer + " joins");
                EngineMetrics m = engine.metrics();
                assertEquals(0, m.failed(), m.toString());
                assertEquals(requests.size(), m.completed(), m.toString());
                assertEquals(1, m.notices(), m.toString());
                List<String> reasons = m.reconfigurations().stream().map(Reconfiguration::reason).toList();
                assertTrue(reasons.stream().anyMatch(r -> r.contains("notice " + noticed)), reasons.toString());
                assertTrue(reasons.stream().anyMatch(r -> r.contains(victim)), reasons.toString());
                assertTrue(m.migrations() > 0, "the notice carried KV caches to the survivors: " + m);
                if (runningAtKill) {
                    assertTrue(m.restarts() > 0, "requests on the killed worker recomputed: " + m);
                }
                String last = engine.configuration();
                assertFalse(last.contains(noticed) || last.contains(victim), last);
                System.out.printf("chaos: notice %s, kill %s (requests running: %s), newcomer %s; %d reconfigurations,"
                        + " %d resumed with their cache, %d restarts; %s%n", noticed, victim, runningAtKill, newcomer,
                        reasons.size(), m.migrations(), m.restarts(), reasons);
            }
        }
    }

    /** Waits for one more worker than {@code known} to register; returns its instance id. */
    private static String awaitNewWorker(RemoteInstanceProvider controller, List<String> known, WorkerJvms jvms,
                                         String label) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            List<String> live = new ArrayList<>(controller.liveWorkers());
            live.removeAll(known);
            if (!live.isEmpty()) {
                return live.get(0);
            }
            assertTrue(System.nanoTime() < deadline, label + " registered: " + jvms.log(label));
            Thread.sleep(20);
        }
    }

    private static void await(BooleanSupplier condition, int seconds, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(seconds).toNanos();
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, what + " within " + seconds + " s");
            Thread.sleep(10);
        }
    }
}
