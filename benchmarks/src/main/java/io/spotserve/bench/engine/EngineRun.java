package io.spotserve.bench.engine;

import io.spotserve.bench.eval.RunResult;
import io.spotserve.bench.eval.Scenario;
import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.ReconfigurationMode;
import io.spotserve.engine.Reconfiguration;
import io.spotserve.engine.RequestFailedException;
import io.spotserve.exec.SamplingParams;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.SimulatedClock;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.Hardware;
import io.spotserve.plan.ModelShape;
import io.spotserve.plan.ParallelConfigOptimizer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * One evaluation cell served by the real {@link ServingEngine} (DESIGN.md §4): its request manager (iteration-level
 * batching), Algorithm 1 on the measured arrival rate, the device mapper, the migration planner's order, the context
 * migration between device arenas, the interruption arranger and KV parking — on a {@link SimulatedClock} whose
 * steps cost what the T4 profiles say ({@link CostModelStepTime}) and whose migrations move bytes at 50 Gbps per
 * instance, with a {@link TimingExecutor} (no floats) holding a paper-size model and {@link EvalCloud} replaying the
 * cell's spot trace and, in "+O" cells, the cell's {@link io.spotserve.bench.eval.OnDemandSchedule} — the same fleet
 * for every engine system (no engine manages its own fleet here). Every arrival is handed over before time
 * starts, so a run is deterministic.
 *
 * <p>What differs from {@code Simulation}'s {@code spotserve} is the engine's own policy: requests join running
 * batches between steps, the arrival rate is measured over the re-planning window (backlog included) and the
 * configuration changes when it moves by a quarter, doomed requests whose caches have nowhere to go are parked in
 * host memory, and an engine keeps its process across reconfigurations (no engine restart is charged).
 */
public final class EngineRun {
    /** The system name in the evaluation's CSV files. */
    public static final String SYSTEM = "spotserve-engine";

    /**
     * What the engine runs: our policy, or one of the paper's baselines built into the same engine (same request
     * manager, executor, clock and cloud; only what happens to context at a reconfiguration differs).
     */
    public enum Variant {
        /** SpotServe-J as shipped: Algorithm 1, context migration, just-in-time arrangement, KV parking. */
        SPOTSERVE(SYSTEM),
        /**
         * Rerouting: Algorithm 1's (P, M, B) for the initial fleet at the nominal rate, fixed; reacts when an instance
         * is gone (no notice); surviving pipelines keep running, new ones load from storage, lost requests recompute.
         */
        REROUTING("rerouting-engine"),
        /**
         * Reparallelization: Algorithm 1 as for SPOTSERVE, but every change rebuilds every pipeline from storage and
         * every request recomputes; reacts when an instance is gone.
         */
        REPARALLELIZATION("reparallelization-engine");

        private final String system;

        Variant(String system) {
            this.system = system;
        }

        /** The system name in the CSV files. */
        public String system() {
            return system;
        }

        /** The variant of a system name, or null if the name is not an engine system. */
        public static Variant of(String system) {
            for (Variant v : values()) {
                if (v.system.equals(system)) {
                    return v;
                }
            }
            return null;
        }
    }
    /** Host memory for parked KV caches: half of a g4dn.12xlarge's 192 GiB. */
    static final long HOST_KV_BUDGET = 96L << 30;

    private EngineRun() {
    }

    /**
     * The paper model as a LLaMA-shaped config the executors understand: same layers, width, heads and vocabulary;
     * the SwiGLU hidden size is 2/3 of the GPT FFN (rounded down to a multiple of 64), so a layer holds the same
     * parameters (4h² + 3h·(2/3)·ffn = 4h² + 2h·ffn); the classifier is tied like the GPT shapes'.
     */
    public static LlamaConfig config(ModelShape shape) {
        int hidden = (2 * shape.ffnHidden() / 3) / 64 * 64;
        return new LlamaConfig(shape.hidden(), hidden, shape.layers(), shape.heads(), shape.kvHeads(), shape.vocab(),
                shape.maxPositions(), true);
    }

