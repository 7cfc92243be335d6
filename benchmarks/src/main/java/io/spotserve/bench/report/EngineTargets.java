package io.spotserve.bench.report;

import io.spotserve.bench.report.Results.Cell;
import io.spotserve.bench.report.Results.Latencies;
import io.spotserve.bench.report.Results.Summary;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Issue 16's targets, each with its verdict computed from the CSV files: the real engine against the paper's
 * baselines built into it on the main run (geometric means, the worst cell, restarts, pauses), the same over the
 * seeds of robustness.csv when it holds engine rows, the paper-faithful profile of artifact.csv per reload speed, and
 * the cost claim. One table, so a reader sees every target of the issue and where it stands in one place.
 */
final class EngineTargets {
    private EngineTargets() {
    }

    /** A row of the table: which part of the issue, the target, its verdict and the numbers behind it. */
    record Row(String part, String target, String verdict, String detail) {
    }

    /** The section's lines; none when summary.csv has no same-engine comparison. */
    static List<String> markdown(Analysis a, Path resultsDir) {
        List<Analysis.SameEngineRow> rows = a.sameEngineRows();
        if (rows.isEmpty()) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        out.add("## Targets of issue 16 (the real engine against the baselines built into it)");
        out.add("");
        out.add("`" + PaperFigures.ENGINE + "` against `" + PaperFigures.ENGINE_REROUTING + "` and `"
                + PaperFigures.ENGINE_REPARALLELIZATION + "`: the same ServingEngine, request manager, executor, clock, "
                + "cloud and arrivals, and in +O cells the same on-demand fleet (the cell's replayed schedule); only what "
                + "happens to context at a reconfiguration differs. Ratios are baseline P99 / engine P99. Every verdict is "
                + "computed from the files in this directory.");
        out.add("");
        out.add("| part | target | verdict | from the data |");
        out.add("|---|---|---|---|");
        for (Row r : rows(a, resultsDir)) {
            out.add(String.format(Locale.ROOT, "| %s | %s | **%s** | %s |", r.part(), r.target(), r.verdict(),
                    r.detail()));
        }
        return out;
    }

    /** The rows of the table, in the order of parts (2 first: the main grid, then 1, then 3). */
    static List<Row> rows(Analysis a, Path resultsDir) {
        List<Analysis.SameEngineRow> same = a.sameEngineRows();
        List<Row> out = new ArrayList<>();
        String run = a.results().run == null ? "this run" : a.results().run.label();
        // the main run is one seed: the per-seed computation of robustness.csv's rows, on summary.csv
        List<EngineSeeds.Seed> main = EngineSeeds.perSeed(Map.of(0L, a.results().summary), a.cells());
        if (main.isEmpty()) {
            out.add(new Row("2", "the main grid's targets", Analysis.Verdict.NO_DATA.label(),
                    "no cell has all three engine systems with a P99"));
        } else {
            EngineSeeds.Seed m = main.get(0);
            out.add(new Row("2", String.format(Locale.ROOT, "geometric mean of %s / engine P99 >= %.2fx (%s)",
                    PaperFigures.ENGINE_REROUTING, EngineSeeds.GEO_REROUTING, run),
                    verdict(m.geoRerouting() >= EngineSeeds.GEO_REROUTING),
                    String.format(Locale.ROOT, "%.2fx over %d cells", m.geoRerouting(), m.cells())));
            out.add(new Row("2", String.format(Locale.ROOT, "geometric mean of %s / engine P99 >= %.2fx (%s)",
                    PaperFigures.ENGINE_REPARALLELIZATION, EngineSeeds.GEO_REPARALLELIZATION, run),
                    verdict(m.geoReparallelization() >= EngineSeeds.GEO_REPARALLELIZATION),
                    String.format(Locale.ROOT, "%.2fx over %d cells", m.geoReparallelization(), m.cells())));
            out.add(new Row("2", String.format(Locale.ROOT, "no cell below %.2fx of either baseline's P99 (%s)",
                    EngineSeeds.WORST_CELL, run), verdict(m.worstCell() >= EngineSeeds.WORST_CELL),
                    String.format(Locale.ROOT, "smallest ratio %.2fx (%s)", m.worstCell(), m.worstAt())));
        }
        out.add(restarts(a, same));
        out.add(new Row("2", "pauses reported per cell", "REPORTED", "the pause / n columns of \"Same engine, only the "
                + "reconfiguration mechanism differs\" (summed pause_s of reconfigurations.csv and the number of "
                + "reconfigurations, the initial fleet included)"));
        out.addAll(seeds(a));
        out.add(artifact(resultsDir));
        out.add(cost(a));
        return out;
    }

