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
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.TestPipelines;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import io.spotserve.testing.SharedData;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The engine on workers of one device each with {@code tensorGroupsSpanWorkers(true)}: a fixed P2M2 layout puts each
 * stage's two shards on two workers (every tensor group spans workers, its members exchange partials at each reduce
 * point), and the greedy completions are token-identical to a solo CPU run; a member closed mid-generation is a lost
 * instance like any other: the engine re-plans on the three that remain, the requests on its pipeline recompute
 * from their committed tokens and every request completes exactly once with the solo run's tokens. Without the option
 * the same set-up never splits a group (every pipeline M = 1, no partials on the wire). In-JVM workers: seconds.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RemoteTensorGroupEngineTest {
    private static final WireSecurity TOKEN = WireSecurity.token("tgroup-engine-token-0123456789ab");
    private static final String[] PROMPTS = {"Once upon a time", "The little dog", "Lily and Ben went to the park",
        "One day", "Tom had a red ball. He", "The sun was"};
    private static final Pattern PIPELINE = Pattern.compile("P(\\d+)M(\\d+)@");
    private static LlamaCheckpoint ckpt;
    private static Tokenizer tok;

    @BeforeAll
    static void load() throws Exception {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        tok = Tokenizer.load(SharedData.tok512(), ckpt.config().vocabSize());
    }

    private static List<GenerationRequest> requests(int count, int maxNew) {
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(GenerationRequest.of(PROMPTS[i % PROMPTS.length], maxNew + 13 * i));
        }
        return out;
    }

    /** The oracle: each request alone on an unsharded CPU pipeline, one position per call, greedy, BOS ends it. */
    private static List<int[]> solo(List<GenerationRequest> requests) {
        List<int[]> out = new ArrayList<>();
        try (Executor cpu = new CpuExecutor(new ExecutorOptions(1, true))) {
            Pipeline p = TestPipelines.loaded(cpu, ckpt, ShardLayout.of(ckpt.config(), 1, 1), "solo", 1);
            for (GenerationRequest r : requests) {
                out.add(TestPipelines.greedyAfterPrompt(p, tok.encode(r.prompt(), true, false), r.maxNewTokens()));
            }
            p.close();
        }
        return out;
    }

    private static WorkerProcess worker(RemoteInstanceProvider controller, int i) throws Exception {
        return WorkerProcess.builder().controller(controller.address()).devices(1).deviceMemory(32L << 20)
                .security(TOKEN).warmUp(0).label("w" + i).executor(new CpuExecutor(new ExecutorOptions(1, true)))
                .build().start();
    }

    private static RemoteInstanceProvider controller(SystemEngineClock clock, boolean span) throws Exception {
        // a long lease, so a busy machine never expires a healthy worker: a closed one is seen by its dropped
        // connection
        return RemoteInstanceProvider.builder().security(TOKEN).leaseTimeout(Duration.ofSeconds(6)).clock(clock::now)
                .tensorGroupsSpanWorkers(span).build();
    }

    /** Four one-device workers, registered one at a time so {@code ids.get(i)} is worker i's instance id. */
    private static List<WorkerProcess> workers(RemoteInstanceProvider controller, List<String> ids) throws Exception {
        List<WorkerProcess> ws = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            ws.add(worker(controller, i));
            ids.add(ws.get(i).instanceId());
        }
        return ws;
    }

    private static ServingEngine engine(RemoteInstanceProvider controller, SystemEngineClock clock) {
        // P2M2 on four one-device workers: both stages' groups span two workers; fallback layouts serve three
        return ServingEngine.builder().model(ckpt, tok).instances(controller).executor(controller.executor())
                .clock(clock).parallelism(2, 2).maxBatch(4).build();
    }

    /** Waits (bounded) until the engine serves on all of {@code ids}. */
    private static void awaitServing(ServingEngine engine, List<String> ids) throws InterruptedException {
        long until = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!ids.stream().allMatch(engine.configuration()::contains)) {
            assertTrue(System.nanoTime() < until, "the engine serves on all four workers: " + engine.configuration());
            Thread.sleep(20);
        }
    }

    /** The largest tensor degree M among the pipelines of a description such as {@code [P2M2@[w0, w1, w2, w3]]}. */
    private static int largestM(String configuration) {
        int most = 0;
        Matcher m = PIPELINE.matcher(configuration);
        while (m.find()) {
            most = Math.max(most, Integer.parseInt(m.group(2)));
        }
        return most;
    }

    @Test
    void groupsSpanningWorkersServeAsOneProcessAndSurviveAMemberClosedMidGeneration() throws Exception {
        List<GenerationRequest> first = requests(4, 30);
        List<GenerationRequest> second = requests(8, 150);
        List<GenerationRequest> all = new ArrayList<>(first);
        all.addAll(second);
        List<int[]> expected = solo(all);
        SystemEngineClock clock = new SystemEngineClock();
        List<String> ids = new ArrayList<>();
        List<WorkerProcess> ws = new ArrayList<>();
        try (RemoteInstanceProvider controller = controller(clock, true)) {
            try {
                ws.addAll(workers(controller, ids));
                assertTrue(controller.executor().tensorGroupsSpanInstances());
                try (ServingEngine engine = engine(controller, clock)) {
                    awaitServing(engine, ids);
                    String before = engine.configuration();
                    assertTrue(before.matches("\\[P2M2@\\[[^]]*]]"), "one P2M2 pipeline over the four workers: "
                            + before);
                    RemoteExecutor ex = controller.executor();
                    long reduceBefore = ex.reduceBytes();
                    List<CompletableFuture<Completion>> fs = new ArrayList<>();
                    for (GenerationRequest r : first) {
                        fs.add(engine.submit(r));
                    }
                    for (int i = 0; i < first.size(); i++) {
                        assertArrayEquals(expected.get(i), fs.get(i).get(60, TimeUnit.SECONDS).tokens(),
                                "request " + i);
                    }
                    assertTrue(ex.reduceBytes() > reduceBefore, "the groups' partials crossed the wire");
                    assertEquals(before, engine.configuration(), "nothing re-planned while all four served");

                    // a member of both stages' groups' pipeline closes while requests generate
                    CountDownLatch streamed = new CountDownLatch(1);
                    List<TokenCollector> collectors = new ArrayList<>();
                    List<CompletableFuture<Completion>> more = new ArrayList<>();
                    for (GenerationRequest r : second) {
                        TokenCollector c = new TokenCollector(streamed, 8);
                        collectors.add(c);
                        more.add(engine.submit(r, c));
                    }
                    assertTrue(streamed.await(60, TimeUnit.SECONDS), "tokens streamed before the close");
                    String victim = ids.get(1);
                    ws.remove(1).close();
                    long running = more.stream().filter(f -> !f.isDone()).count();
                    assertTrue(running > 0, "requests were still generating when the member closed");
                    for (int i = 0; i < second.size(); i++) {
                        Completion c = more.get(i).get(90, TimeUnit.SECONDS);
                        int[] want = expected.get(first.size() + i);
                        assertArrayEquals(want, c.tokens(), "request " + i + " (" + c.restarts() + " restarts)");
                        assertArrayEquals(want, collectors.get(i).tokens.stream().mapToInt(Integer::intValue)
                                .toArray(), "request " + i + ": every token streamed exactly once");
                    }
                    EngineMetrics m = engine.metrics();
                    assertEquals(0, m.failed(), m.toString());
                    assertEquals(all.size(), m.completed(), m.toString());
                    assertTrue(m.restarts() > 0, "the requests on the lost member's pipeline recomputed: " + m);
                    String after = engine.configuration();
                    assertFalse(after.contains(victim), "the closed worker is out of the configuration: " + after);
                    assertTrue(after.contains(ids.get(0)) || after.contains(ids.get(2)) || after.contains(ids.get(3)),
                            "the others serve: " + after);
                    System.out.printf("member %s closed with %d requests running: %d restarts, %d reconfigurations, "
                            + "configuration %s -> %s, %d bytes of partials%n", victim, running, m.restarts(),
                            m.reconfigurations().size(), before, after, ex.reduceBytes());
                }
            } finally {
                for (WorkerProcess w : ws) {
                    w.close();
                }
            }
        }
    }

    @Test
    void withoutTheOptionTheSameSetUpNeverSplitsAGroup() throws Exception {
        List<GenerationRequest> requests = requests(4, 30);
        List<int[]> expected = solo(requests);
        SystemEngineClock clock = new SystemEngineClock();
        List<String> ids = new ArrayList<>();
        List<WorkerProcess> ws = new ArrayList<>();
        try (RemoteInstanceProvider controller = controller(clock, false)) {
            try {
                ws.addAll(workers(controller, ids));
                assertFalse(controller.executor().tensorGroupsSpanInstances());
                try (ServingEngine engine = engine(controller, clock)) {
                    awaitServing(engine, ids);
                    List<CompletableFuture<Completion>> fs = new ArrayList<>();
                    for (GenerationRequest r : requests) {
                        fs.add(engine.submit(r));
                    }
                    for (int i = 0; i < requests.size(); i++) {
                        assertArrayEquals(expected.get(i), fs.get(i).get(60, TimeUnit.SECONDS).tokens(),
                                "request " + i);
                    }
                    assertEquals(1, largestM(engine.configuration()), engine.configuration());
                    for (Reconfiguration r : engine.metrics().reconfigurations()) {
                        assertTrue(largestM(r.to()) <= 1, "a group would span workers: " + r);
                    }
                    assertEquals(0, controller.executor().reduceBytes(), "no partials on the wire");
                }
            } finally {
                for (WorkerProcess w : ws) {
                    w.close();
                }
            }
        }
    }
}