    /** Runs one cell: {@code EngineRun MODEL TRACE [SEED]} (for inspection; the grid runs through Evaluation). */
    public static void main(String[] args) throws Exception {
        var model = io.spotserve.plan.PaperModel.fromName(args[0]);
        Scenario sc = io.spotserve.bench.eval.Evaluation.scenario(io.spotserve.bench.eval.Evaluation.locateShared(),
                model, args[1], args.length > 2 ? Long.parseLong(args[2]) : 1, io.spotserve.bench.eval.Arrivals.Mode.PAPER);
        long t0 = System.nanoTime();
        RunResult r = run(sc);
        System.out.printf(Locale.ROOT, "%s %s %s: p50 %.1f p99 %.1f avg %.1f s, %d/%d done, %.3g USD/token, %d reconfigurations (%.1f s wall)%n",
                model.displayName(), args[1], SYSTEM, r.percentile(50), r.percentile(99), r.average(), r.completed(),
                r.requests().size(), r.usdPerToken(), r.reconfigurations().size(), (System.nanoTime() - t0) / 1e9);
        for (RunResult.Reconfiguration x : r.reconfigurations()) {
            System.out.printf(Locale.ROOT, "  %8.1f %s -> %s (%s) moved %d reloaded %d pause %.2f%n", x.t(), x.from(), x.to(),
                    x.reason(), x.bytesMoved(), x.bytesReloaded(), x.pauseSeconds());
        }
    }

    /** Runs the cell with our policy; blocks until every request finished or failed. */
    public static RunResult run(Scenario sc) {
        return run(sc, Variant.SPOTSERVE);
    }

    /** Runs the cell with {@code variant}; blocks until every request finished or failed. */
    public static RunResult run(Scenario sc, Variant variant) {
        return run(sc, variant, null);
    }