    private static String verdict(boolean met) {
        return (met ? Analysis.Verdict.MET : Analysis.Verdict.NOT_MET).label();
    }

    /** Zero restarts for the engine over the grid, from requests.csv; the baselines' counts beside it. */
    private static Row restarts(Analysis a, List<Analysis.SameEngineRow> same) {
        String target = "zero restarts: no request of the engine prefills again after losing its KV cache";
        Map<Cell, Map<String, Latencies>> req = a.results().requests;
        if (req.isEmpty()) {
            return new Row("2", target, Analysis.Verdict.NO_DATA.label(), "requests.csv is absent");
        }
        long[] total = new long[3];
        int cells = 0;
        List<String> where = new ArrayList<>();
        String[] systems = {PaperFigures.ENGINE, PaperFigures.ENGINE_REROUTING, PaperFigures.ENGINE_REPARALLELIZATION};
        for (Analysis.SameEngineRow r : same) {
            Map<String, Latencies> by = req.getOrDefault(new Cell(r.model(), r.trace()), Map.of());
            if (by.get(PaperFigures.ENGINE) == null) {
                continue;
            }
            cells++;
            for (int i = 0; i < systems.length; i++) {
                Latencies l = by.get(systems[i]);
                total[i] += l == null ? 0 : l.restarts();
            }
            long own = by.get(PaperFigures.ENGINE).restarts();
            if (own > 0) {
                where.add(r.model() + "/" + r.trace() + " (" + own + ")");
            }
        }
        if (cells == 0) {
            return new Row("2", target, Analysis.Verdict.NO_DATA.label(), "requests.csv has no engine rows");
        }
        return new Row("2", target, verdict(total[0] == 0), String.format(Locale.ROOT,
                "%s %d over %d cells%s (%s %d, %s %d)", systems[0], total[0], cells,
                where.isEmpty() ? "" : ": " + String.join(", ", where), systems[1], total[1], systems[2], total[2]));
    }

