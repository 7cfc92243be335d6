package io.spotserve.bench.report;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The report section of {@code Evaluation --setup artifact} (issue 16 part 1): artifact.csv beside the paper's Fig. 6
 * labels ({@link PaperFigures#FIG6}). Per reload speed and cell: each engine system's P99 and average, the two
 * ratios (baseline P99 / SpotServe P99) and whether the cell's ordering is the paper's — SpotServe first, then the
 * baseline the paper's labels put second (the smaller ratio; a tie in the paper accepts either order); per model and
 * baseline, our four ratios against the paper's range over that model's four cells. Target: every cell's ordering
 * as in the paper and every per-model ratio inside the paper's range, at one reload speed.
 */
public final class ArtifactReport {
    /** The file {@code --setup artifact} writes. */
    public static final String CSV = "artifact.csv";
    private static final String SS = PaperFigures.ENGINE;
    private static final String RER = PaperFigures.ENGINE_REROUTING;
    private static final String REP = PaperFigures.ENGINE_REPARALLELIZATION;
    private static final List<String> COLUMNS = List.of("reload_gbps", "model", "trace", "system", "rerouting_layout",
            "p99_s", "avg_s", "requests", "completed");

    private ArtifactReport() {
    }

    /** P99 and average of one run. */
    record Run(double p99, double avg, long requests, long completed) {
    }

    /** One cell's verdict at one reload speed. */
    record CellVerdict(String model, String trace, double vsRep, double vsRer, boolean ordering) {
    }

    /** reload speed → model → trace → system → run, in file order; rerouting layout per model. */
    static final class Data {
        final Map<String, Map<String, Map<String, Map<String, Run>>>> runs = new LinkedHashMap<>();
        final Map<String, String> layouts = new TreeMap<>();
    }

    static Data load(Path csv) {
        Data d = new Data();
        Csv.read(csv, COLUMNS, row -> {
            d.runs.computeIfAbsent(row.name("reload_gbps"), k -> new LinkedHashMap<>())
                    .computeIfAbsent(row.name("model"), k -> new LinkedHashMap<>())
                    .computeIfAbsent(row.name("trace"), k -> new LinkedHashMap<>())
                    .put(row.name("system"), new Run(row.requiredNumber("p99_s"), row.requiredNumber("avg_s"),
                            row.integer("requests"), row.integer("completed")));
            d.layouts.put(row.name("model"), row.name("rerouting_layout"));
        });
        return d;
    }

    /** Whether our ratios order the cell as the paper's labels do. */
    static boolean ordering(double vsRep, double vsRer, PaperFigures.Fig6 paper) {
        if (!(vsRep > 1) || !(vsRer > 1)) {
            return false; // SpotServe is not the fastest
        }
        if (paper.vsRerouting() == paper.vsReparallelization()) {
            return true;
        }
        return (paper.vsRerouting() > paper.vsReparallelization()) == (vsRer > vsRep);
    }

    /** The paper's range of one model's four labels against one baseline: {min, max}. */
    static double[] paperRange(String model, boolean vsRerouting) {
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (PaperFigures.Fig6 f : PaperFigures.FIG6.get(model).values()) {
            double v = vsRerouting ? f.vsRerouting() : f.vsReparallelization();
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        return new double[] {lo, hi};
    }

    /** Whether a ratio rounds into the paper's range (its labels have two decimals). */
    static boolean inRange(double ratio, double[] range) {
        return ratio >= range[0] - 0.005 && ratio < range[1] + 0.005;
    }

    /**
     * Issue 16 part 1 at one reload speed: cells ordered as the paper orders them, and ratios inside the paper's
     * per-model range (two per cell); met when every cell and every ratio is.
     */
    record SpeedVerdict(String gbps, int ordered, int cells, int inRange, int ratios) {
        boolean met() {
            return cells > 0 && ordered == cells && inRange == ratios;
        }
    }

    /** The cells of one reload speed that hold all three systems, in the paper's model and trace order. */
    static List<CellVerdict> cells(Map<String, Map<String, Map<String, Run>>> speed) {
        List<CellVerdict> cells = new ArrayList<>();
        for (String model : PaperFigures.MODELS) {
            Map<String, Map<String, Run>> byTrace = speed.get(model);
            if (byTrace == null) {
                continue;
            }
            for (String trace : PaperFigures.STABLE_TRACES) {
                Map<String, Run> sys = byTrace.get(trace);
                if (sys == null || !sys.containsKey(SS) || !sys.containsKey(RER) || !sys.containsKey(REP)) {
                    continue;
                }
                Run ss = sys.get(SS);
                double rep = sys.get(REP).p99() / ss.p99();
                double rer = sys.get(RER).p99() / ss.p99();
                cells.add(new CellVerdict(model, trace, rep, rer,
                        ordering(rep, rer, PaperFigures.FIG6.get(model).get(trace))));
            }
        }
        return cells;
    }

    /** How many of one model's cells have their ratio against one baseline inside the paper's range for it. */
    private static int inRange(List<CellVerdict> cellsOfOneModel, boolean vsRerouting) {
        int in = 0;
        for (CellVerdict c : cellsOfOneModel) {
            in += inRange(vsRerouting ? c.vsRer() : c.vsRep(), paperRange(c.model(), vsRerouting)) ? 1 : 0;
        }
        return in;
    }

    /** The verdict of one reload speed over its cells. */
    static SpeedVerdict verdict(String gbps, List<CellVerdict> cells) {
        int ordered = 0;
        int in = 0;
        for (CellVerdict c : cells) {
            ordered += c.ordering() ? 1 : 0;
        }
        for (String model : PaperFigures.MODELS) {
            List<CellVerdict> mine = cells.stream().filter(c -> c.model().equals(model)).toList();
            in += inRange(mine, false) + inRange(mine, true);
        }
        return new SpeedVerdict(gbps, ordered, cells.size(), in, 2 * cells.size());
    }

    /** Issue 16 part 1 per reload speed of {@code resultsDir}'s artifact.csv, in file order; empty without it. */
    static List<SpeedVerdict> verdicts(Path resultsDir) {
        Path csv = resultsDir.resolve(CSV);
        if (!Files.isRegularFile(csv)) {
            return List.of();
        }
        List<SpeedVerdict> out = new ArrayList<>();
        load(csv).runs.forEach((gbps, speed) -> out.add(verdict(gbps, cells(speed))));
        return out;
    }

    /** The section, or null when {@code resultsDir} has no artifact.csv. */
    public static String section(Path resultsDir) {
        Path csv = resultsDir.resolve(CSV);
        if (!Files.isRegularFile(csv)) {
            return null;
        }
        return render(load(csv));
    }

    static String render(Data d) {
        StringBuilder sb = new StringBuilder();
        line(sb, "## Paper-faithful profile (`--setup artifact`, issue 16 part 1)");
        line(sb, "");
        line(sb, "The Fig. 6 grid under what the authors' artifact (Hsword/SpotServe, branch `artifact`) really did, through "
                + "the real engine only: near-periodic artifact arrivals at 1.5 / 0.35 / 0.2 req/s, the optimizers planning "
                + "for the required throughputs 2.0 / 0.4 / 0.2 req/s with the artifact policy, maximum batch 4, every "
                + "trace event fired 30 s early for every system, instances usable when their event fires, the +O cells "
                + "replaying `trace_0304_ondemand` / `trace_0506_ondemand` (the same fleet for every system), Rerouting's "
                + "layout sized for the whole 10-instance cluster (" + layouts(d) + "), a Rerouting pipeline serving after "
                + "engine start-up + its weight load + the start-up again while the others serve, Reparallelization "
                + "restarting every engine and reloading every weight at each change. Engine start-up 5 s (our "
                + "assumption); the paper gives no reload speed, so the grid runs at several. Ratios are baseline P99 / "
                + "`spotserve-engine` P99; paper labels from Fig. 6 (rep / rer). Written by "
                + "`Evaluation --setup artifact` (artifact.csv); notes: ../notes/evaluation.md, \"The paper-faithful profile\".");
        line(sb, "");
        List<String> met = new ArrayList<>();
        for (Map.Entry<String, Map<String, Map<String, Map<String, Run>>>> speed : d.runs.entrySet()) {
            List<CellVerdict> cells = cells(speed.getValue());
            line(sb, "### Reload %s GB/s per instance", speed.getKey());
            line(sb, "");
            line(sb, "| cell | paper rep / rer | P99 spotserve (avg) | P99 rerouting (avg) | P99 reparallelization (avg) "
                    + "| rep/ss | rer/ss | ordering |");
            line(sb, "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |");
            for (CellVerdict c : cells) {
                PaperFigures.Fig6 paper = PaperFigures.FIG6.get(c.model()).get(c.trace());
                Map<String, Run> sys = speed.getValue().get(c.model()).get(c.trace());
                line(sb, "| %s %s | %.2f / %.2f | %s | %s | %s | %.2f | %.2f | %s |", c.model(), c.trace(),
                        paper.vsReparallelization(), paper.vsRerouting(), run(sys.get(SS)), run(sys.get(RER)),
                        run(sys.get(REP)), c.vsRep(), c.vsRer(), c.ordering() ? "as paper" : "**differs**");
            }
            line(sb, "");
            line(sb, "| model | paper rep/ss range | ours rep/ss | in range | paper rer/ss range | ours rer/ss | in range |");
            line(sb, "| --- | --- | --- | --- | --- | --- | --- |");
            for (String model : PaperFigures.MODELS) {
                List<CellVerdict> mine = cells.stream().filter(c -> c.model().equals(model)).toList();
                if (mine.isEmpty()) {
                    continue;
                }
                StringBuilder row = new StringBuilder("| " + model + " |");
                for (boolean vsRer : new boolean[] {false, true}) {
                    double[] pr = paperRange(model, vsRer);
                    StringBuilder ours = new StringBuilder();
                    for (CellVerdict c : mine) {
                        ours.append(ours.length() == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.2f",
                                vsRer ? c.vsRer() : c.vsRep()));
                    }
                    row.append(String.format(Locale.ROOT, " %.2f–%.2f | %s | %d of %d |", pr[0], pr[1], ours,
                            inRange(mine, vsRer), mine.size()));
                }
                line(sb, "%s", row);
            }
            line(sb, "");
            SpeedVerdict v = verdict(speed.getKey(), cells);
            if (v.met()) {
                met.add(speed.getKey());
            }
            line(sb, "At %s GB/s: ordering as in the paper in **%d of %d** cells; per-model ratios inside the paper's "
                    + "range: **%d of %d** — %s.", v.gbps(), v.ordered(), v.cells(), v.inRange(), v.ratios(),
                    v.met() ? "**MET**" : "**NOT MET**");
            line(sb, "");
        }
        line(sb, "**Verdict (issue 16 part 1: every cell's ordering as in the paper and the per-model ratios within the "
                + "paper's range for some stated reload speed): %s**", met.isEmpty()
                ? "NOT MET at any reload speed run (" + String.join(", ", d.runs.keySet()) + " GB/s)"
                : "MET at " + String.join(", ", met) + " GB/s");
        line(sb, "");
        return sb.toString();
    }

    private static String layouts(Data d) {
        List<String> out = new ArrayList<>();
        d.layouts.forEach((m, l) -> out.add(m + " " + l));
        return String.join(", ", out);
    }

    private static String run(Run r) {
        String s = String.format(Locale.ROOT, "%.1f (%.1f)", r.p99(), r.avg());
        return r.completed() < r.requests() ? s + String.format(Locale.ROOT, ", %d of %d done", r.completed(),
                r.requests()) : s;
    }

    private static void line(StringBuilder sb, String fmt, Object... args) {
        sb.append(args.length == 0 ? fmt : String.format(Locale.ROOT, fmt, args)).append('\n');
    }
}
