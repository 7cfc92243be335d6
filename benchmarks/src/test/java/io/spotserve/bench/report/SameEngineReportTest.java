package io.spotserve.bench.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.bench.report.Analysis.EngineTarget;
import io.spotserve.bench.report.Analysis.SameEngineRow;
import io.spotserve.bench.report.Analysis.Target;
import io.spotserve.bench.report.Analysis.Verdict;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The paper's baselines built into the real engine ({@code rerouting-engine}, {@code reparallelization-engine}) in
 * the report: the "(real engine, same-engine baselines)" target rows, the same-engine table of the real-engine
 * section, and that they are neither beyond-the-paper policies, on-demand fleets nor ablations. Every expected
 * number is worked out by hand from the synthetic CSVs.
 */
class SameEngineReportTest {
    private static final String GPT = "GPT-20B";
    private static final String ENGINE = PaperFigures.ENGINE;
    private static final String RO = PaperFigures.ENGINE_REROUTING;
    private static final String RP = PaperFigures.ENGINE_REPARALLELIZATION;

    @TempDir
    Path tmp;

    /**
     * GPT-20B, P99 (avg, USD/token): A_S engine 8 (4, 1e-5), rerouting-engine 20 (9, 2e-5), reparallelization-engine
     * 12 (6, 1.5e-5); B_S engine 12 (6, 1e-5), rerouting-engine 9 (6, 2e-5), reparallelization-engine 18 (8, 1.5e-5).
     * Ratios baseline / engine: A_S 2.50 / 1.50, B_S 0.75 / 1.50. The simulator's systems as in EngineReportTest.
     * Reconfigurations in A_S: engine 3 (pause 0 + 2 + 3), rerouting-engine 2 (0 + 6), reparallelization-engine none.
     */
    private static ResultsFixture fixture(Path dir, boolean baselines) {
        ResultsFixture f = new ResultsFixture(dir)
                .summary(GPT, "A_S", "spotserve", 10, 5, 1e-5)
                .summary(GPT, "A_S", "rerouting", 40, 9, 1e-5)
                .summary(GPT, "A_S", "reparallelization", 20, 7, 1e-5)
                .summary(GPT, "A_S", "spotserve+", 9, 5, 1e-5)
                .summary(GPT, "A_S", ENGINE, 8, 4, 1e-5)
                .summary(GPT, "B_S", "spotserve", 10, 5, 1e-5)
                .summary(GPT, "B_S", "rerouting", 8, 6, 1e-5)
                .summary(GPT, "B_S", "reparallelization", 15, 6, 1e-5)
                .summary(GPT, "B_S", "spotserve+", 9, 5, 1e-5)
                .summary(GPT, "B_S", ENGINE, 12, 6, 1e-5)
                .reconfiguration(GPT, "A_S", ENGINE, 0, "none", "D2P3M4B8", "acquired spot-0", 0, 1L << 30, 0)
                .reconfiguration(GPT, "A_S", ENGINE, 360, "D2P3M4B8", "D2P2M8B8", "acquired spot-7", 1L << 30, 0, 2)
                .reconfiguration(GPT, "A_S", ENGINE, 600, "D2P2M8B8", "D3P3M4B8", "notice spot-8", 1L << 30, 0, 3);
        if (baselines) {
            f.summary(GPT, "A_S", RO, 20, 9, 2e-5)
                    .summary(GPT, "A_S", RP, 12, 6, 1.5e-5)
                    .summary(GPT, "B_S", RO, 9, 6, 2e-5)
                    .summary(GPT, "B_S", RP, 18, 8, 1.5e-5)
                    .reconfiguration(GPT, "A_S", RO, 0, "none", "D2P3M4B8", "acquired spot-0", 0, 1L << 30, 0)
                    .reconfiguration(GPT, "A_S", RO, 600, "D2P3M4B8", "D1P3M4B8", "notice spot-8", 0, 0, 6);
        }
        return f;
    }

    private static EngineTarget target(List<EngineTarget> targets, int number) {
        return targets.stream().filter(t -> t.number() == number).findFirst()
                .orElseThrow(() -> new AssertionError("no target " + number + " in " + targets));
    }

