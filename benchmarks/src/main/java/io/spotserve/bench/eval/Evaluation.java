package io.spotserve.bench.eval;

import io.spotserve.plan.CostModel;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.PaperModel;
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
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * The paper-scale evaluation (SpotServe §6): every model × trace cell, every system, on the discrete-event
 * {@link Simulation}; writes {@code requests.csv}, {@code summary.csv}, {@code timeline.csv} and
 * {@code reconfigurations.csv}.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.spotserve.bench.eval.Evaluation [--out benchmarks/results]
 *     [--models OPT-6.7B,GPT-20B,LLaMA-30B] [--traces A_S,B_S,A_S+O,B_S+O,MAF] [--systems spotserve,...]
 *     [--seed 1] [--arrivals paper|artifact] [--shared ../shared] [--threads N] [--robustness [10]] [--sensitivity]
 *     [--variant default] [--no-report] [--robustness-engine [N]] [--setup main|artifact|all]
 * </pre>
 * {@code --setup artifact} runs {@link ArtifactSetup} instead (its own options); {@code --setup all} runs the main grid
 * with these options and then {@link ArtifactSetup} with its defaults into the same folder, so every committed CSV
 * and the report come from one command.
 * It also writes {@code run.csv} (the seed and arrival process of the run, for the report). With
 * {@code --robustness N} it then re-runs the same models, traces and systems for seeds 1..N under both arrival
 * processes (paper Gamma CV 6 and the artifact's near-periodic one) and writes one summary row per
 * (arrivals, seed, cell, system) to {@code robustness.csv}; the report turns it into the seed-robustness tables.
 * The engine systems run there only with {@code --robustness-engine [N]} (seeds 1..N, default all of them): through
 * the real engine each seed costs about as much as the main grid's engine runs.
 * Unless {@code --no-report} is given it then writes {@code report.md} and {@code plots/*.png} into the same
 * directory ({@link io.spotserve.bench.report.EvaluationReport#write}), so one command produces everything.
 * With {@code --sensitivity} it re-runs the same cells and systems (the run's seed, both arrival processes) under
 * each {@link Variant} — one simulator assumption changed for all systems alike — and writes
 * {@code sensitivity.csv}; the default run's files are not affected. {@code --variant NAME} runs the main grid itself
 * under one variant (to inspect its requests, timeline and reconfigurations; not for the committed results).
 * MAF runs for GPT-20B only (the paper's Fig. 8).
 */
public final class Evaluation {
    /** The paper's stable arrival rates (§6.1), req/s. */
    static double rateOf(PaperModel m) {
        return switch (m) {
            case OPT_6_7B -> 1.5;
            case GPT_20B -> 0.35;
            case LLAMA_30B -> 0.2;
        };
    }

    private Evaluation() {
    }

    /** Options of one evaluation run. */
    record Options(Path out, List<PaperModel> models, List<String> traces, List<String> systems, long seed,
                   Arrivals.Mode arrivals, Path shared, int threads, boolean report, int robustnessSeeds,
                   boolean sensitivity, String variant, int robustnessEngineSeeds) {
    }

    public static void main(String[] args) {
        try {
            String setup = setup(args);
            if (setup.equals("artifact")) { // --setup artifact: the paper-faithful profile, not the main grid
                ArtifactSetup.main(withoutSetup(args));
                return;
            }
            Options o = parse(withoutSetup(args));
            if (setup.equals("all") && !o.report()) {
                throw new IllegalArgumentException("--setup all writes the report at its end; drop --no-report or "
                        + "run --setup main and --setup artifact");
            }
            long t0 = System.nanoTime();
            int rows = run(o);
            System.err.printf(Locale.ROOT, "wrote %d summary rows to %s in %.1f s%n", rows, o.out(),
                    (System.nanoTime() - t0) / 1e9);
            if (o.robustnessSeeds() > 0) {
                long t1 = System.nanoTime();
                int n = robustness(o);
                System.err.printf(Locale.ROOT, "wrote %d rows to %s in %.1f s%n", n, o.out().resolve(ROBUSTNESS),
                        (System.nanoTime() - t1) / 1e9);
            }
            if (o.sensitivity()) {
                long t1 = System.nanoTime();
                int n = sensitivity(o);
                System.err.printf(Locale.ROOT, "wrote %d rows to %s in %.1f s%n", n, o.out().resolve(SENSITIVITY),
                        (System.nanoTime() - t1) / 1e9);
            }
            if (setup.equals("all")) {
                // the paper-faithful profile with its defaults, into the same folder; it renders the report from
                // every CSV there at its end
                List<String> artifact = new ArrayList<>(List.of("--out", o.out().toString(), "--seed",
                        String.valueOf(o.seed()), "--threads", String.valueOf(o.threads())));
                if (o.shared() != null) {
                    artifact.addAll(List.of("--shared", o.shared().toString()));
                }
                ArtifactSetup.main(artifact.toArray(String[]::new));
            } else if (o.report()) {
                long t1 = System.nanoTime();
                io.spotserve.bench.report.EvaluationReport.write(o.out());
                System.err.printf(Locale.ROOT, "wrote %s and %s in %.1f s%n", o.out().resolve("report.md"),
                        o.out().resolve("plots"), (System.nanoTime() - t1) / 1e9);
            }
        } catch (IllegalArgumentException | IOException | UncheckedIOException e) {
            System.err.println("evaluation: " + e.getMessage());
            System.exit(2);
        }
    }

    /**
     * {@code main} (the default: the main grid), {@code artifact} ({@link ArtifactSetup}) or {@code all} (the main
     * grid with its options, then the paper-faithful profile with its defaults into the same folder: every committed
     * CSV and the report from one command).
     *
     * @throws IllegalArgumentException if {@code --setup} has another or no value
     */
    static String setup(String[] args) {
        int i = Arrays.asList(args).indexOf("--setup");
        if (i < 0) {
            return "main";
        }
        if (i + 1 >= args.length || !List.of("artifact", "main", "all").contains(args[i + 1])) {
            throw new IllegalArgumentException("--setup must be main, artifact or all, was "
                    + (i + 1 < args.length ? "'" + args[i + 1] + "'" : "missing"));
        }
        return args[i + 1];
    }

    /** The arguments without {@code --setup VALUE}. */
    static String[] withoutSetup(String[] args) {
        List<String> rest = new ArrayList<>(Arrays.asList(args));
        int i = rest.indexOf("--setup");
        if (i >= 0) {
            rest.subList(i, Math.min(rest.size(), i + 2)).clear();
        }
        return rest.toArray(String[]::new);
    }

    static Options parse(String[] args) {
        Path out = Paths.get("benchmarks/results");
        List<PaperModel> models = List.of(PaperModel.values());
        List<String> traces = List.of("A_S", "B_S", "A_S+O", "B_S+O", "MAF");
        List<String> systems = null;
        long seed = 1;
        Arrivals.Mode mode = Arrivals.Mode.PAPER;
        Path shared = null;
        int threads = Runtime.getRuntime().availableProcessors();
        boolean report = true;
        int robustness = 0;
        int robustnessEngine = -1; // -1: not asked; 0: as many seeds as --robustness
        boolean sensitivity = false;
        String variant = "default";
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--sensitivity")) {
                sensitivity = true;
                continue;
            }
            if (a.equals("--no-report")) {
                report = false;
                continue;
            }
            if (a.equals("--robustness-engine")) {
                robustnessEngine = 0;
                if (i + 1 < args.length && args[i + 1].matches("\\d+")) {
                    robustnessEngine = Integer.parseInt(args[++i]);
                    if (robustnessEngine < 1) {
                        throw new IllegalArgumentException("--robustness-engine needs >= 1 seed, was " + robustnessEngine);
                    }
                }
                continue;
            }
            if (a.equals("--robustness")) {
                robustness = 10;
                if (i + 1 < args.length && args[i + 1].matches("\\d+")) {
                    robustness = Integer.parseInt(args[++i]);
                    if (robustness < 1) {
                        throw new IllegalArgumentException("--robustness needs >= 1 seed, was " + robustness);
                    }
                }
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
                    for (String t : traces) {
                        if (!List.of("A_S", "B_S", "A_S+O", "B_S+O", "MAF").contains(t)) {
                            throw new IllegalArgumentException("unknown trace '" + t + "'; expected A_S, B_S, A_S+O, B_S+O or MAF");
                        }
                    }
                }
                case "--systems" -> systems = Arrays.asList(v.split(","));
                case "--seed" -> seed = Long.parseLong(v);
                case "--arrivals" -> mode = switch (v) {
                    case "paper" -> Arrivals.Mode.PAPER;
                    case "artifact" -> Arrivals.Mode.ARTIFACT;
                    default -> throw new IllegalArgumentException("--arrivals must be paper or artifact, was '" + v + "'");
                };
                case "--shared" -> shared = Paths.get(v);
                case "--threads" -> threads = Math.max(1, Integer.parseInt(v));
                case "--variant" -> {
                    variant = v;
                    String name = v;
                    if (variants().stream().noneMatch(x -> x.name().equals(name))) {
                        throw new IllegalArgumentException("unknown variant '" + v + "'; expected one of "
                                + variants().stream().map(Variant::name).toList());
                    }
                }
                default -> throw new IllegalArgumentException("unknown option '" + a + "'; expected --out, --models, "
                        + "--traces, --systems, --seed, --arrivals, --shared, --threads, --variant, --robustness [N], --robustness-engine [N], --sensitivity or --no-report");
            }
        }
        List<String> known = SystemSpec.all().stream().map(SystemSpec::name).toList();
        if (systems == null) {
            systems = known;
        }
        for (String s : systems) {
            if (!known.contains(s)) {
                throw new IllegalArgumentException("unknown system '" + s + "'; expected one of " + known);
            }
        }
        if (robustnessEngine >= 0 && robustness == 0) {
            throw new IllegalArgumentException("--robustness-engine runs the engine systems inside --robustness; "
                    + "give --robustness too");
        }
        int engineSeeds = robustnessEngine < 0 ? 0 : robustnessEngine == 0 ? robustness : Math.min(robustnessEngine,
                robustness);
        return new Options(out, models, traces, systems, seed, mode, shared == null ? locateShared() : shared, threads,
                report, robustness, sensitivity, variant, engineSeeds);
    }

    /** The variant named {@code name}. */
    static Variant variant(String name) {
        return variants().stream().filter(v -> v.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("unknown variant '" + name + "'"));
    }

    /** ../shared next to the working directory or one of its parents. */
    public static Path locateShared() {
        String prop = System.getProperty("spotserve.shared.dir");
        if (prop != null && Files.isDirectory(Paths.get(prop))) {
            return Paths.get(prop);
        }
        for (Path p = Paths.get("").toAbsolutePath(); p != null; p = p.getParent()) {
            for (Path c : List.of(p.resolve("shared"), p.resolveSibling("shared"))) {
                if (Files.isDirectory(c.resolve("traces/spotserve"))) {
                    return c;
                }
            }
        }
        throw new IllegalArgumentException("cannot find the shared/ folder (traces, profiles); pass --shared DIR");
    }

    /** One model × trace cell and its scenario. */
    record Cell(PaperModel model, String trace, Scenario scenario) {
    }

    /** Builds the scenario of a cell. */
    public static Scenario scenario(Path shared, PaperModel model, String trace, long seed, Arrivals.Mode mode)
            throws IOException {
        return scenario(shared, model, trace, seed, mode, Scenario.Params.paper());
    }

    /** Builds the scenario of a cell under the timing assumptions {@code prm}. */
    static Scenario scenario(Path shared, PaperModel model, String trace, long seed, Arrivals.Mode mode,
                             Scenario.Params prm) throws IOException {
        LatencyProfile profile = LatencyProfile.read(shared.resolve("profiles/T4-4x/" + model.profileName() + ".json"));
        CostModel cost = CostModel.of(model, profile);
        String base = switch (trace) {
            case "A_S", "A_S+O" -> "trace_0304_real";
            case "B_S", "B_S+O", "MAF" -> "trace_0506_real";
            default -> throw new IllegalArgumentException("unknown trace " + trace);
        };
        AvailabilityTrace t = TraceReader.readSegments(shared.resolve("traces/spotserve/trace_seg/" + base + ".txt"));
        List<TraceEvent> spot = t.events().stream()
                .filter(e -> e.kind() == TraceEvent.Kind.ADD || e.kind() == TraceEvent.Kind.REMOVE).toList();
        boolean mixing = trace.endsWith("+O") || trace.equals("MAF");
        double cv = mode == Arrivals.Mode.PAPER ? 6.0 : 0.0;
        long cellSeed = seed * 1_000_003L + (model.name() + "/" + base).hashCode();
        if (trace.equals("MAF")) {
            Path wl = shared.resolve("traces/spotserve/workload");
            double[] rates = Arrivals.readRates(wl.resolve("arrival-rates.csv"));
            double end = rates.length * 60.0;
            double[] arr = mode == Arrivals.Mode.PAPER
                    ? Arrivals.piecewiseRate(mode, rates, 60.0, 6.0, cellSeed)
                    : Arrivals.readSchedule(wl.resolve("query_realAr_cv6.txt"));
            double[] within = Arrays.stream(arr).filter(a -> a < end).toArray();
            double mean = Arrays.stream(rates).average().orElseThrow();
            return new Scenario(model, cost, trace, spot, end, true, within, mean, true, cv, prm);
        }
        double end = t.endTime().toMillis() / 1000.0;
        double rate = rateOf(model);
        double[] arr = Arrivals.constantRate(mode, rate, 6.0, end, cellSeed);
        return new Scenario(model, cost, trace, spot, end, mixing, arr, rate, false, cv, prm);
    }

    static int run(Options o) throws IOException {
        List<Cell> cells = new ArrayList<>();
        for (PaperModel m : o.models()) {
            for (String tr : o.traces()) {
                if (tr.equals("MAF") && m != PaperModel.GPT_20B) {
                    continue;
                }
                cells.add(new Cell(m, tr, scenario(o.shared(), m, tr, o.seed(), o.arrivals(),
                        variant(o.variant()).params())));
            }
        }
        List<SystemSpec> systems = SystemSpec.all().stream().filter(s -> o.systems().contains(s.name())).toList();
        record Task(Cell cell, SystemSpec sys) {
        }
        List<Task> tasks = new ArrayList<>();
        for (Cell c : cells) {
            for (SystemSpec s : systems) {
                if (Simulation.feasible(c.scenario(), s)) {
                    tasks.add(new Task(c, s));
                } else {
                    System.err.printf(Locale.ROOT, "%s %s: %s skipped, no configuration fits its fleet%n",
                            c.model().displayName(), c.trace(), s.name());
                }
            }
        }
        RunResult[] results = new RunResult[tasks.size()];
        inParallel(o.threads(), tasks.size(), i -> {
            Task t = tasks.get(i);
            long s0 = System.nanoTime();
            results[i] = t.sys().simulated() ? Simulation.run(t.cell().scenario(), t.sys())
                    : io.spotserve.bench.engine.EngineRun.run(t.cell().scenario(),
                    io.spotserve.bench.engine.EngineRun.Variant.of(t.sys().name()));
            RunResult r = results[i];
            System.err.printf(Locale.ROOT, "%-9s %-5s %-20s p99 %8.1f s avg %7.1f s  %d/%d done  %.3g USD/token  (%.1f s)%n",
                    t.cell().model().displayName(), t.cell().trace(), t.sys().name(), r.percentile(99), r.average(),
                    r.completed(), r.requests().size(), r.usdPerToken(), (System.nanoTime() - s0) / 1e9);
        });
        Files.createDirectories(o.out());
        try (BufferedWriter run = writer(o.out().resolve(RUN), "seed,arrivals")) {
            run.write(o.seed() + "," + modeName(o.arrivals()) + "\n");
        }
        try (BufferedWriter req = writer(o.out().resolve("requests.csv"),
                "model,trace,system,request_id,arrival_s,first_token_s,finish_s,latency_s,output_tokens,restarts,completed");
             BufferedWriter sum = writer(o.out().resolve("summary.csv"),
                     "model,trace,system,p50_s,p90_s,p99_s,avg_s,usd_per_token,requests,completed");
             BufferedWriter tl = writer(o.out().resolve("timeline.csv"),
                     "model,trace,system,t_s,spot_instances,ondemand_instances,config,queue_length,running");
             BufferedWriter rc = writer(o.out().resolve("reconfigurations.csv"),
                     "model,trace,system,t_s,from,to,reason,bytes_moved,bytes_reloaded,pause_s")) {
            for (int i = 0; i < tasks.size(); i++) {
                Task t = tasks.get(i);
                RunResult r = results[i];
                String key = t.cell().model().displayName() + "," + t.cell().trace() + "," + r.system() + ",";
                for (RunResult.Request q : r.requests()) {
                    req.write(key + q.id() + "," + f(q.arrival()) + "," + opt(q.firstToken()) + "," + opt(q.finish()) + ","
                            + opt(q.finish() - q.arrival()) + "," + q.outputTokens() + "," + q.restarts() + ","
                            + q.completed() + "\n");
                }
                sum.write(key + f(r.percentile(50)) + "," + f(r.percentile(90)) + "," + f(r.percentile(99)) + ","
                        + f(r.average()) + "," + String.format(Locale.ROOT, "%.6e", r.usdPerToken()) + ","
                        + r.requests().size() + "," + r.completed() + "\n");
                for (RunResult.TimelineRow row : r.timeline()) {
                    tl.write(key + f(row.t()) + "," + row.spot() + "," + row.onDemand() + "," + row.config() + ","
                            + row.queue() + "," + row.running() + "\n");
                }
                for (RunResult.Reconfiguration x : r.reconfigurations()) {
                    rc.write(key + f(x.t()) + "," + x.from() + "," + x.to() + "," + csv(x.reason()) + "," + x.bytesMoved()
                            + "," + x.bytesReloaded() + "," + f(x.pauseSeconds()) + "\n");
                }
            }
        }
        return tasks.size();
    }

    /** The run's seed and arrival process (one row). */
    public static final String RUN = "run.csv";
    /** Summary rows of every (arrival process, seed, cell, system), written by {@code --robustness}. */
    public static final String ROBUSTNESS = "robustness.csv";

    /** Rows of every (variant, arrival process, cell, system), written by {@code --sensitivity}. */
    public static final String SENSITIVITY = "sensitivity.csv";

    /**
     * One named change of a simulator assumption that the paper gives no number for, applied to every system of
     * every cell alike (the sensitivity study). {@code default} is the main run's assumptions.
     *
     * @param name  the label written to sensitivity.csv
     * @param apply the change, on the default {@link Scenario.Params}
     */
    record Variant(String name, java.util.function.UnaryOperator<Scenario.Params> apply) {
        Scenario.Params params() {
            return apply.apply(Scenario.Params.paper());
        }
    }

    /**
     * The variants of {@code --sensitivity}: the default, weight reload at 0.5 GB/s per instance (instead of 2;
     * below a g4dn.12xlarge's ~1.2 GB/s EBS peak), engine restart 15 s (instead of 5), and the SpotServe family
     * (spotserve, ablations, spotserve+) choosing its configuration with Algorithm 1's ARTIFACT policy (the
     * authors' code) instead of PAPER; the baselines, on-demand fleets and the +O instance manager stay on PAPER;
     * and no preemption notice (grace 0 s: SpotServe learns of a preemption when the instance is gone, cannot
     * migrate from it and must reload what no survivor holds; the +O instance manager replaces it only then).
     */
    static List<Variant> variants() {
        return List.of(
                new Variant("default", p -> p),
                new Variant("reload-0.5GBps", p -> p.withReloadBytesPerSecond(0.5e9)),
                new Variant("restart-15s", p -> p.withEngineRestartSeconds(15)),
                new Variant("optimizer-artifact",
                        p -> p.withSpotServePolicy(io.spotserve.plan.ParallelConfigOptimizer.Policy.ARTIFACT)),
                new Variant("grace-0s", p -> p.withGraceSeconds(0)));
    }

    /**
     * Every {@link #variants() variant} x both arrival processes (seed {@code o.seed()}) x the selected cells and
     * systems; one summary row each to {@code sensitivity.csv} (columns variant,arrivals, then summary.csv's).
     */
    static int sensitivity(Options o) throws IOException {
        List<SystemSpec> systems = SystemSpec.all().stream().filter(s -> o.systems().contains(s.name()))
                .filter(SystemSpec::simulated).toList(); // the engine runs the main grid only
        record Task(Variant v, Arrivals.Mode mode, PaperModel model, String trace, Scenario sc, SystemSpec sys) {
        }
        List<Task> tasks = new ArrayList<>();
        for (Variant v : variants()) {
            Scenario.Params prm = v.params();
            for (Arrivals.Mode mode : Arrivals.Mode.values()) {
                for (PaperModel m : o.models()) {
                    for (String tr : o.traces()) {
                        if (tr.equals("MAF") && m != PaperModel.GPT_20B) {
                            continue;
                        }
                        Scenario sc = scenario(o.shared(), m, tr, o.seed(), mode, prm);
                        for (SystemSpec s : systems) {
                            if (Simulation.feasible(sc, s)) {
                                tasks.add(new Task(v, mode, m, tr, sc, s));
                            }
                        }
                    }
                }
            }
        }
        String[] rows = runRows(tasks, o.threads(), Task::sc, Task::sys,
                t -> t.v().name() + "," + modeName(t.mode()) + "," + t.model().displayName() + "," + t.trace());
        writeRows(o.out().resolve(SENSITIVITY),
                "variant,arrivals,model,trace,system,p50_s,p90_s,p99_s,avg_s,usd_per_token,requests,completed", rows);
        return rows.length;
    }

    static String modeName(Arrivals.Mode m) {
        return m == Arrivals.Mode.PAPER ? "paper" : "artifact";
    }

    /**
     * Seeds 1..N x both arrival processes x the selected cells and systems; one summary row each, to
     * {@code robustness.csv} (columns arrivals,seed,model,trace,system,p50_s,p90_s,p99_s,avg_s,usd_per_token,
     * requests,completed).
     */
    static int robustness(Options o) throws IOException {
        List<SystemSpec> systems = SystemSpec.all().stream().filter(s -> o.systems().contains(s.name()))
                .toList(); // the engine systems only for seeds <= o.robustnessEngineSeeds() (--robustness-engine)
        record Task(Arrivals.Mode mode, long seed, PaperModel model, String trace, Scenario sc, SystemSpec sys) {
        }
        List<Task> tasks = new ArrayList<>();
        for (Arrivals.Mode mode : Arrivals.Mode.values()) {
            for (long seed = 1; seed <= o.robustnessSeeds(); seed++) {
                for (PaperModel m : o.models()) {
                    for (String tr : o.traces()) {
                        if (tr.equals("MAF") && m != PaperModel.GPT_20B) {
                            continue;
                        }
                        Scenario sc = scenario(o.shared(), m, tr, seed, mode);
                        for (SystemSpec s : systems) {
                            if ((s.simulated() || seed <= o.robustnessEngineSeeds()) && Simulation.feasible(sc, s)) {
                                tasks.add(new Task(mode, seed, m, tr, sc, s));
                            }
                        }
                    }
                }
            }
        }
        String[] rows = runRows(tasks, o.threads(), Task::sc, Task::sys,
                t -> modeName(t.mode()) + "," + t.seed() + "," + t.model().displayName() + "," + t.trace());
        writeRows(o.out().resolve(ROBUSTNESS),
                "arrivals,seed,model,trace,system,p50_s,p90_s,p99_s,avg_s,usd_per_token,requests,completed", rows);
        return rows.length;
    }

    /**
     * Runs every task on {@code threads} threads (simulated systems on {@link Simulation}, the engine systems through
     * {@link io.spotserve.bench.engine.EngineRun}); row i is {@code prefix(task i)} followed by the run's system and
     * summary columns (p50, p90, p99, average, USD per token, requests, completed).
     */
    private static <T> String[] runRows(List<T> tasks, int threads, Function<T, Scenario> scenario,
                                        Function<T, SystemSpec> system, Function<T, String> prefix) {
        String[] rows = new String[tasks.size()];
        inParallel(threads, tasks.size(), i -> {
            T t = tasks.get(i);
            SystemSpec sys = system.apply(t);
            RunResult r = sys.simulated() ? Simulation.run(scenario.apply(t), sys)
                    : io.spotserve.bench.engine.EngineRun.run(scenario.apply(t),
                    io.spotserve.bench.engine.EngineRun.Variant.of(sys.name()));
            rows[i] = prefix.apply(t) + "," + r.system() + "," + f(r.percentile(50)) + ","
                    + f(r.percentile(90)) + "," + f(r.percentile(99)) + "," + f(r.average()) + ","
                    + String.format(Locale.ROOT, "%.6e", r.usdPerToken()) + "," + r.requests().size() + ","
                    + r.completed() + "\n";
        });
        return rows;
    }

    /** Runs {@code body(0..n-1)} on a pool of {@code threads}; a failed simulation fails the whole grid. */
    static void inParallel(int threads, int n, java.util.function.IntConsumer body) {
        java.util.concurrent.ForkJoinPool pool = new java.util.concurrent.ForkJoinPool(threads);
        try {
            pool.submit(() -> IntStream.range(0, n).parallel().forEach(body)).get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException("a simulation failed: " + e.getCause(), e.getCause());
        } finally {
            pool.shutdown();
        }
    }

    private static void writeRows(Path p, String header, String[] rows) throws IOException {
        Files.createDirectories(p.getParent());
        try (BufferedWriter w = writer(p, header)) {
            for (String r : rows) {
                w.write(r);
            }
        }
    }

    private static BufferedWriter writer(Path p, String header) throws IOException {
        BufferedWriter w = Files.newBufferedWriter(p, StandardCharsets.UTF_8);
        w.write(header + "\n");
        return w;
    }

    private static String f(double v) {
        return String.format(Locale.ROOT, "%.3f", v);
    }

    private static String opt(double v) {
        return Double.isNaN(v) ? "" : f(v);
    }

    private static String csv(String s) {
        return s.contains(",") || s.contains("\"") ? "\"" + s.replace("\"", "\"\"") + "\"" : s;
    }

    /** Rows of a summary, for tests and the notes. */
    static String describe(List<RunResult> rs) {
        return rs.stream().map(r -> String.format(Locale.ROOT, "%s p99=%.1f avg=%.1f", r.system(), r.percentile(99),
                r.average())).collect(Collectors.joining("; "));
    }
}
