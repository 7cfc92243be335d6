package io.spotserve.bench.report;

import static io.spotserve.bench.report.PaperFigures.SPOTSERVE;

import io.spotserve.bench.report.Analysis.AblationRow;
import io.spotserve.bench.report.Analysis.CostPoint;
import io.spotserve.bench.report.Results.Cell;
import io.spotserve.bench.report.Results.Latencies;
import io.spotserve.bench.report.Results.Reconfiguration;
import io.spotserve.bench.report.Results.TimelinePoint;
import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.knowm.xchart.AnnotationLine;
import org.knowm.xchart.AnnotationText;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.XYSeries.XYSeriesRenderStyle;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.Styler.LegendPosition;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * Renders the report's PNG figures with XChart, headless: per cell a latency CDF (one curve per system,
 * unfinished requests never reach the curve, so it tops out at the completed fraction) and a timeline
 * (instances by market with SpotServe's configuration changes marked, queue length per system, and where the
 * real engine ran a third panel with its instances and configuration changes); for GPT-20B the Fig. 7
 * cost-vs-latency plot (the real engine and its same-engine baselines as their own points) and the Fig. 9
 * ablation bars next to the paper's.
 */
final class Plots {
    static {
        System.setProperty("java.awt.headless", "true");
    }

    static final int CDF_WIDTH = 900;
    static final int CDF_HEIGHT = 560;
    /**
     * The timeline PNG is two charts of this size stacked (instances above, queue below), three when the cell has
     * the real engine (its instances and configurations at the bottom).
     */
    static final int TIMELINE_WIDTH = 1000;
    static final int TIMELINE_HEIGHT = 340;
    /** The ablation PNG is two charts of this size side by side. */
    static final int PANEL_WIDTH = 700;
    static final int PANEL_HEIGHT = 500;
    /** The cost PNG is two charts of this size side by side (legend below each). */
    static final int COST_WIDTH = 700;
    static final int COST_HEIGHT = 640;
    private static final int MAX_CDF_POINTS = 400;

    /** Paths, relative to the results directory, of what was written. */
    record Written(Map<Cell, String> cdf, Map<Cell, String> timeline, String cost, String ablation) {
    }

    private Plots() {
    }

    static String fileSafe(String s) {
        return s.replaceAll("[^A-Za-z0-9._+-]", "_");
    }