    @Test
    void sameEngineVerdictsAndTheOtherVerdictsUnchanged() {
        Analysis with = new Analysis(Results.load(fixture(tmp.resolve("with"), true).write()));
        Analysis without = new Analysis(Results.load(fixture(tmp.resolve("without"), false).write()));
        // not beyond-the-paper policies: the simulator's and the engine's targets are exactly as without them
        assertEquals(List.of("spotserve+"), with.beyondSystems());
        assertEquals(without.targets(true), with.targets(true));
        assertEquals(without.engineTargets(true), with.engineTargets(true));
        assertTrue(without.sameEngineTargets().isEmpty());
        assertTrue(without.sameEngineRows().isEmpty());
        assertTrue(with.hasEngineBaselines());
        assertFalse(without.hasEngineBaselines());

        List<EngineTarget> e = with.sameEngineTargets();
        assertEquals(List.of(1, 2), e.stream().map(EngineTarget::number).toList());
        Target t1 = target(e, 1).target();
        assertEquals("the real engine (spotserve-engine) has lower P99 than both rerouting-engine and "
                + "reparallelization-engine (the baselines in the same engine) in every model x trace cell", t1.name());
        assertEquals(Verdict.NOT_MET, t1.verdict());
        assertEquals("1 of 2 cells; not lower (vs rerouting-engine / vs reparallelization-engine) in GPT-20B/B_S "
                + "(0.75x / 1.50x)", t1.detail());
        Target t2 = target(e, 2).target();
        assertTrue(t2.name().startsWith("the real engine (spotserve-engine) against rerouting-engine / "
                + "reparallelization-engine: Fig. 6 P99 ratios within the paper's range (vs Rerouting 1.03-9.13x, "
                + "vs Reparallelization 1.33-3.76x"), t2.name());
        assertEquals(Verdict.NOT_MET, t2.verdict());
        assertEquals("3 of 4 ratios in range; outside: GPT-20B/B_S vs rerouting-engine 0.75x", t2.detail());

        List<SameEngineRow> rows = with.sameEngineRows();
        assertEquals(2, rows.size());
        assertEquals(2.5, rows.get(0).vsRerouting(), 1e-12);
        assertEquals(1.5, rows.get(0).vsReparallelization(), 1e-12);
        assertEquals(0.75, rows.get(1).vsRerouting(), 1e-12);
        assertEquals(18, rows.get(1).reparallelization().p99(), 0);
    }

    @Test
    void sameEngineTargetsMetWhenTheEngineWinsEveryCellInRange() {
        Path dir = new ResultsFixture(tmp.resolve("r"))
                .summary(GPT, "A_S", ENGINE, 10, 4, 1e-5)
                .summary(GPT, "A_S", RO, 30, 9, 1e-5)
                .summary(GPT, "A_S", RP, 20, 7, 1e-5)
                .write();
        Analysis a = new Analysis(Results.load(dir));
        List<EngineTarget> e = a.sameEngineTargets();
        assertEquals(Verdict.MET, target(e, 1).target().verdict());
        assertEquals("1 of 1 cells", target(e, 1).target().detail());
        assertEquals(Verdict.MET, target(e, 2).target().verdict());
        assertEquals("2 of 2 ratios in range", target(e, 2).target().detail());
        // no simulated spotserve: the simulator's target 1 has no data, the engine's against the simulator's baselines
        // has them missing
        assertEquals(Verdict.NO_DATA, a.targets(false).get(0).verdict());
    }

    @Test
    void oneSameEngineBaselineMissingIsReportedNotCounted() {
        Path dir = new ResultsFixture(tmp.resolve("r"))
                .summary(GPT, "A_S", ENGINE, 10, 4, 1e-5)
                .summary(GPT, "A_S", RO, 30, 9, 1e-5)
                .summary(GPT, "B_S", ENGINE, 10, 4, 1e-5)
                .summary(GPT, "B_S", RO, 5, 9, 1e-5)
                .summary(GPT, "B_S", RP, 20, 9, 1e-5)
                .write();
        Analysis a = new Analysis(Results.load(dir));
        Target t1 = target(a.sameEngineTargets(), 1).target();
        assertEquals(Verdict.NOT_MET, t1.verdict());
        assertEquals("0 of 2 cells; not lower (vs rerouting-engine / vs reparallelization-engine) in GPT-20B/B_S "
                + "(0.50x / 2.00x); baseline missing or n/a in GPT-20B/A_S", t1.detail());
        Target t2 = target(a.sameEngineTargets(), 2).target();
        assertEquals("2 of 3 ratios in range (1 n/a); outside: GPT-20B/B_S vs rerouting-engine 0.50x", t2.detail());
        assertTrue(Double.isNaN(a.sameEngineRows().get(0).vsReparallelization()));
    }