    /** The three targets per seed of robustness.csv, per arrival process that has engine rows. */
    private static List<Row> seeds(Analysis a) {
        List<Row> out = new ArrayList<>();
        for (Map.Entry<String, Map<Long, Map<Cell, Map<String, Summary>>>> e : a.results().robustness.entrySet()) {
            List<EngineSeeds.Seed> ss = EngineSeeds.perSeed(e.getValue(), a.cells());
            if (ss.isEmpty()) {
                continue;
            }
            long met = ss.stream().filter(EngineSeeds.Seed::targetsMet).count();
            long noWorse = ss.stream().filter(s -> s.worstCell() >= EngineSeeds.WORST_CELL).count();
            long geoR = ss.stream().filter(s -> s.geoRerouting() >= EngineSeeds.GEO_REROUTING).count();
            long geoP = ss.stream().filter(s -> s.geoReparallelization() >= EngineSeeds.GEO_REPARALLELIZATION).count();
            List<String> missed = new ArrayList<>();
            for (EngineSeeds.Seed s : ss) {
                if (!s.targetsMet()) {
                    missed.add(String.format(Locale.ROOT, "seed %d: %.2fx / %.2fx, smallest %.2fx", s.seed(),
                            s.geoRerouting(), s.geoReparallelization(), s.worstCell()));
                }
            }
            out.add(new Row("2", String.format(Locale.ROOT, "the three targets above on every seed of robustness.csv "
                            + "(%s)", Results.Run.arrivalsLabel(e.getKey())), verdict(met == ss.size()),
                    String.format(Locale.ROOT, "all three met in %d of %d seeds; no cell below %.2fx in %d, >= %.2fx "
                                    + "against %s in %d, >= %.2fx against %s in %d%s", met, ss.size(),
                            EngineSeeds.WORST_CELL, noWorse, EngineSeeds.GEO_REROUTING,
                            PaperFigures.ENGINE_REROUTING, geoR, EngineSeeds.GEO_REPARALLELIZATION,
                            PaperFigures.ENGINE_REPARALLELIZATION, geoP,
                            missed.isEmpty() ? "" : "; missed (geometric means, smallest cell): "
                                    + String.join("; ", missed))));
        }
        if (out.isEmpty()) {
            out.add(new Row("2", "the three targets above on every seed of robustness.csv",
                    Analysis.Verdict.NO_DATA.label(), "robustness.csv has no engine rows (run Evaluation with "
                    + "--robustness --robustness-engine)"));
        }
        return out;
    }

    /** Part 1: the paper-faithful profile's verdict per reload speed of artifact.csv. */
    private static Row artifact(Path resultsDir) {
        String target = "paper-faithful profile: every cell ordered as in Fig. 6 and the per-model ratios inside the "
                + "paper's range, for some stated reload speed";
        List<ArtifactReport.SpeedVerdict> vs = ArtifactReport.verdicts(resultsDir);
        if (vs.isEmpty()) {
            return new Row("1", target, Analysis.Verdict.NO_DATA.label(), "artifact.csv is absent");
        }
        List<String> parts = new ArrayList<>();
        boolean any = false;
        for (ArtifactReport.SpeedVerdict v : vs) {
            any |= v.met();
            parts.add(String.format(Locale.ROOT, "%s GB/s: ordering %d of %d, ratios in range %d of %d", v.gbps(),
                    v.ordered(), v.cells(), v.inRange(), v.ratios()));
        }
        return new Row("1", target, verdict(any), String.join("; ", parts)
                + " (section \"Paper-faithful profile\")");
    }

    /** Part 3: the engine's cost against the equal-instance-hours bound, and with the artifact's accounting. */
    private static Row cost(Analysis a) {
        List<CostClaim.Row> rows = CostClaim.rows(a, List.of(PaperFigures.ENGINE));
        String target = String.format(Locale.ROOT, "the cost claim stated correctly: ours against the %.1f%% "
                + "equal-instance-hours bound at <= +%.0f%% average latency, and, labelled, with the artifact's "
                + "accounting", 100 * CostClaim.equalInstanceHoursBound(), 100 * PaperFigures.FIG7_AVG_LATENCY_RISE);
        if (rows.isEmpty()) {
            return new Row("3", target, Analysis.Verdict.NO_DATA.label(), "no " + PaperFigures.COST_MODEL + " row of "
                    + PaperFigures.ENGINE);
        }
        double bound = CostClaim.equalInstanceHoursBound();
        String ours = CostClaim.verdict("Ours", rows.stream().map(CostClaim.Row::ours).toList(), bound, true);
        String theirs = CostClaim.verdict("Artifact's accounting", rows.stream().map(CostClaim.Row::artifact).toList(),
                bound, false);
        return new Row("3", target, "REPORTED", item(ours) + " " + item(theirs)
                + " (section \"The cost claim, stated correctly\")");
    }

    /** A list item's text without its leading "- ". */
    private static String item(String line) {
        return line.startsWith("- ") ? line.substring(2) : line;
    }
}
