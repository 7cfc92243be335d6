package io.spotserve.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.engine.Completion;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.SystemEngineClock;
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
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The engine on real worker processes: {@code ServingEngine.builder().instances(remote).executor(remote.executor())}
 * with two worker JVMs serves the same greedy completions as the engine on in-process instances.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class RemoteEngineTest {
    private static final String TOKEN = "engine-token-0123456789abcdef";

    private static List<int[]> serve(ServingEngine.Builder b, List<GenerationRequest> requests) {
        List<int[]> out = new ArrayList<>();
        try (ServingEngine engine = b.parallelism(2, 1).maxBatch(4).fallbackLayouts(false).build()) {
            List<CompletableFuture<Completion>> fs = new ArrayList<>();
            for (GenerationRequest r : requests) {
                fs.add(engine.submit(r));
            }
            for (CompletableFuture<Completion> f : fs) {
                out.add(f.orTimeout(60, TimeUnit.SECONDS).join().tokens());
            }
        }
        return out;
    }

    @Test
    void theEngineServesOnWorkerProcessesAsItDoesInProcess() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        Tokenizer tok = Tokenizer.load(SharedData.tok512(), ckpt.config().vocabSize());
        List<GenerationRequest> requests = new ArrayList<>();
        for (String p : new String[] {"Once upon a time", "The little dog", "Lily and Ben went to the park"}) {
            requests.add(GenerationRequest.builder().prompt(p).maxNewTokens(24).build());
        }
        List<int[]> expected;
        try (Executor cpu = new CpuExecutor(ExecutorOptions.defaults().withThreads(1))) {
            LocalInstanceProvider local = new LocalInstanceProvider(new SystemEngineClock(), null);
            local.add(new InstanceType("local", 1, 16L << 20, 1, InstanceType.Market.SPOT));
            local.add(new InstanceType("local", 1, 16L << 20, 1, InstanceType.Market.SPOT));
            expected = serve(ServingEngine.builder().model(ckpt, tok).instances(local).executor(cpu), requests);
        }
        SystemEngineClock clock = new SystemEngineClock(); // the engine's clock dates the workers' events
        try (WorkerJvms jvms = new WorkerJvms("engine");
             RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(WireSecurity.token(TOKEN))
                     .clock(clock::now).build()) {
            String token = jvms.tokenFile("token", TOKEN).toString();
            for (int i = 0; i < 2; i++) {
                jvms.start("worker" + i, "--controller", controller.address(), "--devices", "1", "--device-memory",
                        "16m", "--token-file", token);
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (controller.liveWorkers().size() < 2) {
                assertTrue(System.nanoTime() < deadline, "two workers registered");
                Thread.sleep(50);
            }
            List<int[]> remote = serve(ServingEngine.builder().model(ckpt, tok).instances(controller)
                    .executor(controller.executor()).clock(clock), requests);
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(expected.get(i), remote.get(i), "request " + i);
            }
            assertTrue(controller.executor().activationBytes() > 0, "activations went worker to worker");
        }
    }
}