    @Test
    void notBeyondThePaperNotOnDemandNotAblation() {
        Analysis a = new Analysis(Results.load(fixture(tmp.resolve("r"), true).write()));
        for (String s : List.of(RO, RP)) {
            assertFalse(PaperFigures.inPaper(s), s);
            assertTrue(PaperFigures.isEngineBaseline(s), s);
            assertTrue(PaperFigures.isEngineFamily(s), s);
            assertFalse(PaperFigures.isEngine(s), s);
            assertEquals(-1, PaperFigures.onDemandSize(s), s);
            assertFalse(s.startsWith(PaperFigures.ABLATION_PREFIX), s);
        }
        assertTrue(a.ablationRows().isEmpty());
        // each sorts right after its simulated counterpart, before the beyond-the-paper policy
        assertEquals(List.of("spotserve", ENGINE, "rerouting", RO, "reparallelization", RP, "spotserve+"),
                a.systems(new Results.Cell(GPT, "A_S")));
        // Fig. 7 points: the engine family is there, the beyond-the-paper policy is not
        assertEquals(List.of("spotserve", ENGINE, RO, RP), a.costPoints().stream()
                .filter(p -> p.trace().equals("A_S")).map(Analysis.CostPoint::system).toList());
        // dark tones, distinct from each other and from the simulator's baselines
        assertNotEquals(Plots.color(RO), Plots.color("rerouting"));
        assertNotEquals(Plots.color(RP), Plots.color("reparallelization"));
        assertNotEquals(Plots.color(RO), Plots.color(RP));
        for (String s : List.of(ENGINE, RO, RP)) {
            java.awt.Color c = Plots.color(s);
            assertTrue(c.getRed() + c.getGreen() + c.getBlue() < 300, s + " is not dark: " + c);
        }
    }

    @Test
    void reportHasTheSameEngineRowsAndTable() throws IOException {
        Path results = fixture(tmp.resolve("benchmarks/results"), true).write();
        EvaluationReport.write(results);
        String md = Files.readString(results.resolve("report.md"));

        assertTrue(md.contains("| 1 (real engine, same-engine baselines) | the real engine (spotserve-engine) has lower P99 "
                + "than both rerouting-engine and reparallelization-engine (the baselines in the same engine) in every "
                + "model x trace cell | **NOT MET** | 1 of 2 cells; not lower (vs rerouting-engine / vs "
                + "reparallelization-engine) in GPT-20B/B_S (0.75x / 1.50x) |"), md);
        assertTrue(md.contains("| 2 (real engine, same-engine baselines) | the real engine (spotserve-engine) against "
                + "rerouting-engine / reparallelization-engine: Fig. 6 P99 ratios"), md);
        assertTrue(md.contains("| **NOT MET** | 3 of 4 ratios in range; outside: GPT-20B/B_S vs rerouting-engine 0.75x |"),
                md);
        // the old rows: simulator 1..5, engine 1..5 against the simulator's baselines, unchanged
        assertTrue(md.contains("| 4 | our beyond-the-paper policy spotserve+ beats SpotServe's P99"), md);
        assertTrue(md.contains("| 1 (real engine) | the real engine (spotserve-engine) has lower P99 than both Rerouting "
                + "and Reparallelization in every model x trace cell | **NOT MET** | 1 of 2 cells; not lower (vs Rerouting "
                + "/ vs Reparallelization) in GPT-20B/B_S (0.67x / 1.25x) |"), md);
        assertFalse(md.contains("### " + RO), "no Beyond-the-paper subsection for " + RO);
        assertFalse(md.contains("### " + RP), "no Beyond-the-paper subsection for " + RP);
        assertFalse(md.contains("ss/" + RO), md);

        int sectionAt = md.indexOf("## The real engine vs the simulator");
        int differAt = md.indexOf("## Why our numbers differ");
        String section = md.substring(sectionAt, differAt);
        int tableAt = section.indexOf("### Same engine, only the reconfiguration mechanism differs");
        assertTrue(tableAt > section.indexOf("| sim / engine (P99) |"), "after the engine-vs-simulator table");
        String table = section.substring(tableAt);
        assertTrue(table.contains("| model | trace | P99 engine | P99 rerouting-engine | P99 reparallelization-engine "
                + "| avg engine | avg rerouting-engine | avg reparallelization-engine | rerouting-engine / engine "
                + "| reparallelization-engine / engine | USD/token engine | USD/token rerouting-engine "
                + "| USD/token reparallelization-engine | pause / n engine | pause / n rerouting-engine "
                + "| pause / n reparallelization-engine |"), table);
        assertTrue(table.contains("| GPT-20B | A_S | 8.00 | 20.00 | 12.00 | 4.00 | 9.00 | 6.00 | 2.50× | 1.50× "
                + "| 1.000e-05 | 2.000e-05 | 1.500e-05 | 5.0 / 3 | 6.0 / 2 | 0.0 / 0 |"), table);
        assertTrue(table.contains("| GPT-20B | B_S | 12.00 | 9.00 | 18.00 | 6.00 | 6.00 | 8.00 | 0.75× | 1.50× "
                + "| 1.000e-05 | 2.000e-05 | 1.500e-05 | 0.0 / 0 | 0.0 / 0 | 0.0 / 0 |"), table);
        // geometric means: sqrt(2.5 * 0.75) = 1.369, sqrt(1.5 * 1.5) = 1.5
        assertTrue(table.contains("The engine's P99 is lower than both same-engine baselines in 1 of 2 cells (cells with "
                + "both); geometric mean of rerouting-engine P99 / engine P99: 1.37× over 2 cells; of "
                + "reparallelization-engine P99 / engine P99: 1.50× over 2 cells."), table);
        // Fig. 7 table lists them as points
        assertTrue(md.contains("| A_S | rerouting-engine | 2.000e-05 | 9.00 | 20.00 |"), md);
    }

