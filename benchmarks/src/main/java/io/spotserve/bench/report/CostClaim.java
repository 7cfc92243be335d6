package io.spotserve.bench.report;

import io.spotserve.bench.report.Analysis.CostComparison;
import io.spotserve.bench.report.Analysis.CostPoint;
import io.spotserve.bench.report.Results.Summary;
import io.spotserve.plan.Hardware;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The paper's cost claim (Fig. 7: "up to 54% cheaper than on-demand at < 18% higher average latency") stated two
 * ways (issue 16, part 3).
 *
 * <p><b>Our accounting</b> (summary.csv): every system is billed its instance-seconds up to the run's stop at 1.9
 * (spot) / 3.9 (on-demand) USD per instance-hour, divided by its generated tokens. At equal instance-hours the price
 * ratio bounds the saving at {@link #equalInstanceHoursBound} = 1 − 1.9/3.9 = 51.3%; a larger saving needs fewer
 * instance-hours than the on-demand fleet it is compared with.
 *
 * <p><b>The artifact's accounting</b> (Hsword/SpotServe, branch {@code artifact},
 * {@code elastic-switch/scripts_ae/tradeoff_plot.py}, which draws Fig. 7): one on-demand curve for every trace, each
 * fleet of N instances billed {@code N · 3.912 · (18/60)} USD — 18 minutes, for runs over the 17-minute window
 * ({@link #ARTIFACT_ON_DEMAND_BILLED_SECONDS}) — and its latencies shifted down before plotting
 * ({@code batch_bias = -4.5}: average −4.5 s, P99 −9 s). We apply those two steps to our on-demand rows of the
 * 17-minute trace B_S (1,020 s) and compare every trace with that one curve, as the script does; the spot side
 * keeps our bill (the script bills the spot runs 203 / 137 instance-minutes on A_S / B_S, where the traces hold
 * 195 / 133 — against SpotServe — and its prices 1.9046 / 3.912 move a cut by 0.03 points; neither is applied).
 *
 * <p>The comparable fleet is chosen the same way in both: among the fleets the subject's average latency is within
 * +18% of, the most expensive per token; when the subject is slower than that against every fleet, the fleet with
 * the closest average latency (then the claim is not met there).
 */
final class CostClaim {
    /** The on-demand billing of the artifact's plotting script: {@code (18/60)} hours per fleet. */
    static final double ARTIFACT_ON_DEMAND_BILLED_SECONDS = 18 * 60;
    /** The script's {@code batch_bias}: on-demand average latency shifted by this, P99 by twice this. */
    static final double ARTIFACT_AVG_SHIFT_SECONDS = -4.5;
    static final double ARTIFACT_P99_SHIFT_SECONDS = 2 * ARTIFACT_AVG_SHIFT_SECONDS;
    /** The trace whose on-demand rows stand for the artifact's one on-demand curve (17 minutes, as its runs). */
    static final String ARTIFACT_ON_DEMAND_TRACE = "B_S";
    /** Tokens our USD/token divides by per completed request (S_out); the artifact divides by 640 on both sides. */
    static final int OUTPUT_TOKENS = 128;

    /** One subject on one trace under both accountings. */
    record Row(String trace, String subject, CostComparison ours, CostComparison artifact) {
    }

    private CostClaim() {
    }

    /** 1 − spot/on-demand price: the saving when spot serving holds as many instance-hours as on-demand serving. */
    static double equalInstanceHoursBound(double spotUsdPerHour, double onDemandUsdPerHour) {
        if (!(spotUsdPerHour > 0) || !(onDemandUsdPerHour > 0)) {
            throw new IllegalArgumentException("prices must be > 0 USD/h, were " + spotUsdPerHour + " and "
                    + onDemandUsdPerHour);
        }
        return 1 - spotUsdPerHour / onDemandUsdPerHour;
    }

    /** {@link #equalInstanceHoursBound(double, double)} at the evaluation's prices (g4dn.12xlarge, 1.9 / 3.9). */
    static double equalInstanceHoursBound() {
        return equalInstanceHoursBound(Hardware.G4DN_12XLARGE.spotUsdPerHour(),
                Hardware.G4DN_12XLARGE.onDemandUsdPerHour());
    }

    /**
     * An on-demand fleet as the artifact's script prices and draws it: {@code instances} billed
     * {@link #ARTIFACT_ON_DEMAND_BILLED_SECONDS} at {@code usdPerHour} over {@code completed} requests of
     * {@code tokensPerRequest} tokens, average latency + {@link #ARTIFACT_AVG_SHIFT_SECONDS}, P99 +
     * {@link #ARTIFACT_P99_SHIFT_SECONDS}.
     *
     * @throws IllegalArgumentException if instances, completed or tokensPerRequest is not positive
     */
    static CostPoint artifactOnDemand(CostPoint fleet, int instances, long completed, double usdPerHour,
                                      int tokensPerRequest) {
        if (instances < 1 || completed < 1 || tokensPerRequest < 1 || !(usdPerHour > 0)) {
            throw new IllegalArgumentException("on-demand fleet " + fleet.system() + ": instances, completed requests, "
                    + "tokens per request and price must be > 0; were " + instances + ", " + completed + ", "
                    + tokensPerRequest + ", " + usdPerHour);
        }
        double usd = instances * usdPerHour * ARTIFACT_ON_DEMAND_BILLED_SECONDS / 3600.0
                / ((double) completed * tokensPerRequest);
        return new CostPoint(fleet.trace(), fleet.system(), usd, fleet.avg() + ARTIFACT_AVG_SHIFT_SECONDS,
                fleet.p99() + ARTIFACT_P99_SHIFT_SECONDS);
    }

    /**
     * The subject against the comparable fleet of {@code fleets} (see the class comment); {@code onDemand} null and
     * NaN numbers when no fleet or the subject has no finite latency and cost.
     */
    static CostComparison compare(CostPoint subject, List<CostPoint> fleets) {
        List<CostPoint> usable = fleets.stream()
                .filter(p -> Double.isFinite(p.avg()) && p.avg() > 0 && Double.isFinite(p.usdPerToken()))
                .toList();
        if (usable.isEmpty() || !Double.isFinite(subject.avg()) || !Double.isFinite(subject.usdPerToken())) {
            return new CostComparison(subject, null, Double.NaN, Double.NaN, Double.NaN, false, false, null);
        }
        double limit = 1 + PaperFigures.FIG7_AVG_LATENCY_RISE;
        Optional<CostPoint> within = usable.stream().filter(p -> subject.avg() <= limit * p.avg())
                .max(Comparator.comparingDouble(CostPoint::usdPerToken));
        CostPoint od = within.orElseGet(() -> usable.stream()
                .min(Comparator.comparingDouble(p -> Math.abs(Math.log(subject.avg() / p.avg())))).orElseThrow());
        double costCut = 1 - subject.usdPerToken() / od.usdPerToken();
        double avgRise = subject.avg() / od.avg() - 1;
        double p99Cut = 1 - Analysis.ratio(subject.p99(), od.p99());
        boolean met = within.isPresent() && costCut >= PaperFigures.FIG7_COST_CUT;
        return new CostComparison(subject, od, costCut, avgRise, p99Cut, within.isPresent(), met, od.trace());
    }

    /**
     * Both accountings for every stable trace of the cost model and each of {@code subjects} that has a row there.
     */
    static List<Row> rows(Analysis a, List<String> subjects) {
        List<CostPoint> pts = a.costPoints();
        List<CostPoint> artifactCurve = new ArrayList<>();
        for (CostPoint p : pts) {
            int n = PaperFigures.onDemandSize(p.system());
            if (n > 0 && p.trace().equals(ARTIFACT_ON_DEMAND_TRACE)) {
                Summary s = a.results().get(PaperFigures.COST_MODEL, p.trace(), p.system()).orElseThrow();
                if (s.completed() > 0) {
                    artifactCurve.add(artifactOnDemand(p, n, s.completed(), Hardware.G4DN_12XLARGE.onDemandUsdPerHour(),
                            OUTPUT_TOKENS));
                }
            }
        }
        List<Row> out = new ArrayList<>();
        for (String subject : subjects) {
            for (CostPoint p : pts) {
                if (p.system().equals(subject)) {
                    out.add(new Row(p.trace(), subject, compare(p, a.onDemandFor(p.trace())),
                            compare(p, artifactCurve)));
                }
            }
        }
        return out;
    }
    /** The report's section: both accountings per trace and subject, and the verdicts. */
    static List<String> markdown(Analysis a, List<String> subjects) {
        List<Row> rows = rows(a, subjects);
        List<String> out = new ArrayList<>();
        double bound = equalInstanceHoursBound();
        out.add("### The cost claim, stated correctly");
        out.add("");
        out.add(String.format(Locale.ROOT, "At equal instance-hours, spot serving at %.1f USD/h against on-demand at "
                        + "%.1f USD/h saves %.1f%% (the price ratio); a larger cut needs fewer instance-hours than the "
                        + "on-demand fleet it matches. **Ours** is the bill of summary.csv (instance-seconds up to each run's "
                        + "stop, each trace against its own on-demand rows). **Artifact's accounting** (labelled: not ours) "
                        + "is what the authors' plotting script (`elastic-switch/scripts_ae/tradeoff_plot.py`) does to "
                        + "the on-demand curve behind the paper's 54%%: every fleet billed %.0f minutes for runs over the "
                        + "17-minute window and its latencies shifted down by %.1f s (average) / %.1f s (P99); here "
                        + "applied to our %s on-demand rows (1,020 s), one curve for every trace as in the script. "
                        + "Comparable fleet: the most expensive one the subject's average latency stays within +%.0f%% "
                        + "of (else the closest in average latency, marked *slower*).",
                Hardware.G4DN_12XLARGE.spotUsdPerHour(), Hardware.G4DN_12XLARGE.onDemandUsdPerHour(), 100 * bound,
                ARTIFACT_ON_DEMAND_BILLED_SECONDS / 60, -ARTIFACT_AVG_SHIFT_SECONDS, -ARTIFACT_P99_SHIFT_SECONDS,
                ARTIFACT_ON_DEMAND_TRACE, 100 * PaperFigures.FIG7_AVG_LATENCY_RISE));
        out.add("");
        if (rows.isEmpty()) {
            out.add("No " + PaperFigures.COST_MODEL + " rows of " + String.join(", ", subjects) + ".");
            return out;
        }
        out.add("| trace | system | ours: cut | vs | avg latency | / 51.3% bound | artifact's accounting: cut | vs "
                + "| avg latency |");
        out.add("|---|---|---:|---|---:|---:|---:|---|---:|");
        for (Row r : rows) {
            out.add(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |", r.trace(), r.subject(),
                    cut(r.ours()), fleet(r.ours()), rise(r.ours()),
                    Double.isFinite(r.ours().costCut()) ? String.format(Locale.ROOT, "%.2f", r.ours().costCut() / bound)
                            : "n/a",
                    cut(r.artifact()), fleet(r.artifact()), rise(r.artifact())));
        }
        out.add("");
        out.add(verdict("Ours", rows.stream().map(Row::ours).toList(), bound, true));
        out.add(verdict("With the artifact's accounting (not ours)", rows.stream().map(Row::artifact).toList(), bound,
                false));
        return out;
    }

    /** The largest cut within the latency bound (ties: the lower latency), against the bound and the paper's 54%. */
    static String verdict(String label, List<CostComparison> cmp, double bound, boolean againstBound) {
        Optional<CostComparison> best = cmp.stream().filter(c -> c.onDemand() != null && c.withinLatency())
                .max(Comparator.comparingDouble(CostComparison::costCut)
                        .thenComparing(Comparator.comparingDouble(CostComparison::avgRise).reversed()));
        if (best.isEmpty()) {
            return String.format(Locale.ROOT, "- %s: no subject within +%.0f%% average latency of any on-demand fleet: "
                    + "the paper's %.0f%% **NOT MET**.", label, 100 * PaperFigures.FIG7_AVG_LATENCY_RISE,
                    100 * PaperFigures.FIG7_COST_CUT);
        }
        CostComparison b = best.get();
        long met = cmp.stream().filter(CostComparison::met).count();
        String vsBound = againstBound ? String.format(Locale.ROOT, " — %s the %.1f%% equal-instance-hours bound",
                b.costCut() >= bound ? String.format(Locale.ROOT, "%.1f points above", 100 * (b.costCut() - bound))
                        : String.format(Locale.ROOT, "%.1f points below", 100 * (bound - b.costCut())), 100 * bound) : "";
        return String.format(Locale.ROOT, "- %s: best %.1f%% cheaper at %s average latency (%s %s vs %s)%s; the paper's "
                        + "%.0f%% at <= +%.0f%%: **%s** (%d of %d rows).", label, 100 * b.costCut(), signed(b.avgRise()),
                b.spotserve().system(), b.spotserve().trace(), b.onDemand().system(), vsBound,
                100 * PaperFigures.FIG7_COST_CUT, 100 * PaperFigures.FIG7_AVG_LATENCY_RISE, met > 0 ? "MET" : "NOT MET",
                met, cmp.size());
    }

    private static String cut(CostComparison c) {
        return Double.isFinite(c.costCut()) ? String.format(Locale.ROOT, "%.1f%%", 100 * c.costCut()) : "n/a";
    }

    private static String fleet(CostComparison c) {
        return c.onDemand() == null ? "—" : c.onDemand().system() + (c.withinLatency() ? "" : " *slower*");
    }

    private static String rise(CostComparison c) {
        return Double.isFinite(c.avgRise()) ? signed(c.avgRise()) : "n/a";
    }

    private static String signed(double rise) {
        return String.format(Locale.ROOT, "%+.1f%%", 100 * rise);
    }
}
