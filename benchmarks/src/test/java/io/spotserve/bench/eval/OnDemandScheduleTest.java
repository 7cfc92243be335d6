package io.spotserve.bench.eval;

import io.spotserve.plan.CostModel;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.PaperModel;
import io.spotserve.trace.AvailabilityTrace;
import io.spotserve.trace.TraceEvent;
import io.spotserve.trace.TraceReader;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OnDemandScheduleTest {
    private static final Path SHARED = Evaluation.locateShared();

    /**
     * The artifact's pre-recorded "+O" fleets (trace_0304_ondemand.txt, trace_0506_ondemand.txt; one file for every
     * model) add their replacement instances at these times; our schedule, decided by Algorithm 1's Δ from the base
     * spot traces, makes instances usable (grant + 120 s launch) at the same times: for OPT-6.7B in both files exactly,
     * for GPT-20B and LLaMA-30B in B_S+O exactly and in A_S+O except the file's 690 s replacement: for those models
     * Algorithm 1's Δ keeps two on-demand instances at the 360 s spot grants (12 alive, where OPT-6.7B gives them back),
     * so at the 600 s preemption (noticed at 570 s) 11 are alive and Δ releases one instead of replacing it.
     */
    @ParameterizedTest
    @EnumSource(PaperModel.class)
    void grantsReproduceTheArtifactsOnDemandFiles(PaperModel m) throws IOException {
        for (String[] c : new String[][] {{"A_S+O", "trace_0304_ondemand"}, {"B_S+O", "trace_0506_ondemand"}}) {
            Scenario sc = Evaluation.scenario(SHARED, m, c[0], 1, Arrivals.Mode.PAPER);
            List<Double> ours = OnDemandSchedule.of(sc).stream().map(OnDemandSchedule.Lease::usable).sorted().toList();
            List<Double> artifact = new ArrayList<>(artifactAddsAfterZero(c[1]));
            if (m != PaperModel.OPT_6_7B && c[0].equals("A_S+O")) {
                assertTrue(artifact.remove(690.0), artifact.toString());
            }
            assertEquals(artifact, ours, m + " " + c[0]);
        }
    }

    private static List<Double> artifactAddsAfterZero(String file) throws IOException {
        AvailabilityTrace t = TraceReader.readSegments(SHARED.resolve("traces/spotserve/trace_seg/" + file + ".txt"));
        List<Double> out = new ArrayList<>();
        for (TraceEvent e : t.events()) {
            if (e.kind() == TraceEvent.Kind.ADD && !e.time().isZero()) {
                for (int i = 0; i < e.nodes().size(); i++) {
                    out.add(e.time().toMillis() / 1000.0);
                }
            }
        }
        return out;
    }

    @Test
    void aCellWithoutOnDemandMixingHasNoSchedule() throws IOException {
        Scenario sc = Evaluation.scenario(SHARED, PaperModel.GPT_20B, "B_S", 1, Arrivals.Mode.PAPER);
        assertTrue(OnDemandSchedule.of(sc).isEmpty());
    }

    /**
     * The simulator's instance manager makes the same decisions while it releases nothing: up to the first release of
     * the schedule, the simulated Rerouting run holds exactly the schedule's on-demand instances at every timeline row.
     */
    @Test
    void theSimulatorsInstanceManagerHoldsTheSameInstancesUntilTheFirstRelease() throws IOException {
        Scenario sc = Evaluation.scenario(SHARED, PaperModel.GPT_20B, "B_S+O", 1, Arrivals.Mode.PAPER);
        List<OnDemandSchedule.Lease> leases = OnDemandSchedule.of(sc);
        double firstRelease = leases.stream().mapToDouble(OnDemandSchedule.Lease::decided).min().orElseThrow();
        assertEquals(720.0, firstRelease, "a spot instance returns at 720 s and Δ releases one on-demand instance");
        RunResult r = Simulation.run(sc, SystemSpec.rerouting());
        int rows = 0;
        for (RunResult.TimelineRow row : r.timeline()) {
            if (row.t() < firstRelease) {
                long held = leases.stream().filter(l -> l.granted() <= row.t() && l.ended() > row.t()).count();
                assertEquals(held, row.onDemand(), "on-demand held at " + row.t());
                rows++;
            }
        }
        assertTrue(rows > 10, "timeline rows compared: " + rows);
    }

    /**
     * Six spot instances at 0 (Δ fills up to the cap of 10: four on-demand), two more spot at 60 s (the two oldest
     * launching on-demand instances go at once, never usable, billed 60 s each), two more at 200 s (the two usable ones
     * are handed back 30 s later, as a preemption with the grace period).
     */
    @Test
    void surplusReleasesLaunchingInstancesAtOnceAndUsableOnesAfterTheGracePeriod() throws IOException {
        PaperModel m = PaperModel.OPT_6_7B;
        CostModel cost = CostModel.of(m, LatencyProfile.read(SHARED.resolve("profiles/T4-4x/" + m.profileName()
                + ".json")));
        List<TraceEvent> ev = List.of(
                TraceEvent.add(Duration.ZERO, "node-0", "node-1", "node-2", "node-3", "node-4", "node-5"),
                TraceEvent.add(Duration.ofSeconds(60), "node-6", "node-7"),
                TraceEvent.add(Duration.ofSeconds(200), "node-8", "node-9"));
        Scenario sc = new Scenario(m, cost, "synthetic", ev, 600, true, new double[] {1}, 1.5, false, 6,
                Scenario.Params.paper());
        List<OnDemandSchedule.Lease> got = OnDemandSchedule.of(sc);
        assertEquals(List.of(
                new OnDemandSchedule.Lease("od-0", 0, 120, 60, 60),
                new OnDemandSchedule.Lease("od-1", 0, 120, 60, 60),
                new OnDemandSchedule.Lease("od-2", 0, 120, 200, 230),
                new OnDemandSchedule.Lease("od-3", 0, 120, 200, 230)), got);
        assertFalse(got.get(0).everUsable());
        assertTrue(got.get(2).everUsable());
        assertEquals(60 + 60 + 230 + 230, OnDemandSchedule.billedSeconds(got, 600), 1e-9);
        assertEquals(60 + 60 + 100 + 100, OnDemandSchedule.billedSeconds(got, 100), 1e-9);
        // the same scenario without mixing: nothing
        Scenario plain = new Scenario(m, cost, "synthetic", ev, 600, false, new double[] {1}, 1.5, false, 6,
                Scenario.Params.paper());
        assertTrue(OnDemandSchedule.of(plain).isEmpty());
    }
}
