package io.spotserve.bench.eval;

import io.spotserve.bench.engine.ArtifactProfile;
import io.spotserve.bench.engine.EngineRun;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.PaperModel;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.ParallelConfigOptimizer;
import io.spotserve.trace.AvailabilityTrace;
import io.spotserve.trace.TraceEvent;
import io.spotserve.trace.TraceReader;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code Evaluation --setup artifact}: the paper's Fig. 6 grid (3 models × A_S, B_S, A_S+O, B_S+O) under what the
 * authors' artifact really did (Hsword/SpotServe, branch {@code artifact}; ../shared/reference/spotserve-paper.md
 * §6–7), separate from the main grid, through the real engine only ({@code spotserve-engine},
 * {@code rerouting-engine}, {@code reparallelization-engine}), once per weight-reload speed:
 * <ul>
 *   <li>the artifact's near-periodic arrivals ({@link Arrivals.Mode#ARTIFACT}) at 1.5 / 0.35 / 0.2 req/s, and its
 *       required throughputs 2.0 / 0.4 / 0.2 req/s ({@code scripts_ae/aws_e2e.sh}: {@code REQUIRED_TPT}) as the
 *       rate the optimizers plan for; maximum batch 4 ({@code MAX_BS=4}); SpotServe and Reparallelization choose
 *       (D, P, M) with the artifact optimizer ({@link ParallelConfigOptimizer.Policy#ARTIFACT});</li>
 *   <li>Rerouting's layout sized by that optimizer for the whole 10-instance cluster
 *       ({@link ArtifactProfile#reroutingLayout}: OPT-6.7B P2M4B2, GPT-20B P2M8B4, LLaMA-30B P4M8B4);</li>
 *   <li>the "+O" cells replay the traces' {@code *_ondemand.txt} fleets as they are — the same fleet for every
 *       system — instead of our instance manager's schedule;</li>
 *   <li>every event fired 30 s early, instances usable when their event fires, the baselines' engine start-ups
 *       ({@link ArtifactProfile}).</li>
 * </ul>
 * Writes {@code artifact.csv} (one row per reload speed, cell and system) and, unless {@code --no-report}, re-renders
 * {@code report.md}, whose "paper-faithful profile" section compares it with Fig. 6.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.spotserve.bench.eval.Evaluation --setup artifact [--out benchmarks/results]
 *     [--models ...] [--traces A_S,B_S,A_S+O,B_S+O] [--reload-gbps 0.5,1,2,4] [--startup 5] [--seed 1]
 *     [--threads N] [--shared ../shared] [--no-report]
 * </pre>
 */
public final class ArtifactSetup {
    /** The CSV this setup writes into the results folder. */
    public static final String CSV = "artifact.csv";
    /** The artifact's cluster ({@code MAX_NNODES=10}). */
    public static final int CLUSTER = 10;
    /** The artifact's maximum batch ({@code MAX_BS=4}). */
    public static final int MAX_BATCH = 4;
    /** How early the artifact fires every trace event ({@code --grace-period 30}). */
    public static final double LEAD_SECONDS = 30;
    static final List<String> TRACES = List.of("A_S", "B_S", "A_S+O", "B_S+O");
    static final List<EngineRun.Variant> SYSTEMS = List.of(EngineRun.Variant.SPOTSERVE,
            EngineRun.Variant.REROUTING, EngineRun.Variant.REPARALLELIZATION);

    private ArtifactSetup() {
    }

    /** The artifact's required throughput per model ({@code REQUIRED_TPT}), the rate its optimizer plans for. */
    public static double requiredRate(PaperModel m) {
        return switch (m) {
            case OPT_6_7B -> 2.0;
            case GPT_20B -> 0.4;
            case LLAMA_30B -> 0.2;
        };
    }

    /** The trace file a cell replays: {@code trace_0304_real} / {@code trace_0506_real}, or their {@code _ondemand}. */
    public static String traceFile(String trace) {
        return switch (trace) {
            case "A_S" -> "trace_0304_real";
            case "B_S" -> "trace_0506_real";
            case "A_S+O" -> "trace_0304_ondemand";
            case "B_S+O" -> "trace_0506_ondemand";
            default -> throw new IllegalArgumentException("unknown trace '" + trace
                    + "'; the artifact setup runs A_S, B_S, A_S+O or B_S+O");
        };
    }

    /** The timing assumptions: the paper's, with max batch 4, no launch delay and the given reload speed. */
    static Scenario.Params params(double reloadBytesPerSecond) {
        Scenario.Params p = Scenario.Params.paper();
        return new Scenario.Params(p.promptTokens(), p.outputTokens(), MAX_BATCH, LEAD_SECONDS, 0, p.spareInstances(),
                CLUSTER, reloadBytesPerSecond, p.engineRestartSeconds(), p.drainSeconds(), p.rateWindowSeconds(),
                ParallelConfigOptimizer.Policy.ARTIFACT);
    }

    /**
     * One cell as the artifact ran it: the trace file's events as they are (the "+O" files hold the whole fleet),
     * artifact arrivals at the paper's rate over the trace, the required throughput as the nominal rate.
     */
    public static Scenario scenario(Path shared, PaperModel model, String trace, long seed, double reloadBytesPerSecond)
            throws IOException {
        LatencyProfile profile = LatencyProfile.read(shared.resolve("profiles/T4-4x/" + model.profileName() + ".json"));
        CostModel cost = CostModel.of(model, profile);
        String file = traceFile(trace);
        AvailabilityTrace t = TraceReader.readSegments(shared.resolve("traces/spotserve/trace_seg/" + file + ".txt"));
        List<TraceEvent> spot = t.events().stream()
                .filter(e -> e.kind() == TraceEvent.Kind.ADD || e.kind() == TraceEvent.Kind.REMOVE).toList();
        double end = t.endTime().toMillis() / 1000.0;
        long cellSeed = seed * 1_000_003L + (model.name() + "/" + file).hashCode();
        double[] arrivals = Arrivals.constantRate(Arrivals.Mode.ARTIFACT, Evaluation.rateOf(model), 6.0, end, cellSeed);
        return new Scenario(model, cost, trace, spot, end, false, arrivals, requiredRate(model), false, 0.0,
                params(reloadBytesPerSecond));
    }

    /** The engine-side profile of a cell: 30 s lead, the start-up, Rerouting's cluster-wide layout. */
    public static ArtifactProfile profile(Scenario sc, double startupSeconds) {
        Scenario.Params p = sc.params();
        ParallelConfig layout = ArtifactProfile.reroutingLayout(sc.costModel(), CLUSTER, requiredRate(sc.model()),
                p.maxBatch(), p.promptTokens(), p.outputTokens());
        return new ArtifactProfile(LEAD_SECONDS, startupSeconds, layout);
    }

    /** Options of {@code --setup artifact}. */
    record Options(Path out, List<PaperModel> models, List<String> traces, double[] reloadGbps, double startupSeconds,
                   long seed, int threads, Path shared, boolean report) {
    }

    static Options parse(String[] args) {
        Path out = Paths.get("benchmarks/results");
        List<PaperModel> models = List.of(PaperModel.values());
        List<String> traces = TRACES;
        double[] reload = {0.5, 1, 2, 4};
        double startup = 5;
        long seed = 1;
        int threads = Runtime.getRuntime().availableProcessors();
        Path shared = null;
        boolean report = true;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--no-report")) {
                report = false;
                continue;
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("option " + a + " needs a value");
            }
            String v = args[++i];
            switch (a) {
                case "--out" -> out = Paths.get(v);
                case "--models" -> models = Arrays.stream(v.split(",")).map(PaperModel::fromName).toList();
                case "--traces" -> {
                    traces = Arrays.asList(v.split(","));
                    traces.forEach(ArtifactSetup::traceFile); // rejects unknown ones
                }
                case "--reload-gbps" -> {
                    reload = Arrays.stream(v.split(",")).mapToDouble(Double::parseDouble).toArray();
                    for (double r : reload) {
                        if (!(r > 0) || Double.isInfinite(r)) {
                            throw new IllegalArgumentException("--reload-gbps must list finite speeds > 0 GB/s, had " + r);
                        }
                    }
                }
                case "--startup" -> {
                    startup = Double.parseDouble(v);
                    if (!(startup >= 0) || Double.isInfinite(startup)) {
                        throw new IllegalArgumentException("--startup must be finite seconds >= 0, was " + v);
                    }
                }
                case "--seed" -> seed = Long.parseLong(v);
                case "--threads" -> threads = Math.max(1, Integer.parseInt(v));
                case "--shared" -> shared = Paths.get(v);
                default -> throw new IllegalArgumentException("unknown option '" + a + "' for --setup artifact; expected "
                        + "--out, --models, --traces, --reload-gbps, --startup, --seed, --threads, --shared or --no-report");
            }
        }
        return new Options(out, models, traces, reload, startup, seed, threads,
                shared == null ? Evaluation.locateShared() : shared, report);
    }

    /** Runs every reload speed × cell × engine system; writes {@link #CSV}; returns the number of rows. */
    static int run(Options o) throws IOException {
        record Task(double gbps, Scenario sc, ArtifactProfile profile, EngineRun.Variant variant) {
        }
        List<Task> tasks = new ArrayList<>();
        for (double gbps : o.reloadGbps()) {
            for (PaperModel m : o.models()) {
                for (String tr : o.traces()) {
                    Scenario sc = scenario(o.shared(), m, tr, o.seed(), gbps * 1e9);
                    ArtifactProfile profile = profile(sc, o.startupSeconds());
                    for (EngineRun.Variant v : SYSTEMS) {
                        tasks.add(new Task(gbps, sc, profile, v));
                    }
                }
            }
        }
        String[] rows = new String[tasks.size()];
        Evaluation.inParallel(o.threads(), tasks.size(), i -> {
            Task t = tasks.get(i);
            long t0 = System.nanoTime();
            RunResult r = EngineRun.run(t.sc(), t.variant(), t.profile());
            rows[i] = row(t.gbps(), t.sc(), t.profile(), r);
            System.err.printf(Locale.ROOT, "artifact %.1f GB/s %-9s %-5s %-24s p99 %8.1f s avg %7.1f s  %d/%d done  (%.1f s)%n",
                    t.gbps(), t.sc().model().displayName(), t.sc().traceName(), r.system(), r.percentile(99),
                    r.average(), r.completed(), r.requests().size(), (System.nanoTime() - t0) / 1e9);
        });
        Files.createDirectories(o.out());
        try (BufferedWriter w = Files.newBufferedWriter(o.out().resolve(CSV), StandardCharsets.UTF_8)) {
            w.write(HEADER + "\n");
            for (String r : rows) {
                w.write(r);
            }
        }
        return rows.length;
    }

    /** Columns of {@link #CSV}. */
    public static final String HEADER = "reload_gbps,model,trace,system,rerouting_layout,p50_s,p90_s,p99_s,avg_s,"
            + "requests,completed,reconfigurations";

    static String row(double gbps, Scenario sc, ArtifactProfile profile, RunResult r) {
        ParallelConfig l = profile.reroutingLayout();
        return String.format(Locale.ROOT, "%s,%s,%s,%s,P%dM%dB%d,%.3f,%.3f,%.3f,%.3f,%d,%d,%d%n", gbps(gbps),
                sc.model().displayName(), sc.traceName(), r.system(), l.pipelineStages(), l.tensorShards(),
                l.maxBatch(), r.percentile(50), r.percentile(90), r.percentile(99), r.average(), r.requests().size(),
                r.completed(), r.reconfigurations().size());
    }

    /** A reload speed as written to the CSV: {@code 0.5}, {@code 1}, {@code 2}. */
    static String gbps(double v) {
        return v == Math.rint(v) ? String.valueOf((long) v) : String.valueOf(v);
    }

    /** {@code Evaluation --setup artifact ...}. */
    static void main(String[] args) throws IOException {
        Options o = parse(args);
        long t0 = System.nanoTime();
        int n = run(o);
        System.err.printf(Locale.ROOT, "wrote %d rows to %s in %.1f s%n", n, o.out().resolve(CSV),
                (System.nanoTime() - t0) / 1e9);
        if (o.report()) {
            try {
                io.spotserve.bench.report.EvaluationReport.write(o.out());
            } catch (UncheckedIOException | IllegalArgumentException e) {
                throw new IllegalArgumentException("wrote " + CSV + " but not report.md: " + e.getMessage(), e);
            }
            System.err.printf(Locale.ROOT, "wrote %s%n", o.out().resolve("report.md"));
        }
    }
}
