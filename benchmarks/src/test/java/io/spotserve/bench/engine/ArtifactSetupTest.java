package io.spotserve.bench.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.bench.eval.ArtifactSetup;
import io.spotserve.bench.eval.Arrivals;
import io.spotserve.bench.eval.Evaluation;
import io.spotserve.bench.eval.RunResult;
import io.spotserve.bench.eval.Scenario;
import io.spotserve.clock.SimulatedClock;
import io.spotserve.engine.ReconfigurationMode;
import io.spotserve.engine.ServingEngine;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.PaperModel;
import io.spotserve.trace.TraceEvent;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The mechanics of {@code Evaluation --setup artifact} on the real traces and profiles: Rerouting's cluster-wide
 * layouts, every event fired 30 s early, the "+O" fleets read from the traces' {@code *_ondemand.txt}, and — through
 * the engine — a Rerouting pipeline that serves only after start-up + load + start-up again.
 */
class ArtifactSetupTest {
    private static final Path SHARED = Evaluation.locateShared();

    @ParameterizedTest(name = "{0}: Rerouting runs {1}")
    @CsvSource({"OPT-6.7B, P2M4B2", "GPT-20B, P2M8B4", "LLaMA-30B, P4M8B4"})
    void reroutingIsSizedForTheWholeClusterAtTheRequiredThroughput(String model, String layout) throws IOException {
        Scenario sc = ArtifactSetup.scenario(SHARED, PaperModel.fromName(model), "B_S", 1, 1e9);
        ParallelConfig c = ArtifactSetup.profile(sc, 5).reroutingLayout();
        assertEquals(layout, "P" + c.pipelineStages() + "M" + c.tensorShards() + "B" + c.maxBatch());
        assertEquals(4, sc.params().maxBatch());
        assertEquals(0, sc.params().launchSeconds());
    }

    @Test
    void everyEventFiresThirtySecondsEarlyForEverySystem() throws IOException {
        // B_S: 10 nodes at 0; -2 at 120 s; -1 at 240 s; +1 at 720 s; +1 at 960 s
        Scenario sc = ArtifactSetup.scenario(SHARED, PaperModel.GPT_20B, "B_S", 1, 1e9);
        ArtifactProfile p = ArtifactSetup.profile(sc, 5);
        assertEquals(List.of("0 ADD", "90 REMOVE", "210 REMOVE", "690 ADD", "930 ADD"),
                describe(p.events(sc.spotEvents(), EngineRun.Variant.REPARALLELIZATION)));
        assertEquals(Duration.ZERO, p.grace(EngineRun.Variant.REPARALLELIZATION));
        // SpotServe: the removal noticed 30 s early (grace), the instance there until its trace time
        assertEquals(List.of("0 ADD", "120 REMOVE", "240 REMOVE", "690 ADD", "930 ADD"),
                describe(p.events(sc.spotEvents(), EngineRun.Variant.SPOTSERVE)));
        assertEquals(Duration.ofSeconds(30), p.grace(EngineRun.Variant.SPOTSERVE));
        // Rerouting waits the lead again before it builds on added instances: its adds land at the trace time
        assertEquals(List.of("0 ADD", "90 REMOVE", "210 REMOVE", "720 ADD", "960 ADD"),
                describe(p.events(sc.spotEvents(), EngineRun.Variant.REROUTING)));
    }

    @Test
    void onDemandCellsReplayTheTracesOnDemandFiles() throws IOException {
        // trace_0304_ondemand: 7 at 0; +3 at 120 s; -1 at 600 s; +1 at 690 s; -2 (node-0, node-7) at 1200 s; +2 at 1290 s
        Scenario sc = ArtifactSetup.scenario(SHARED, PaperModel.OPT_6_7B, "A_S+O", 1, 1e9);
        assertFalse(sc.onDemandMixing(), "the file is the whole fleet, the same for every system");
        assertEquals(List.of("0 ADD", "120 ADD", "600 REMOVE", "690 ADD", "1200 REMOVE", "1290 ADD"),
                describe(sc.spotEvents()));
        assertEquals(List.of("node-0", "node-7"), sc.spotEvents().get(4).nodes());
        assertEquals(1380, sc.endSeconds());
        Scenario b = ArtifactSetup.scenario(SHARED, PaperModel.OPT_6_7B, "B_S+O", 1, 1e9);
        assertEquals(List.of("0 ADD", "120 REMOVE", "210 ADD", "240 REMOVE", "330 ADD"), describe(b.spotEvents()));
        assertEquals(720, b.endSeconds());
        // near-periodic artifact arrivals at the paper's rate, the required throughput as the planned rate
        assertTrue(Arrivals.gapCv(sc.arrivals()) < 0.2, "artifact arrivals are near-periodic");
        assertEquals(1.5, sc.arrivals().length / sc.endSeconds(), 0.05);
        assertEquals(2.0, sc.nominalRate());
        assertThrows(IllegalArgumentException.class, () -> ArtifactSetup.traceFile("MAF"));
    }

