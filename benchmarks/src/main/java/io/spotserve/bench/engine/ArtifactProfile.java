package io.spotserve.bench.engine;

import io.spotserve.bench.eval.Scenario;
import io.spotserve.clock.EngineClock;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.Decision;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.ParallelConfigOptimizer;
import io.spotserve.trace.TraceEvent;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;

/**
 * What the authors' artifact (Hsword/SpotServe, branch {@code artifact}) did differently from our main grid, as the
 * engine runs it ({@code Evaluation --setup artifact}, {@link io.spotserve.bench.eval.ArtifactSetup}):
 * <ul>
 *   <li>every trace event is fired {@code leadSeconds} (30 s) early for every system ({@code scheduler.py}:
 *       {@code noti_tstamp -= grace_period} for adds and removes alike), and an added instance is usable when its
 *       event fires (its hosts run from the start; no launch delay). A removal at T therefore takes the instance
 *       from the baselines at T − 30 s, while SpotServe gets the notice at T − 30 s and may migrate off it until
 *       T. Rerouting alone waits the lead again before building a pipeline on added instances ("FIX: wait for new
 *       instances arrive"), so its adds are usable at the trace time;</li>
 *   <li>Rerouting's fixed layout is the artifact optimizer's choice for the whole cluster at the required
 *       throughput ({@link #reroutingLayout}); each pipeline it builds starts its engine, loads its weights from
 *       storage and then sleeps its start-up time again ({@code multi_gpu_gpt_example_iter.cc},
 *       {@code BASELINE_TRITON}) while the other pipelines keep serving;</li>
 *   <li>Reparallelization restarts every daemon and every engine at each change: start-up, then every pipeline
 *       reloads its weights from storage.</li>
 * </ul>
 * The reload speed is the clock's storage bandwidth ({@link Scenario.Params#reloadBytesPerSecond()}).
 *
 * @param leadSeconds     how early every trace event fires (30 s)
 * @param startupSeconds  an engine process's start-up before it loads weights (the paper gives none; 5 s, our
 *                        main grid's engine-restart assumption)
 * @param reroutingLayout Rerouting's fixed (P, M, B); its D follows the usable instances
 */
public record ArtifactProfile(double leadSeconds, double startupSeconds, ParallelConfig reroutingLayout) {
    public ArtifactProfile {
        Objects.requireNonNull(reroutingLayout, "reroutingLayout");
        if (!(leadSeconds >= 0) || !(startupSeconds >= 0) || Double.isInfinite(leadSeconds)
                || Double.isInfinite(startupSeconds)) {
            throw new IllegalArgumentException("lead and start-up must be finite seconds >= 0, were " + leadSeconds
                    + " and " + startupSeconds);
        }
    }

    /**
     * The artifact optimizer's layout for Rerouting ({@code inspect_init_strategy}, approach
     * {@code baseline-triton}): Algorithm 1 with the ARTIFACT policy on every instance of the cluster at the required
     * throughput, batch up to {@code maxBatch}; the (P, M, B) it picks, D left to the fleet.
     *
     * @throws IllegalStateException if no configuration fits the cluster
     */
    public static ParallelConfig reroutingLayout(CostModel cost, int clusterInstances, double requiredRate,
                                                 int maxBatch, int promptTokens, int outputTokens) {
        Decision d = ParallelConfigOptimizer.builder(cost).policy(ParallelConfigOptimizer.Policy.ARTIFACT)
                .maxBatch(maxBatch).promptTokens(promptTokens).outputTokens(outputTokens).build()
                .decide(clusterInstances, requiredRate);
        return d.choice().orElseThrow(() -> new IllegalStateException("the artifact optimizer finds no configuration"
                + " for " + clusterInstances + " instances at " + requiredRate + " req/s: " + d.reason())).config();
    }

    /**
     * The cell's spot events as {@code variant} sees them: adds (after time 0) {@link #leadSeconds} early — for
     * Rerouting at their time — and removals {@link #leadSeconds} early for the baselines (gone then, no notice), at
     * their time for SpotServe (noticed {@link #leadSeconds} before; see {@link #grace}). Time-0 adds stay at 0.
     */
    public List<TraceEvent> events(List<TraceEvent> spot, EngineRun.Variant variant) {
        boolean ours = variant == EngineRun.Variant.SPOTSERVE;
        boolean reroute = variant == EngineRun.Variant.REROUTING;
        Duration lead = EngineRun.seconds(leadSeconds);
        List<TraceEvent> out = new ArrayList<>(spot.size());
        for (TraceEvent e : spot) {
            Duration t = e.time();
            boolean early = switch (e.kind()) {
                case ADD -> !reroute;
                case REMOVE -> !ours;
                default -> false;
            };
            if (early && !t.isZero()) {
                t = t.compareTo(lead) > 0 ? t.minus(lead) : Duration.ZERO;
            }
            out.add(new TraceEvent(t, e.kind(), e.nodes(), e.requiredThroughput()));
        }
        out.sort(Comparator.comparing(TraceEvent::time)); // stable: same-time events keep the trace's order
        return out;
    }

    /** The preemption notice the cloud gives {@code variant}: the lead for SpotServe, none for the baselines. */
    public Duration grace(EngineRun.Variant variant) {
        return variant == EngineRun.Variant.SPOTSERVE ? EngineRun.seconds(leadSeconds) : Duration.ZERO;
    }

    /** The cloud of {@code sc} for {@code variant}: shifted events, instances usable when granted, no on-demand. */
    EvalCloud cloud(Scenario sc, EngineClock clock, EngineRun.Variant variant) {
        return EvalCloud.builder(events(sc.spotEvents(), variant), clock)
                .traceEnd(EngineRun.seconds(sc.endSeconds()))
                .launchDelay(Duration.ZERO)
                .grace(grace(variant))
                .spotType(EvalCloud.spotType(sc.costModel().hardware()))
                .onDemandType(null)
                .build();
    }

    /** Engine start-up as a duration. */
    Duration startup() {
        return EngineRun.seconds(startupSeconds);
    }
}