    static Written renderAll(Analysis analysis, Path resultsDir) {
        Results r = analysis.results();
        Path dir = resultsDir.resolve("plots");
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir, e);
        }
        Map<Cell, String> cdf = new LinkedHashMap<>();
        Map<Cell, String> timeline = new LinkedHashMap<>();
        String run = r.run == null ? "" : " (" + r.run.label() + ")";
        for (Cell c : analysis.cells()) {
            String suffix = fileSafe(c.model()) + "-" + fileSafe(c.trace()) + ".png";
            Map<String, Latencies> lat = r.requests.get(c);
            if (lat != null && lat.values().stream().anyMatch(l -> l.finished().length > 0)) {
                String name = "plots/latency-cdf-" + suffix;
                XYChart chart = latencyCdf(c, lat, analysis);
                chart.setTitle(chart.getTitle() + run);
                save(chart, resultsDir.resolve(name));
                cdf.put(c, name);
            }
            Map<String, List<TimelinePoint>> tl = r.timeline.get(c);
            if (tl != null && !tl.isEmpty()) {
                String name = "plots/timeline-" + suffix;
                List<XYChart> charts = timeline(c, tl, r.reconfigurations.getOrDefault(c, List.of()), analysis);
                charts.get(0).setTitle(charts.get(0).getTitle() + run);
                save(charts, charts.size(), 1, resultsDir.resolve(name));
                timeline.put(c, name);
            }
        }
        String cost = null;
        List<CostPoint> points = analysis.costPoints().stream()
                .filter(p -> Double.isFinite(p.usdPerToken()) && Double.isFinite(p.avg()) && p.avg() > 0).toList();
        if (!points.isEmpty()) {
            cost = "plots/cost-vs-latency-" + fileSafe(PaperFigures.COST_MODEL) + ".png";
            XYChart avg = costVsLatency(points, false);
            XYChart p99 = costVsLatency(points, true);
            avg.setTitle(avg.getTitle() + run);
            p99.setTitle(p99.getTitle() + run);
            save(avg, p99, resultsDir.resolve(cost));
        }
        String ablation = null;
        List<AblationRow> rows = analysis.ablationRows();
        if (!rows.isEmpty()) {
            ablation = "plots/ablation-" + fileSafe(PaperFigures.COST_MODEL) + ".png";
            CategoryChart ours = ablationOurs(rows);
            ours.setTitle(ours.getTitle() + run);
            CategoryChart paper = ablationPaper();
            double top = 1;
            for (AblationRow row : rows) {
                for (double v : new double[] {row.p99A(), row.p99B(), row.avgA(), row.avgB()}) {
                    top = Double.isFinite(v) ? Math.max(top, v) : top;
                }
            }
            for (PaperFigures.Fig9 f : PaperFigures.FIG9) {
                top = Math.max(top, Math.max(Math.max(f.p99A(), f.p99B()), Math.max(f.avgA(), f.avgB())));
            }
            // one scale for both panels so that bar heights compare directly
            ours.getStyler().setYAxisMax(Math.ceil(top * 1.1 * 2) / 2);
            paper.getStyler().setYAxisMax(Math.ceil(top * 1.1 * 2) / 2);
            save(ours, paper, resultsDir.resolve(ablation));
        }
        return new Written(cdf, timeline, cost, ablation);
    }

    // ---- latency CDF -------------------------------------------------------------------------------------

    static XYChart latencyCdf(Cell cell, Map<String, Latencies> bySystem, Analysis analysis) {
        XYChart chart = new XYChartBuilder().width(CDF_WIDTH).height(CDF_HEIGHT)
                .title("Latency CDF - " + cell.model() + ", " + cell.trace())
                .xAxisTitle("end-to-end latency (s)").yAxisTitle("fraction of requests finished").build();
        style(chart);
        chart.getStyler().setLegendPosition(LegendPosition.OutsideE);
        chart.getStyler().setYAxisMin(0.0).setYAxisMax(1.0);
        double min = Double.POSITIVE_INFINITY;
        double max = 0;
        List<String> order = new ArrayList<>(bySystem.keySet());
        order.sort(java.util.Comparator.comparingInt(Analysis::systemRank)
                .thenComparingInt(PaperFigures::onDemandSize).thenComparing(java.util.Comparator.naturalOrder()));
        for (String system : order) {
            Latencies l = bySystem.get(system);
            double[] f = l.finished();
            if (f.length == 0) {
                continue;
            }
            int n = Math.min(f.length, MAX_CDF_POINTS);
            double[] x = new double[n];
            double[] y = new double[n];
            for (int i = 0; i < n; i++) {
                int k = n == f.length ? i : (int) Math.round((double) i * (f.length - 1) / (n - 1));
                x[i] = f[k];
                y[i] = (k + 1) / (double) l.requests();
            }
            min = Math.min(min, f[0]);
            max = Math.max(max, f[f.length - 1]);
            String label = String.format(java.util.Locale.ROOT, "%s (%d/%d done)", system, f.length, l.requests());
            XYSeries s = chart.addSeries(label, x, y);
            s.setMarker(SeriesMarkers.NONE);
            s.setLineColor(color(system));
            s.setLineWidth(system.equals(SPOTSERVE) || PaperFigures.isEngine(system) ? 2.5f : 1.5f);
            if (PaperFigures.onDemandSize(system) > 0 || system.startsWith(PaperFigures.ABLATION_PREFIX)) {
                s.setLineStyle(new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f,
                        new float[] {6f, 4f}, 0f));
            } else if (PaperFigures.isEngineBaseline(system)) {
                // same-engine baselines: dark tones like the engine, dash-dot so they differ from the dashed fleets
                s.setLineStyle(new BasicStroke(2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f,
                        new float[] {9f, 3f, 2f, 3f}, 0f));
            }
        }
        if (!chart.getSeriesMap().isEmpty()) {
            // CDF values all lie on a k/n grid; XChart then puts one y tick per distinct value (its "equally
            // spaced axis values" rule: an unreadable axis). One invisible point below the plotted range breaks
            // the equal spacing, so the axis gets round ticks; the axis range stays [0, 1].
            XYSeries helper = chart.addSeries(" ", new double[] {min}, new double[] {-1});
            helper.setShowInLegend(false);
            helper.setMarker(SeriesMarkers.NONE);
            helper.setLineColor(new Color(0, 0, 0, 0));
        }
        if (min > 0 && max / min > 30) {
            chart.getStyler().setXAxisLogarithmic(true);
            chart.setXAxisTitle("end-to-end latency (s, log scale)");
        }
        return chart;
    }

    // ---- timeline ----------------------------------------------------------------------------------------

    static List<XYChart> timeline(Cell cell, Map<String, List<TimelinePoint>> bySystem, List<Reconfiguration> reconf,
                                  Analysis analysis) {
        double end = bySystem.values().stream().flatMap(List::stream).mapToDouble(TimelinePoint::t).max().orElse(0);
        String main = bySystem.containsKey(SPOTSERVE) ? SPOTSERVE : bySystem.keySet().stream()
                .min(java.util.Comparator.comparingInt(Analysis::systemRank)).orElseThrow();
        List<TimelinePoint> pts = bySystem.get(main);
        XYChart inst = instances(cell, main, pts, reconf, end);

        XYChart queue = new XYChartBuilder().width(TIMELINE_WIDTH).height(TIMELINE_HEIGHT)
                .title("Queue length - " + cell.model() + ", " + cell.trace())
                .xAxisTitle("time (s)").yAxisTitle("queued requests").build();
        style(queue);
        queue.getStyler().setLegendPosition(LegendPosition.OutsideE);
        queue.getStyler().setXAxisMin(0.0).setXAxisMax(Math.max(end, 1.0));
        queue.getStyler().setYAxisMin(0.0);
        List<String> order = new ArrayList<>(bySystem.keySet());
        order.sort(java.util.Comparator.comparingInt(Analysis::systemRank).thenComparing(java.util.Comparator.naturalOrder()));
        for (String system : order) {
            // ablations and on-demand fleets are in the CDF; here only the policies compared head to head
            if (Analysis.systemRank(system) > 3) {
                continue;
            }
            step(queue, system, bySystem.get(system), end, TimelinePoint::queue, color(system))
                    .setLineWidth(system.equals(SPOTSERVE) || PaperFigures.isEngine(system) ? 2f : 1.2f);
        }
        if (queue.getSeriesMap().isEmpty()) {
            step(queue, main, pts, end, TimelinePoint::queue, color(main));
        }
        String engine = PaperFigures.ENGINE;
        if (!main.equals(engine) && bySystem.containsKey(engine) && !bySystem.get(engine).isEmpty()) {
            return List.of(inst, queue, instances(cell, engine, bySystem.get(engine), reconf, end));
        }
        return List.of(inst, queue);
    }

    /** Instances by market of {@code system} over time, its configuration changes marked. */
    private static XYChart instances(Cell cell, String system, List<TimelinePoint> pts, List<Reconfiguration> reconf,
                                     double end) {
        XYChart inst = new XYChartBuilder().width(TIMELINE_WIDTH).height(TIMELINE_HEIGHT)
                .title("Instances and configuration (" + system + ") - " + cell.model() + ", " + cell.trace())
                .xAxisTitle("time (s)").yAxisTitle("instances (g4dn.12xlarge, 4x T4)").build();
        style(inst);
        inst.getStyler().setLegendPosition(LegendPosition.OutsideE);
        int maxInst = pts.stream().mapToInt(p -> p.spot() + p.onDemand()).max().orElse(0);
        inst.getStyler().setYAxisMin(0.0).setYAxisMax(maxInst + 3.0);
        inst.getStyler().setXAxisMin(0.0).setXAxisMax(Math.max(end, 1.0));
        step(inst, "spot", pts, end, p -> p.spot(), new Color(31, 119, 180));
        step(inst, "on-demand", pts, end, p -> p.onDemand(), new Color(214, 39, 40));
        step(inst, "spot + on-demand", pts, end, p -> p.spot() + p.onDemand(), Color.DARK_GRAY)
                .setLineStyle(new BasicStroke(1f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f,
                        new float[] {3f, 3f}, 0f));
        annotateConfigs(inst, system, pts, reconf, end, maxInst);
        return inst;
    }

    private static XYSeries step(XYChart chart, String name, List<TimelinePoint> pts, double end,
                                 java.util.function.ToIntFunction<TimelinePoint> f, Color color) {
        // only the points where the value changes (timeline rows come at every event), then the end point:
        // fewer segments, and dashed strokes stay dashed
        double[] x = new double[pts.size() + 1];
        double[] y = new double[pts.size() + 1];
        int n = 0;
        for (TimelinePoint p : pts) {
            int v = f.applyAsInt(p);
            if (n > 0 && x[n - 1] == p.t()) {
                y[n - 1] = v; // several rows at one instant: the last is the state after it
                if (n > 1 && y[n - 2] == v) {
                    n--;
                }
            } else if (n == 0 || y[n - 1] != v) {
                x[n] = p.t();
                y[n] = v;
                n++;
            }
        }
        x[n] = Math.max(end, x[n - 1]);
        y[n] = y[n - 1];
        n++;
        XYSeries s = chart.addSeries(name, java.util.Arrays.copyOf(x, n), java.util.Arrays.copyOf(y, n));
        s.setXYSeriesRenderStyle(XYSeriesRenderStyle.Step);
        s.setMarker(SeriesMarkers.NONE);
        s.setLineColor(color);
        return s;
    }

    /**
     * Marks each configuration change of {@code system}: a vertical line and the new config as text,
     * staggered over three heights; a label too close to the previous one at its height is left out.
     * Changes come from reconfigurations.csv, else from the config column of timeline.csv.
     */
    private static void annotateConfigs(XYChart chart, String system, List<TimelinePoint> pts,
                                        List<Reconfiguration> reconf, double end, int maxInst) {
        Map<Double, String> changes = new TreeMap<>();
        for (Reconfiguration rc : reconf) {
            if (rc.system().equals(system)) {
                changes.put(rc.t(), rc.to());
            }
        }
        if (changes.isEmpty()) {
            String prev = null;
            for (TimelinePoint p : pts) {
                if (prev != null && !p.config().equals(prev)) {
                    changes.put(p.t(), p.config());
                }
                prev = p.config();
            }
        }
        if (!pts.isEmpty()) {
            changes.putIfAbsent(pts.get(0).t(), pts.get(0).config());
        }
        double minGap = 0.07 * Math.max(end, 1.0);
        double[] lastAt = {Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY};
        int level = 0;
        for (Map.Entry<Double, String> e : changes.entrySet()) {
            chart.addAnnotation(new AnnotationLine(e.getKey(), true, false));
            for (int tries = 0; tries < 3; tries++, level = (level + 1) % 3) {
                if (e.getKey() - lastAt[level] >= minGap) {
                    double x = Math.min(e.getKey() + 0.035 * Math.max(end, 1.0), 0.97 * Math.max(end, 1.0));
                    chart.addAnnotation(new AnnotationText(e.getValue(), x, maxInst + 2.5 - 0.9 * level, false));
                    lastAt[level] = e.getKey();
                    level = (level + 1) % 3;
                    break;
                }
            }
        }
    }

    // ---- Fig. 7 ------------------------------------------------------------------------------------------

    static XYChart costVsLatency(List<CostPoint> points, boolean p99) {
        XYChart chart = new XYChartBuilder().width(COST_WIDTH).height(COST_HEIGHT)
                .title((p99 ? "P99" : "Average") + " latency vs cost - " + PaperFigures.COST_MODEL)
                .xAxisTitle("USD per token").yAxisTitle((p99 ? "P99" : "average") + " latency (s)").build();
        style(chart);
        chart.getStyler().setLegendPosition(LegendPosition.OutsideS);
        chart.getStyler().setXAxisDecimalPattern("0.00E0");
        double lo = Double.POSITIVE_INFINITY;
        double hi = 0;
        Map<String, List<CostPoint>> onDemandByTrace = new LinkedHashMap<>();
        // the real engine and its same-engine baselines, each its own points
        List<CostPoint> engine = new ArrayList<>();
        int k = 0;
        // the real engine's point of a trace takes the colour of spotserve's point of that trace (another marker)
        Map<String, Color> traceColor = new LinkedHashMap<>();
        Color[] spotColors = {new Color(31, 119, 180), new Color(44, 160, 44), new Color(148, 103, 189),
            new Color(23, 190, 207), new Color(188, 189, 34)};
        for (CostPoint p : points) {
            double y = p99 ? p.p99() : p.avg();
            if (!Double.isFinite(y) || y <= 0) {
                continue;
            }
            lo = Math.min(lo, y);
            hi = Math.max(hi, y);
            if (PaperFigures.onDemandSize(p.system()) > 0) {
                onDemandByTrace.computeIfAbsent(p.trace(), t -> new ArrayList<>()).add(p);
            } else if (PaperFigures.isEngineFamily(p.system())) {
                engine.add(p);
            } else {
                XYSeries s = chart.addSeries("spotserve " + p.trace(), new double[] {p.usdPerToken()}, new double[] {y});
                s.setXYSeriesRenderStyle(XYSeriesRenderStyle.Scatter);
                s.setMarker(SeriesMarkers.DIAMOND);
                Color c = spotColors[k++ % spotColors.length];
                s.setMarkerColor(c);
                traceColor.put(p.trace(), c);
            }
        }
        for (CostPoint p : engine) {
            XYSeries s = chart.addSeries(p.system() + " " + p.trace(), new double[] {p.usdPerToken()},
                    new double[] {p99 ? p.p99() : p.avg()});
            s.setXYSeriesRenderStyle(XYSeriesRenderStyle.Scatter);
            s.setMarker(PaperFigures.isEngine(p.system()) ? SeriesMarkers.TRIANGLE_UP
                    : p.system().equals(PaperFigures.ENGINE_REROUTING) ? SeriesMarkers.SQUARE : SeriesMarkers.TRIANGLE_DOWN);
            Color c = traceColor.get(p.trace());
            if (c == null) {
                c = spotColors[k++ % spotColors.length];
                traceColor.put(p.trace(), c);
            }
            s.setMarkerColor(PaperFigures.isEngine(p.system()) ? c : c.darker());
        }
        // traces whose on-demand runs gave identical numbers (same arrivals, e.g. A_S and A_S+O) share one curve
        Map<List<Double>, List<String>> tracesByCurve = new LinkedHashMap<>();
        Map<List<Double>, List<CostPoint>> fleetByCurve = new LinkedHashMap<>();
        for (Map.Entry<String, List<CostPoint>> e : onDemandByTrace.entrySet()) {
            List<CostPoint> fleet = new ArrayList<>(e.getValue());
            fleet.sort(java.util.Comparator.comparingInt(p -> PaperFigures.onDemandSize(p.system())));
            List<Double> key = new ArrayList<>();
            fleet.forEach(p -> {
                key.add((double) PaperFigures.onDemandSize(p.system()));
                key.add(p.usdPerToken());
                key.add(p99 ? p.p99() : p.avg());
            });
            tracesByCurve.computeIfAbsent(key, unused -> new ArrayList<>()).add(e.getKey());
            fleetByCurve.putIfAbsent(key, fleet);
        }
        int g = 0;
        Color[] odColors = {new Color(214, 39, 40), new Color(255, 127, 14), new Color(140, 86, 75), Color.GRAY};
        for (Map.Entry<List<Double>, List<CostPoint>> e : fleetByCurve.entrySet()) {
            List<CostPoint> fleet = e.getValue();
            double[] x = fleet.stream().mapToDouble(CostPoint::usdPerToken).toArray();
            double[] y = fleet.stream().mapToDouble(p -> p99 ? p.p99() : p.avg()).toArray();
            String label = fleetByCurve.size() == 1 ? "on-demand only"
                    : "on-demand only (" + String.join(", ", tracesByCurve.get(e.getKey())) + ")";
            XYSeries s = chart.addSeries(label, x, y);
            s.setMarker(SeriesMarkers.CIRCLE);
            s.setLineColor(odColors[g % odColors.length]);
            s.setMarkerColor(odColors[g % odColors.length]);
            g++;
            for (CostPoint p : fleet) {
                double yy = p99 ? p.p99() : p.avg();
                chart.addAnnotation(new AnnotationText("N=" + PaperFigures.onDemandSize(p.system()),
                        p.usdPerToken(), yy, false));
            }
        }
        if (lo > 0 && hi / lo > 20) {
            chart.getStyler().setYAxisLogarithmic(true);
        }
        return chart;
    }

    // ---- Fig. 9 ------------------------------------------------------------------------------------------

    static CategoryChart ablationOurs(List<AblationRow> rows) {
        List<String> cats = new ArrayList<>();
        cats.add("spotserve");
        rows.forEach(r -> cats.add(r.system().replace(PaperFigures.ABLATION_PREFIX, "-")));
        CategoryChart chart = barChart("Ablation, ours (normalized to spotserve)");
        addBars(chart, "P99 A_S", cats, rows.stream().mapToDouble(AblationRow::p99A).toArray());
        addBars(chart, "P99 B_S", cats, rows.stream().mapToDouble(AblationRow::p99B).toArray());
        addBars(chart, "avg A_S", cats, rows.stream().mapToDouble(AblationRow::avgA).toArray());
        addBars(chart, "avg B_S", cats, rows.stream().mapToDouble(AblationRow::avgB).toArray());
        return chart;
    }

    static CategoryChart ablationPaper() {
        List<String> cats = new ArrayList<>();
        cats.add("spotserve");
        PaperFigures.FIG9.forEach(f -> cats.add("-" + f.part()));
        CategoryChart chart = barChart("Ablation, paper Fig. 9 (normalized)");
        addBars(chart, "P99 A_S", cats, PaperFigures.FIG9.stream().mapToDouble(PaperFigures.Fig9::p99A).toArray());
        addBars(chart, "P99 B_S", cats, PaperFigures.FIG9.stream().mapToDouble(PaperFigures.Fig9::p99B).toArray());
        addBars(chart, "avg A_S", cats, PaperFigures.FIG9.stream().mapToDouble(PaperFigures.Fig9::avgA).toArray());
        addBars(chart, "avg B_S", cats, PaperFigures.FIG9.stream().mapToDouble(PaperFigures.Fig9::avgB).toArray());
        return chart;
    }

    private static CategoryChart barChart(String title) {
        CategoryChart chart = new CategoryChartBuilder().width(PANEL_WIDTH).height(PANEL_HEIGHT).title(title)
                .xAxisTitle("cumulative removal (GPT-20B)").yAxisTitle("latency / spotserve's latency (x)").build();
        chart.getStyler().setAntiAlias(true);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setLegendPosition(LegendPosition.InsideNW);
        chart.getStyler().setYAxisMin(0.0);
        chart.getStyler().setXAxisLabelRotation(20);
        chart.getStyler().setSeriesColors(new Color[] {new Color(31, 119, 180), new Color(214, 39, 40),
            new Color(174, 199, 232), new Color(255, 152, 150)});
        return chart;
    }

    /** Bars for spotserve (1.0) then each row; a missing value is drawn as 0 (the report's table says n/a). */
    private static void addBars(CategoryChart chart, String name, List<String> cats, double[] values) {
        List<Double> y = new ArrayList<>();
        y.add(1.0);
        for (double v : values) {
            y.add(Double.isFinite(v) ? v : 0.0);
        }
        chart.addSeries(name, cats, y);
    }

    // ---- shared ------------------------------------------------------------------------------------------

    private static void style(XYChart chart) {
        chart.getStyler().setAntiAlias(true);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setMarkerSize(7);
    }

    /** A fixed colour per system so that every plot uses the same one. */
    static Color color(String system) {
        if (system.equals(SPOTSERVE)) {
            return new Color(31, 119, 180);
        }
        if (PaperFigures.isEngine(system)) {
            return new Color(20, 20, 20);
        }
        // the engine family in dark tones: the same-engine baselines are darkened versions of the simulator's
        if (system.equals(PaperFigures.ENGINE_REROUTING)) {
            return new Color(110, 15, 20);
        }
        if (system.equals(PaperFigures.ENGINE_REPARALLELIZATION)) {
            return new Color(140, 70, 0);
        }
        if (system.equals(PaperFigures.REROUTING)) {
            return new Color(214, 39, 40);
        }
        if (system.equals(PaperFigures.REPARALLELIZATION)) {
            return new Color(255, 127, 14);
        }
        if (!PaperFigures.inPaper(system)) {
            Color[] ours = {new Color(44, 160, 44), new Color(23, 190, 207), new Color(188, 189, 34)};
            return ours[Math.floorMod(system.hashCode(), ours.length)];
        }
        if (system.startsWith(PaperFigures.ABLATION_PREFIX)) {
            Color[] abl = {new Color(148, 103, 189), new Color(197, 176, 213), new Color(140, 86, 75),
                new Color(196, 156, 148), new Color(227, 119, 194)};
            int i = PaperFigures.fig9Index(system);
            return abl[i < 0 ? 4 : i];
        }
        int n = PaperFigures.onDemandSize(system);
        int grey = Math.max(40, Math.min(190, 220 - 20 * Math.max(n, 0)));
        return new Color(grey, grey, grey);
    }

    private static void save(Chart<?, ?> chart, Path file) {
        try (OutputStream out = Files.newOutputStream(file)) {
            BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    private static void save(Chart<?, ?> left, Chart<?, ?> right, Path file) {
        save(List.of(left, right), 1, 2, file);
    }

    private static void save(List<? extends Chart<?, ?>> charts, int rows, int cols, Path file) {
        try (OutputStream out = Files.newOutputStream(file)) {
            BitmapEncoder.saveBitmap(charts, rows, cols, out, BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }
}