    /**
     * Runs the cell with {@code variant} under the authors' artifact's setup ({@link ArtifactProfile}: events fired
     * early, Rerouting's cluster-wide layout, the baselines' engine start-ups), or as the main grid when
     * {@code artifact} is null; blocks until every request finished or failed.
     */
    public static RunResult run(Scenario sc, Variant variant, ArtifactProfile artifact) {
        Scenario.Params prm = sc.params();
        Hardware hw = sc.costModel().hardware();
        LlamaConfig config = config(sc.model().shape());
        double network = hw.networkGbps() * 1e9 / 8;
        SimulatedClock clock = SimulatedClock.builder(new CostModelStepTime(sc.costModel()))
                .networkBytesPerSecond(network).localBytesPerSecond(network)
                .storageBytesPerSecond(prm.reloadBytesPerSecond()).build();
        clock.hold();
        boolean ours = variant == Variant.SPOTSERVE;
        EvalCloud cloud = artifact != null ? artifact.cloud(sc, clock, variant)
                : EvalCloud.of(sc, clock, ours ? seconds(prm.graceSeconds()) : Duration.ZERO);
        ParallelConfigOptimizer.Builder settings = ParallelConfigOptimizer.builder(sc.costModel())
                .policy(prm.spotServePolicy()).maxBatch(prm.maxBatch()).promptTokens(prm.promptTokens())
                .outputTokens(prm.outputTokens()).arrivalCv(sc.optimizerCv()).spareInstances(prm.spareInstances());
        int positions = prm.promptTokens() + prm.outputTokens();
        int[] prompt = new int[prm.promptTokens()];
        Arrays.fill(prompt, 5);
        prompt[0] = 1;
        double limit = sc.endSeconds() + prm.drainSeconds();
        double[] arrivals = sc.arrivals();
        List<CompletableFuture<Completion>> futures = new ArrayList<>(arrivals.length);
        List<RunResult.Request> rows = new ArrayList<>(arrivals.length);
        List<Reconfiguration> reconfigs;
        ServingEngine.Builder builder = ServingEngine.builder().model(TimingExecutor.weights(config))
                .instances(cloud).clock(clock).targetInstances(0) // the cloud's fleet: the trace + the cell's OnDemandSchedule
                .maxBatchTokens(prm.maxBatch() * positions).queueCapacity(Math.max(1, arrivals.length))
                .hostKvBudget(ours ? HOST_KV_BUDGET : 0)
                .replanInterval(Duration.ofNanos(Math.round(prm.rateWindowSeconds() * 1e9)))
                .minimumArrivalRate(sc.nominalRate())
                .admissionGroup(Integer.getInteger("spotserve.eval.admissionGroup", Math.max(1, prm.maxBatch() / 2)))
                .drainTimeout(Duration.ZERO);
        switch (variant) {
            case SPOTSERVE -> builder.planning(sc.costModel(), settings).maxBatch(prm.maxBatch());
            case REPARALLELIZATION -> {
                builder.planning(sc.costModel(), settings).maxBatch(prm.maxBatch())
                        .reconfigurationMode(ReconfigurationMode.RESTART);
                if (artifact != null) { // every daemon and engine restarts, then every pipeline reloads
                    builder.pipelineStartup(artifact.startup(), Duration.ZERO);
                }
            }
            case REROUTING -> {
                if (artifact != null) { // start-up, load, then the start-up time again (BASELINE_TRITON)
                    var c = artifact.reroutingLayout();
                    builder.parallelism(c.pipelineStages(), c.tensorShards()).maxBatch(c.maxBatch())
                            .fallbackLayouts(false).reconfigurationMode(ReconfigurationMode.REROUTE)
                            .pipelineStartup(artifact.startup(), artifact.startup());
                    break;
                }
                int initial = initialInstances(cloud);
                var d = settings.copy().spareInstances(0).acquirableInstances(0).build()
                        .decide(initial, 0, sc.nominalRate());
                var c = d.choice().orElseThrow(() -> new IllegalStateException("Algorithm 1 finds no configuration for "
                        + initial + " instances: " + d.reason())).config();
                builder.parallelism(c.pipelineStages(), c.tensorShards()).maxBatch(c.maxBatch())
                        .fallbackLayouts(false).reconfigurationMode(ReconfigurationMode.REROUTE);
            }
            default -> throw new IllegalStateException("unknown variant " + variant);
        }
        try (TimingExecutor executor = new TimingExecutor();
             ServingEngine engine = builder.executor(executor).build()) {
            for (double a : arrivals) {
                GenerationRequest r = GenerationRequest.builder().promptTokens(prompt).maxNewTokens(prm.outputTokens())
                        .sampling(SamplingParams.greedy()).timeout(seconds(limit - a)).build();
                futures.add(engine.submit(r, seconds(a)));
            }
            // Rerouting's artifact layout may not fit the initial fleet (LLaMA-30B A_S: 7 instances, P4M8 takes 8)
            boolean fits = artifact == null || variant != Variant.REROUTING || initialInstances(cloud)
                    * hw.gpusPerInstance() >= artifact.reroutingLayout().pipelineStages()
                    * artifact.reroutingLayout().tensorShards();
            awaitInitialFleet(engine, cloud, fits);
            clock.release();
            double last = 0;
            for (int i = 0; i < arrivals.length; i++) {
                try {
                    Completion c = futures.get(i).join();
                    double finish = secondsOf(c.finishedAt());
                    last = Math.max(last, finish);
                    rows.add(new RunResult.Request(i, arrivals[i], secondsOf(c.firstTokenAt()), finish,
                            c.tokens().length, c.restarts()));
                } catch (CompletionException e) {
                    if (!(e.getCause() instanceof RequestFailedException)) {
                        throw e;
                    }
                    rows.add(new RunResult.Request(i, arrivals[i], Double.NaN, Double.NaN, 0, 0));
                    last = limit;
                }
            }
            EngineMetrics m = engine.metrics();
            reconfigs = m.reconfigurations();
            double stop = Math.max(sc.endSeconds(), last);
            EvalCloud.Bill bill = cloud.bill(seconds(stop));
            List<RunResult.Reconfiguration> rc = new ArrayList<>();
            String from = "none";
            for (Reconfiguration x : reconfigs) {
                String to = x.configuration() == null ? "none" : describe(x);
                if (secondsOf(x.at()) <= stop) {
                    rc.add(new RunResult.Reconfiguration(secondsOf(x.at()), from, to, x.reason(),
                            x.bytesMigrated(), x.bytesLoaded(), secondsOf(x.pause())));
                }
                from = to;
            }
            return new RunResult(variant.system(), rows, timeline(cloud, reconfigs, rows, stop), rc, stop,
                    bill.spotInstanceSeconds(), bill.onDemandInstanceSeconds(), bill.usd());
        }
    }

