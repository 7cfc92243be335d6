package io.spotserve.bench.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.bench.eval.Evaluation;
import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.VirtualClock;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.instance.InstanceType;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import io.spotserve.trace.AvailabilityTrace;
import io.spotserve.trace.TraceReader;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The real serving engine (stories260K on the CPU executor, virtual clock) driven by {@link EvalCloud} over the
 * paper's real traces: the engine takes every instance when it is usable, gives it back when it is gone or no longer
 * needed, and the cloud's bill is the engine's own instance accounting (which starts when an instance is usable) plus
 * the launch delays.
 */
class EvalCloudEngineTest {
    private static final Path SHARED = Evaluation.locateShared();

    private record Run(EngineMetrics metrics, EvalCloud.Bill bill, List<EvalCloud.Lease> leases, Duration stop) {
    }

    /** Serves a few requests, lets the engine's clock pass the trace's last event, closes the engine. */
    private static Run serve(String traceBase, int targetInstances) throws IOException {
        LlamaCheckpoint checkpoint = LlamaCheckpoint.load(SHARED.resolve("models/stories260K.bin"));
        Tokenizer tokenizer = Tokenizer.load(SHARED.resolve("models/tok512.bin"), checkpoint.config().vocabSize());
        AvailabilityTrace trace = TraceReader.readSegments(SHARED.resolve("traces/spotserve/trace_seg/" + traceBase + ".txt"));
        VirtualClock clock = new VirtualClock(Duration.ofMillis(5));
        EvalCloud cloud = EvalCloud.builder(trace.events(), clock).build();
        Duration last = cloud.traceEvents().get(cloud.traceEvents().size() - 1).at();
        EngineMetrics metrics;
        try (Executor executor = new CpuExecutor(ExecutorOptions.defaults().withThreads(1));
             ServingEngine engine = ServingEngine.builder().model(checkpoint, tokenizer).instances(cloud)
                     .executor(executor).clock(clock).parallelism(1, 1).maxBatch(2)
                     .targetInstances(targetInstances).build()) {
            List<CompletableFuture<Completion>> done = new ArrayList<>();
            for (String prompt : List.of("Once upon a time", "The little dog", "One day", "The sun was")) {
                done.add(engine.submit(GenerationRequest.of(prompt, 12)));
            }
            done.forEach(CompletableFuture::join);
            // with nothing to do the engine's virtual clock jumps from event to event; a request submitted after the
            // last trace event completes only after the engine applied it
            for (int i = 0; i < 30_000 && clock.now().compareTo(last) < 0; i++) {
                sleepMillis(1); // a hang guard only: the engine gets there in a few ms
            }
            assertTrue(clock.now().compareTo(last) >= 0, "engine clock stuck at " + clock.now());
            engine.submit(GenerationRequest.of("Lily and Ben went to the park", 8)).join();
            engine.close();
            metrics = engine.metrics();
        }
        Duration stop = clock.now();
        List<EvalCloud.Lease> leases = cloud.leases();
        EvalCloud.Bill bill = cloud.bill(stop);
        cloud.close();
        assertEquals(bill, cloud.bill(stop), "the engine released everything it held at its close");
        assertEquals(5, metrics.completed());
        return new Run(metrics, bill, leases, stop);
    }

    private static void sleepMillis(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /**
     * The cloud bills {@code billed} instance-seconds where the engine's own accounting plus the launch delays gives
     * {@code engineView}. They may differ only by how late the engine applies a dated event or calls release(): a
     * modeled forward step (5 ms on this clock) that is running when the event falls due delays it, and the engine ends
     * its accounting of a surplus on-demand instance at the deadline it set itself but calls release() when its loop
     * gets there. So per instance the cloud may bill at most the engine's whole compute time more, never less.
     */
    private static void assertAgrees(double engineView, double billed, Run r, String market) {
        long steps = r.metrics().generatedTokens() + r.metrics().completed(); // at most one prefill step per request
        double slack = r.leases().size() * steps * 0.005;
        assertTrue(billed >= engineView - 1e-6 && billed <= engineView + slack,
                "cloud bills " + billed + " " + market + " s, the engine saw " + engineView + " with launches (slack "
                        + slack + "); " + r.leases());
    }

    /**
     * Billed seconds before the engine could use the instance (launch delays, or the whole lease of one that never
     * became usable before its end or the stop), per market: the part of the bill the engine's accounting cannot see.
     */
    private static double launchSeconds(Run r, InstanceType.Market market) {
        double s = 0;
        for (EvalCloud.Lease l : r.leases()) {
            if (l.market() == market) {
                Duration until = l.usable() == null || l.usable().compareTo(r.stop()) > 0 ? r.stop() : l.usable();
                s += l.billedSeconds(until);
            }
        }
        return s;
    }

    @Test
    void engineOnASIsBilledItsOwnInstanceTimePlusTheLaunchDelays() throws IOException {
        Run r = serve("trace_0304_real", 0);
        // nodes 7, 8, 9, 10 are added after t = 0: 4 launches of 120 s billed before the engine could use them
        assertEquals(4 * 120.0, launchSeconds(r, InstanceType.Market.SPOT), 1e-9);
        assertAgrees(r.metrics().spotInstanceHours() * 3600 + 4 * 120.0, r.bill().spotInstanceSeconds(), r, "spot");
        assertEquals(0, r.bill().onDemandInstanceSeconds());
        assertTrue(r.stop().compareTo(Duration.ofSeconds(1200)) >= 0, r.stop().toString());
    }

    @Test
    void engineInstanceManagerOnBSGetsAndReleasesOnDemandBilledFromItsRequest() throws IOException {
        // B_S loses 3 of its 10 nodes by 240 s; with a target of 10 the engine asks the cloud for replacements
        Run r = serve("trace_0506_real", 10);
        List<EvalCloud.Lease> od = r.leases().stream().filter(l -> l.market() == InstanceType.Market.ON_DEMAND).toList();
        assertTrue(od.size() >= 3, od.toString());
        assertAgrees(r.metrics().onDemandInstanceHours() * 3600 + launchSeconds(r, InstanceType.Market.ON_DEMAND),
                r.bill().onDemandInstanceSeconds(),
                r, "on-demand");
        assertEquals(2 * 120.0, launchSeconds(r, InstanceType.Market.SPOT), 1e-9); // nodes 10 and 11
        assertAgrees(r.metrics().spotInstanceHours() * 3600 + 2 * 120.0, r.bill().spotInstanceSeconds(), r, "spot");
        assertEquals(r.bill().spotInstanceSeconds() * 1.9 / 3600 + r.bill().onDemandInstanceSeconds() * 3.9 / 3600,
                r.bill().usd(), 1e-12);
    }
}