    @Test
    void aReroutingPipelineServesAfterStartupLoadAndStartupAgain() throws IOException {
        // LLaMA-30B B_S: P4M8 takes 8 instances; 7 remain from 210 s (240 - 30) until the add at 720 s, when Rerouting
        // builds one pipeline from storage: it starts (5 s), every instance loads 1/8 of the weights, it starts again
        double startup = 5;
        double reload = 1e9;
        Scenario sc = ArtifactSetup.scenario(SHARED, PaperModel.LLAMA_30B, "B_S", 1, reload);
        RunResult r = EngineRun.run(sc, EngineRun.Variant.REROUTING, ArtifactSetup.profile(sc, startup));
        assertEquals(r.requests().size(), r.completed());
        RunResult.Reconfiguration build = r.reconfigurations().stream().filter(x -> x.t() >= 719.9).findFirst()
                .orElseThrow();
        assertEquals(720, build.t(), 1e-6);
        assertTrue(build.bytesReloaded() > 0, "the new pipeline loads from storage: " + build);
        double ready = 720 + startup + build.bytesReloaded() / 8.0 / reload + startup;
        // nothing is served from the loss at 210 s (240 - 30) until the pipeline is ready; then the requests it was
        // running (they resume from their committed tokens) and the queue's first batch complete within one l_exe
        double prefill = Double.POSITIVE_INFINITY;
        double decode = Double.POSITIVE_INFINITY;
        for (int mb = 1; mb <= 4; mb *= 2) {
            prefill = Math.min(prefill, sc.costModel().prefillSeconds(4, 8, 4, mb, 512));
            decode = Math.min(decode, sc.costModel().decodeStepSeconds(4, 8, 4, mb));
        }
        double execution = prefill + sc.costModel().embedSeconds(4) + 128 * decode;
        double firstDone = Double.POSITIVE_INFINITY;
        for (RunResult.Request q : r.requests()) {
            assertFalse(q.firstToken() > 211 && q.firstToken() < ready, "first token at " + q.firstToken()
                    + " s before the pipeline is ready at " + ready + " s: " + q);
            assertFalse(q.finish() > 211 && q.finish() < ready, "done at " + q.finish() + " s before " + ready + " s");
            if (q.finish() > 211) {
                firstDone = Math.min(firstDone, q.finish());
            }
        }
        assertTrue(firstDone <= ready + execution + 1e-3, "first request done after the outage at " + firstDone
                + " s; pipeline ready at " + ready + " s, one execution " + execution + " s");
    }

    /**
     * A restarting engine prices a change of shape by what it costs the pipelines it builds. With the baselines'
     * start-up the weight reads are off the engine's clock (every pause is about 0 s), so pricing by the pause alone
     * let Reparallelization change GPT-20B's shape at a quiet moment (148.9 s, P3M4 to P2M8 on 8 instances, 164 GB
     * reloaded at 0.5 GB/s per instance, ~21 s without a pipeline): its P99 went 125 to 189 s. Every reconfiguration
     * here must come from the fleet.
     */
    @Test
    void aRestartingEngineChangesShapeOnlyWithTheFleetWhenReloadsAreSlow() throws IOException {
        Scenario sc = ArtifactSetup.scenario(SHARED, PaperModel.GPT_20B, "B_S", 1, 0.5e9);
        RunResult r = EngineRun.run(sc, EngineRun.Variant.REPARALLELIZATION, ArtifactSetup.profile(sc, 5));
        assertEquals(r.requests().size(), r.completed());
        for (RunResult.Reconfiguration x : r.reconfigurations()) {
            assertTrue(List.of("acquired", "notice", "terminated", "lost", "deadline").stream()
                    .anyMatch(x.reason()::contains), "a change between fleet events: " + x);
        }
    }

    @Test
    void pipelineStartupIsOnlyForTheBaselines() {
        var clock = SimulatedClock.builder(step -> Duration.ZERO).build();
        var b = ServingEngine.builder().model(TimingExecutor.weights(TestModels.OPT_6_7B))
                .instances(EvalCloud.builder(List.of(TraceEvent.add(Duration.ZERO, "node-0")), clock).build())
                .clock(clock).pipelineStartup(Duration.ofSeconds(5), Duration.ZERO);
        assertThrows(IllegalStateException.class, () -> b.reconfigurationMode(ReconfigurationMode.MIGRATE).build());
        assertThrows(IllegalArgumentException.class, () -> b.pipelineStartup(Duration.ofSeconds(-1), Duration.ZERO));
    }

    private static List<String> describe(List<TraceEvent> events) {
        return events.stream().map(e -> e.time().toMillis() / 1000 + " " + e.kind()).toList();
    }
}