    @Test
    void withoutTheSameEngineBaselinesNothingNewIsRendered() throws IOException {
        Path dir = fixture(tmp.resolve("r"), false).write();
        EvaluationReport.write(dir);
        String md = Files.readString(dir.resolve("report.md"));
        assertTrue(md.contains("## The real engine vs the simulator"), "the engine section itself stays");
        assertFalse(md.contains("same-engine"), md);
        assertFalse(md.contains("Same engine"), md);
        assertFalse(md.contains(RO), md);
        assertFalse(md.contains(RP), md);
    }

    @Test
    void plotsCarryTheSameEngineBaselines() throws IOException {
        ResultsFixture f = fixture(tmp.resolve("r"), true);
        for (String system : List.of("spotserve", ENGINE, RO, RP)) {
            for (int i = 0; i < 10; i++) {
                f.request(GPT, "A_S", system, i, 10.0 * i, 5 + i);
            }
        }
        Path dir = f.write();
        Results r = Results.load(dir);
        Results.Cell cell = new Results.Cell(GPT, "A_S");
        Analysis a = new Analysis(r);
        org.knowm.xchart.XYChart cdf = Plots.latencyCdf(cell, r.requests.get(cell), a);
        for (String s : List.of(RO, RP)) {
            org.knowm.xchart.XYSeries series = cdf.getSeriesMap().get(s + " (10/10 done)");
            assertNotNull(series, cdf.getSeriesMap().keySet().toString());
            assertEquals(Plots.color(s), series.getLineColor());
            assertNotNull(series.getLineStyle().getDashArray(), s + " is dashed");
        }
        org.knowm.xchart.XYChart cost = Plots.costVsLatency(a.costPoints(), true);
        org.knowm.xchart.XYSeries point = cost.getSeriesMap().get("reparallelization-engine B_S");
        assertNotNull(point, cost.getSeriesMap().keySet().toString());
        org.junit.jupiter.api.Assertions.assertArrayEquals(new double[] {1.5e-5}, point.getXData());
        org.junit.jupiter.api.Assertions.assertArrayEquals(new double[] {18}, point.getYData());
        EvaluationReport.write(dir);
        assertTrue(Files.isRegularFile(dir.resolve("plots/latency-cdf-GPT-20B-A_S.png")), "CDF of GPT-20B A_S written");
        assertTrue(Files.readString(dir.resolve("report.md")).contains("The same-engine baselines (rerouting-engine, "
                + "reparallelization-engine) are dash-dot curves"));
    }
}