    /**
     * Waits (real time) until the engine has configured the instances that exist at time zero, while the clock is held:
     * that set-up is free (the paper's initial instances are warm) and then never races the first arrivals.
     */
    private static void awaitInitialFleet(ServingEngine engine, EvalCloud cloud, boolean fits) {
        boolean any = fits && initialInstances(cloud) > 0;
        long until = System.nanoTime() + 120_000_000_000L;
        while (any && engine.metrics().reconfigurations().isEmpty()) {
            if (System.nanoTime() > until) {
                throw new IllegalStateException("the engine did not configure its initial fleet in 120 s: "
                        + engine.metrics());
            }
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for the initial fleet", e);
            }
        }
    }

    /** Instances the cloud hands over at time zero (the trace's warm initial fleet). */
    private static int initialInstances(EvalCloud cloud) {
        return (int) cloud.traceEvents().stream().filter(e -> e.at().isZero()
                && e instanceof io.spotserve.instance.InstanceEvent.Acquired).count();
    }

    /**
     * Fleet and configuration after every change, and the queue (arrived, no first token yet) and running requests
     * sampled once a simulated second — the simulator's timeline columns.
     */
    static List<RunResult.TimelineRow> timeline(EvalCloud cloud, List<Reconfiguration> reconfigs,
                                               List<RunResult.Request> rows, double stop) {
        List<EvalCloud.Sample> fleet = cloud.timeline(seconds(stop));
        List<RunResult.TimelineRow> out = new ArrayList<>();
        int f = 0;
        int r = 0;
        String config = "-";
        EvalCloud.Sample now = null;
        for (int t = 0; t <= (int) Math.ceil(stop); t++) {
            while (f < fleet.size() && secondsOf(fleet.get(f).at()) <= t) {
                now = fleet.get(f++);
            }
            while (r < reconfigs.size() && secondsOf(reconfigs.get(r).at()) <= t) {
                Reconfiguration x = reconfigs.get(r++);
                config = x.configuration() == null ? "-" : describe(x);
            }
            int queue = 0;
            int running = 0;
            for (RunResult.Request q : rows) {
                if (q.arrival() <= t && !(q.completed() && q.finish() <= t)) {
                    if (Double.isNaN(q.firstToken()) || q.firstToken() > t) {
                        queue++;
                    } else {
                        running++;
                    }
                }
            }
            out.add(new RunResult.TimelineRow(t, now == null ? 0 : now.spot(), now == null ? 0 : now.onDemand(),
                    config, queue, running));
        }
        return out;
    }

    private static String describe(Reconfiguration x) {
        var c = x.configuration();
        return String.format(Locale.ROOT, "D%dP%dM%dB%d", c.dataParallel(), c.pipelineStages(), c.tensorShards(),
                c.maxBatch());
    }

    static Duration seconds(double s) {
        return Duration.ofNanos(Math.round(s * 1e9));
    }

    static double secondsOf(Duration d) {
        return d.toNanos() / 1e9;
    }
}
