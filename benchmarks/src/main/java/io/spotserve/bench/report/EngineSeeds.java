package io.spotserve.bench.report;

import io.spotserve.bench.report.Results.Cell;
import io.spotserve.bench.report.Results.Summary;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The real engine against the baselines built into it, seed by seed of robustness.csv (rows written by
 * {@code Evaluation --robustness --robustness-engine}), with issue 16's targets: no cell below
 * {@link #WORST_CELL} of either baseline's P99, geometric mean of baseline P99 / engine P99 at least
 * {@link #GEO_REROUTING} against Rerouting and {@link #GEO_REPARALLELIZATION} against Reparallelization.
 */
final class EngineSeeds {
    static final double WORST_CELL = 0.95;
    static final double GEO_REROUTING = 1.15;
    static final double GEO_REPARALLELIZATION = 1.3;

    /**
     * One seed: cells with all three engine systems, in how many the engine's P99 is below both baselines', the
     * geometric means and the smallest cell ratio against either baseline, with where it is ("model/trace vs
     * baseline").
     */
    record Seed(long seed, int cells, int belowBoth, double geoRerouting, double geoReparallelization,
                double worstCell, String worstAt) {
        boolean targetsMet() {
            return cells > 0 && worstCell >= WORST_CELL && geoRerouting >= GEO_REROUTING
                    && geoReparallelization >= GEO_REPARALLELIZATION;
        }
    }

    private EngineSeeds() {
    }

    /** Per seed with engine rows, in seed order; seeds without any cell holding all three systems are left out. */
    static List<Seed> perSeed(Map<Long, Map<Cell, Map<String, Summary>>> seeds, List<Cell> cells) {
        List<Seed> out = new ArrayList<>();
        for (Map.Entry<Long, Map<Cell, Map<String, Summary>>> e : seeds.entrySet()) {
            int n = 0;
            int both = 0;
            double logR = 0;
            double logP = 0;
            double worst = Double.POSITIVE_INFINITY;
            String worstAt = "";
            for (Cell c : cells) {
                Map<String, Summary> by = e.getValue().getOrDefault(c, Map.of());
                Summary eng = by.get(PaperFigures.ENGINE);
                Summary rer = by.get(PaperFigures.ENGINE_REROUTING);
                Summary rep = by.get(PaperFigures.ENGINE_REPARALLELIZATION);
                if (eng == null || rer == null || rep == null) {
                    continue;
                }
                double r = Analysis.ratio(rer.p99(), eng.p99());
                double p = Analysis.ratio(rep.p99(), eng.p99());
                if (!Double.isFinite(r) || !Double.isFinite(p) || r <= 0 || p <= 0) {
                    continue;
                }
                n++;
                both += r > 1 && p > 1 ? 1 : 0;
                logR += Math.log(r);
                logP += Math.log(p);
                if (Math.min(r, p) < worst) {
                    worst = Math.min(r, p);
                    worstAt = c.model() + "/" + c.trace() + " vs "
                            + (r <= p ? PaperFigures.ENGINE_REROUTING : PaperFigures.ENGINE_REPARALLELIZATION);
                }
            }
            if (n > 0) {
                out.add(new Seed(e.getKey(), n, both, Math.exp(logR / n), Math.exp(logP / n), worst, worstAt));
            }
        }
        return out;
    }

    /** One line for the report: how the engine fares against its same-engine baselines over the seeds. */
    static String sentence(Map<Long, Map<Cell, Map<String, Summary>>> seeds, List<Cell> cells) {
        List<Seed> ss = perSeed(seeds, cells);
        if (ss.isEmpty()) {
            return "No seed has all three engine systems in a cell.";
        }
        long all = ss.stream().filter(s -> s.belowBoth() == s.cells()).count();
        long met = ss.stream().filter(Seed::targetsMet).count();
        return String.format(Locale.ROOT, "Engine against the baselines built into it (rer-e/eng, rep-e/eng), %d seeds: "
                        + "below both in every cell in %d; cells below both per seed, median %s of %d; geometric "
                        + "mean per seed, median (min-max) %s against Rerouting and %s against Reparallelization; "
                        + "smallest cell ratio, median %s; issue 16's targets (no cell below %.2fx, geometric means "
                        + ">= %.2fx / >= %.2fx) met in %d of %d seeds.",
                ss.size(), all, fmt(median(ss.stream().mapToDouble(Seed::belowBoth).toArray()), "%.0f"),
                ss.get(0).cells(), range(ss.stream().mapToDouble(Seed::geoRerouting).toArray()),
                range(ss.stream().mapToDouble(Seed::geoReparallelization).toArray()),
                fmt(median(ss.stream().mapToDouble(Seed::worstCell).toArray()), "%.2fx"), WORST_CELL, GEO_REROUTING,
                GEO_REPARALLELIZATION, met, ss.size());
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    private static String range(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return String.format(Locale.ROOT, "%.2fx (%.2f-%.2f)", median(s), s[0], s[s.length - 1]);
    }

    private static String fmt(double v, String f) {
        return String.format(Locale.ROOT, f, v);
    }
}
