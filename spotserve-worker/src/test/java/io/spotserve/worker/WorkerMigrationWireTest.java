package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.clock.SystemEngineClock;
import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.Reconfiguration;
import io.spotserve.engine.ServingEngine;
import io.spotserve.engine.Token;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import io.spotserve.testing.SharedData;
import io.spotserve.worker.proto.StagingState;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 13, "migration slices stream worker to worker ... the bytes that cross the wire are counted and equal the
 * device mapper's prediction", for the engine's own migrations on real worker JVMs: a preemption notice moves a P = 2
 * pipeline off the noticed worker (its stage's weights to the idle worker, the running requests' KV caches along).
 * Every moved slice is staged on its source worker and sent from there to the target worker: the payload that went
 * worker to worker equals the engine's bytes moved and the mapper's prediction, nothing went through the controller
 * (the cold start's checkpoint pieces are read by the workers from the file),
 * no staged slice is left on any worker or unreleased at the controller, and greedy outputs match the in-process run.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class WorkerMigrationWireTest {
    private static final String TOKEN = "wire-token-0123456789abcdef";
    private static final String[] PROMPTS = {"Once upon a time", "The little dog", "Lily and Ben went to the park",
        "One day"};

    private static ServingEngine.Builder configure(ServingEngine.Builder b) {
        return b.parallelism(2, 1).maxBatch(4);
    }

    private static List<GenerationRequest> requests() {
        List<GenerationRequest> out = new ArrayList<>();
        // several waves of four, so requests still run when the notice's grace is over
        for (int i = 0; i < 6 * PROMPTS.length; i++) {
            out.add(GenerationRequest.of(PROMPTS[i % PROMPTS.length], 380 + 11 * (i % 8)));
        }
        return out;
    }

    /** Opens its latch at the first streamed token. */
    private record FirstToken(CountDownLatch latch) implements Flow.Subscriber<Token> {
        @Override
        public void onSubscribe(Flow.Subscription s) {
            s.request(Long.MAX_VALUE);
        }

        @Override
        public void onNext(Token t) {
            latch.countDown();
        }

        @Override
        public void onError(Throwable t) {
        }

        @Override
        public void onComplete() {
        }
    }

    @Test
    void aNoticeMovesWeightsAndCachesWorkerToWorkerAsPredictedAndNothingThroughTheController() throws Exception {
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
                    expected.add(f.get(60, TimeUnit.SECONDS).tokens());
                }
            }
        }

        SystemEngineClock clock = new SystemEngineClock();
        try (WorkerJvms jvms = new WorkerJvms("migration-wire");
             RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(WireSecurity.token(TOKEN))
                     .leaseTimeout(Duration.ofSeconds(30)).clock(clock::now).build()) {
            String token = jvms.tokenFile("token", TOKEN).toString();
            List<String> ids = new ArrayList<>();
            List<Process> processes = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                processes.add(jvms.start("worker" + i, "--controller", controller.address(), "--devices", "1",
                        "--device-memory", "16m", "--token-file", token, "--label", "w" + i, "--notices", "signal",
                        "--notice-grace", "4"));
                ids.add(awaitWorker(jvms, "worker" + i));
            }
            RemoteExecutor ex = controller.executor();
            long peer0 = ex.peerSliceBytes();
            long slices0 = ex.peerSlices();
            long calls0 = ex.peerTransfers();
            long relayed0 = ex.relayedSliceBytes();
            try (ServingEngine engine = configure(ServingEngine.builder().model(ckpt, tok).instances(controller)
                    .executor(ex).clock(clock)).build()) {
                CountDownLatch streamed = new CountDownLatch(1);
                List<CompletableFuture<Completion>> fs = new ArrayList<>();
                for (GenerationRequest r : requests) {
                    fs.add(engine.submit(r, new FirstToken(streamed)));
                }
                assertTrue(streamed.await(60, TimeUnit.SECONDS), "tokens streamed before the notice");
                String first = engine.configuration();
                String noticed = ids.stream().filter(first::contains).findFirst()
                        .orElseThrow(() -> new AssertionError("no worker serves: " + first));
                processes.get(ids.indexOf(noticed)).destroy(); // SIGTERM: its notice
                for (int i = 0; i < requests.size(); i++) {
                    Completion c = fs.get(i).get(90, TimeUnit.SECONDS);
                    assertArrayEquals(expected.get(i), c.tokens(), "request " + i + " (" + c.restarts() + " restarts)");
                }
                EngineMetrics m = engine.metrics();
                assertEquals(0, m.failed(), m.toString());
                Reconfiguration notice = m.reconfigurations().stream()
                        .filter(r -> r.reason().contains("notice " + noticed)).findFirst()
                        .orElseThrow(() -> new AssertionError("no reconfiguration for the notice: "
                                + m.reconfigurations()));
                assertTrue(notice.bytesMigrated() > 0, "the notice moved context worker to worker: " + notice);
                long migrated = 0;
                long planned = 0;
                for (Reconfiguration r : m.reconfigurations()) {
                    migrated += r.bytesMigrated();
                    planned += r.plannedBytesMoved();
                }
                long wire = ex.peerSliceBytes() - peer0;
                long slices = ex.peerSlices() - slices0;
                long payload = wire - slices * SliceFormat.HEADER_BYTES;
                long calls = ex.peerTransfers() - calls0;
                System.out.printf("migration wire: %d slices in %d calls, %d B worker to worker (%d B payload), engine"
                        + " moved %d B, mapper predicted %d B, relayed through the controller %d B; %s%n", slices,
                        calls, wire, payload, migrated, planned, ex.relayedSliceBytes() - relayed0,
                        m.reconfigurations());
                assertTrue(calls < slices, "weight pieces from one worker to another went several per call (the"
                        + " engine's batched migration): " + slices + " slices in " + calls + " calls");
                assertEquals(migrated, payload, "the payload that went worker to worker is what the engine moved");
                assertEquals(planned, migrated, "and what the device mapper predicted");
                assertTrue(m.reconfigurations().get(0).bytesLoaded() > 0, "the cold start read the checkpoint");
                assertEquals(0, ex.relayedSliceBytes() - relayed0, "no slice went through the controller, the cold "
                        + "start's checkpoint reads included (each worker read the file itself)");
                assertEquals(0, ex.stagedSlices(), "every staged slice was released at the controller");
                for (String id : controller.liveWorkers()) {
                    StagingState st = ex.stagingUsage(id);
                    assertEquals(0, st.getSlices(), id + " holds no staged slice: " + st);
                    assertEquals(0, st.getBytes(), id + " holds no staged bytes: " + st);
                }
            }
        }
    }

    /**
     * Waits for worker {@code label} to register; returns the instance id its log names (a registration retried after
     * a lost reply leaves a ghost id behind, so the order of registrations does not tell).
     */
    private static String awaitWorker(WorkerJvms jvms, String label) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        java.util.regex.Pattern p = java.util.regex.Pattern.compile("worker (\\S+) \\(epoch \\d+\\) serving");
        while (true) {
            java.util.regex.Matcher m = p.matcher(jvms.log(label));
            if (m.find()) {
                return m.group(1);
            }
            assertTrue(System.nanoTime() < deadline, label + " registered: " + jvms.log(label));
            Thread.sleep(20);
        }
    }
}
