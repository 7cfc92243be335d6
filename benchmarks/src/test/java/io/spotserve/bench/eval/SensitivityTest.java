package io.spotserve.bench.eval;

import io.spotserve.plan.CostModel;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.PaperModel;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.ParallelConfigOptimizer;
import io.spotserve.trace.TraceEvent;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sensitivity variants' parameters reach the simulation, and {@code --sensitivity} writes its rows. */
class SensitivityTest {
    private static final Path SHARED = Evaluation.locateShared();

    @TempDir
    Path tmp;

    private static CostModel costModel(PaperModel m) {
        return CostModel.of(m, LatencyProfile.read(SHARED.resolve("profiles/T4-4x/" + m.profileName() + ".json")));
    }

    private static List<TraceEvent> nodes(int n, TraceEvent... more) {
        List<TraceEvent> ev = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ev.add(TraceEvent.add(Duration.ZERO, "node-" + i));
        }
        ev.addAll(List.of(more));
        return ev;
    }

    @Test
    void variantsChangeExactlyOneAssumption() {
        Scenario.Params d = Evaluation.variant("default").params();
        assertEquals(Scenario.Params.paper(), d);
        assertEquals(d.withReloadBytesPerSecond(0.5e9), Evaluation.variant("reload-0.5GBps").params());
        assertEquals(d.withEngineRestartSeconds(15), Evaluation.variant("restart-15s").params());
        assertEquals(d.withSpotServePolicy(ParallelConfigOptimizer.Policy.ARTIFACT),
                Evaluation.variant("optimizer-artifact").params());
        assertEquals(ParallelConfigOptimizer.Policy.PAPER, d.spotServePolicy());
        assertThrows(IllegalArgumentException.class, () -> Evaluation.parse(new String[] {"--variant", "nope"}));
    }

    /**
     * LLaMA-30B on 7 instances with a burst of 30 requests: spotserve re-plans D1P2M8B8 -> D1P3M8B8 at the 30 s
     * rate check and the new pipeline waits max(engine restart, migration). The migration is shorter than 5 s, so the
     * pause is the restart itself: 5 s by default, 15 s under restart-15s.
     */
    @Test
    void restartVariantIsTheSpotServeReconfigurationPause() {
        PaperModel llama = PaperModel.LLAMA_30B;
        double[] arr = new double[30];
        for (int i = 0; i < arr.length; i++) {
            arr[i] = 1.0 + 0.01 * i;
        }
        double[] pauses = new double[2];
        int k = 0;
        for (String v : List.of("default", "restart-15s")) {
            Scenario sc = new Scenario(llama, costModel(llama), "test", nodes(7, TraceEvent.end(Duration.ofSeconds(400))),
                    400, false, arr, 0.2, false, 6.0, Evaluation.variant(v).params());
            RunResult r = Simulation.run(sc, SystemSpec.spotServe());
            List<RunResult.Reconfiguration> rate = r.reconfigurations().stream()
                    .filter(x -> x.reason().startsWith("rate")).toList();
            assertEquals(1, rate.size(), r.reconfigurations().toString());
            pauses[k++] = rate.get(0).pauseSeconds();
        }
        assertEquals(5.0, pauses[0], 1e-9);
        assertEquals(15.0, pauses[1], 1e-9);
    }

    /**
     * OPT-6.7B on one instance, a second one granted at 10 s (ready at 130 s): Reparallelization restarts everything and
     * reloads the weights, pause = restart + per-instance weights / reload bandwidth. From the default pause p0 the
     * weights are w = (p0 - 5 s) * 2 GB/s; at 0.5 GB/s the pause must be 5 + w / 0.5 GB/s, under restart-15s 15 + w / 2 GB/s.
     */
    @Test
    void reloadAndRestartVariantsSetTheFullRestartPause() {
        PaperModel opt = PaperModel.OPT_6_7B;
        double[] pause = new double[3];
        int k = 0;
        for (String v : List.of("default", "reload-0.5GBps", "restart-15s")) {
            Scenario sc = new Scenario(opt, costModel(opt), "test",
                    nodes(1, TraceEvent.add(Duration.ofSeconds(10), "node-9"), TraceEvent.end(Duration.ofSeconds(300))),
                    300, false, new double[] {1, 200}, 0.1, false, 6.0, Evaluation.variant(v).params());
            RunResult r = Simulation.run(sc, SystemSpec.reparallelization());
            List<RunResult.Reconfiguration> acq = r.reconfigurations().stream()
                    .filter(x -> x.reason().startsWith("acquisition")).toList();
            assertEquals(1, acq.size(), r.reconfigurations().toString());
            assertEquals(130, acq.get(0).t(), 1e-9);
            pause[k++] = acq.get(0).pauseSeconds();
        }
        double w = (pause[0] - 5) * 2e9;
        assertTrue(w > 1e9, "an OPT-6.7B replica per instance is gigabytes, was " + w);
        assertEquals(5 + w / 0.5e9, pause[1], 1e-6);
        assertEquals(15 + w / 2e9, pause[2], 1e-6);
    }

    /**
     * optimizer-artifact: spotserve's first configuration is Algorithm 1's ARTIFACT choice (P, M, B) on 10 instances at
     * 1.5 req/s, Rerouting's stays the PAPER choice; the two readings disagree here, so the switch is visible.
     */
    @Test
    void artifactVariantSwitchesOnlyTheSpotServeFamily() {
        PaperModel opt = PaperModel.OPT_6_7B;
        CostModel cm = costModel(opt);
        Scenario sc = new Scenario(opt, cm, "test", nodes(10, TraceEvent.end(Duration.ofSeconds(100))), 100, false,
                new double[0], 1.5, false, 6.0, Evaluation.variant("optimizer-artifact").params());
        ParallelConfig art = ParallelConfigOptimizer.builder(cm).policy(ParallelConfigOptimizer.Policy.ARTIFACT)
                .maxBatch(8).arrivalCv(6.0).build().decide(10, 0, 1.5).choice().orElseThrow().config();
        ParallelConfig pap = ParallelConfigOptimizer.builder(cm).policy(ParallelConfigOptimizer.Policy.PAPER)
                .maxBatch(8).arrivalCv(6.0).build().decide(10, 0, 1.5).choice().orElseThrow().config();
        assertNotEquals(shape(art), shape(pap));
        for (SystemSpec s : List.of(SystemSpec.spotServe(), SystemSpec.ablations().get(0), SystemSpec.rerouting())) {
            String to = Simulation.run(sc, s).reconfigurations().get(0).to();
            String expected = s.kind() == SystemSpec.Kind.SPOTSERVE ? shape(art) : shape(pap);
            assertTrue(to.endsWith(expected), s.name() + ": " + to + " expected ..." + expected);
        }
    }

    private static String shape(ParallelConfig c) {
        return "P" + c.pipelineStages() + "M" + c.tensorShards() + "B" + c.maxBatch();
    }

    /** --sensitivity on one cell: every variant x arrival process x system; its default paper rows are summary.csv's. */
    @Test
    void sensitivityCsvHasEveryVariantAndItsDefaultRowsEqualTheMainRun() throws Exception {
        Evaluation.Options o = Evaluation.parse(new String[] {"--out", tmp.toString(), "--models", "OPT-6.7B",
                "--traces", "B_S", "--systems", "spotserve,rerouting", "--threads", "1", "--sensitivity", "--no-report",
                "--shared", SHARED.toString()});
        Evaluation.run(o);
        int rows = Evaluation.sensitivity(o);
        assertEquals(Evaluation.variants().size() * 2 * 2, rows);
        List<String> sens = Files.readAllLines(tmp.resolve(Evaluation.SENSITIVITY));
        assertEquals("variant,arrivals,model,trace,system,p50_s,p90_s,p99_s,avg_s,usd_per_token,requests,completed",
                sens.get(0));
        List<String> summary = Files.readAllLines(tmp.resolve("summary.csv"));
        List<String> defaults = sens.stream().filter(l -> l.startsWith("default,paper,"))
                .map(l -> l.substring("default,paper,".length())).toList();
        assertEquals(summary.subList(1, summary.size()), defaults);
        for (Evaluation.Variant v : Evaluation.variants()) {
            assertEquals(4, sens.stream().filter(l -> l.startsWith(v.name() + ",")).count(), v.name());
        }
    }

    /**
     * grace-0s: two instances, one request decoding on node-0's pipeline, node-0 gone at 13 s. With the default 30 s
     * notice spotserve re-plans before the death and keeps the request's KV cache (0 restarts); with no notice it
     * learns of the preemption at 13 s, the cache is lost with the instance (no migration source), the request is
     * recomputed (1 restart) and still completes.
     */
    @Test
    void graceVariantRemovesTheNoticeAndTheCacheMigration() {
        PaperModel opt = PaperModel.OPT_6_7B;
        RunResult[] runs = new RunResult[2];
        int k = 0;
        for (String v : List.of("default", "grace-0s")) {
            Scenario sc = new Scenario(opt, costModel(opt), "test",
                    List.of(TraceEvent.add(Duration.ZERO, "node-0", "node-1"),
                            TraceEvent.remove(Duration.ofMillis(13_000), "node-0"), TraceEvent.end(Duration.ofSeconds(100))),
                    100, false, new double[] {10.0}, 0.1, false, 6.0, Evaluation.variant(v).params());
            runs[k++] = Simulation.run(sc, SystemSpec.spotServe());
        }
        for (int i = 0; i < 2; i++) {
            List<RunResult.Reconfiguration> pre = runs[i].reconfigurations().stream()
                    .filter(x -> x.reason().startsWith("preemption notice")).toList();
            assertEquals(1, pre.size(), runs[i].reconfigurations().toString());
            assertTrue(runs[i].requests().get(0).completed());
            if (i == 0) {
                assertTrue(pre.get(0).t() < 13.0, "default: re-plans inside the notice, at " + pre.get(0).t());
                assertEquals(0, runs[i].requests().get(0).restarts());
            } else {
                assertTrue(pre.get(0).t() >= 13.0, "grace-0s: no notice before the death, re-plan at " + pre.get(0).t());
                assertEquals(1, runs[i].requests().get(0).restarts(), "the KV cache died with node-0");
            }
        }
        assertTrue(runs[1].requests().get(0).finish() > runs[0].requests().get(0).finish());
    }
}
