package io.spotserve.bench.eval;

import java.util.List;
import java.util.Objects;

/**
 * One serving system compared in the evaluation (paper §6.1 baselines, §6.4 ablations, and our own policy).
 * The control plane of every SpotServe-family system is the real {@code io.spotserve.plan} code; the flags switch
 * its parts off cumulatively as in Fig. 9.
 *
 * @param name         the name written to the CSV files
 * @param kind         which control plane
 * @param controller   re-optimize (P, M, B) with Algorithm 1 on every change; off: keep the initial (P, M, B) and only
 *                     resize D
 * @param planner      progressive migration (a pipeline resumes when its stages' context has arrived, Alg. 2) and the
 *                     memory-optimized order (GPT-20B feasible on 12 GPUs); off: every pipeline waits for the whole
 *                     migration and GPT-20B needs 16 GPUs
 * @param arranger     just-in-time arrangement (§4.1) and KV-cache migration; off: running batches stop at the notice
 *                     and their requests are recomputed from their committed tokens
 * @param mapper       Kuhn–Munkres device mapping (§3.3); off: positions packed onto surviving GPUs in order
 * @param continuous   iteration-level (continuous) batching instead of the paper's request-level batching
 * @param backlogAware ours, beyond the paper: α_t also counts the queued backlog, and B is the largest batch the profile
 *                     allows for Algorithm 1's (P, M) (an iteration runs the actual batch, so a large cap costs
 *                     nothing at low load but doubles burst capacity); a workload-triggered re-plan is made only
 *                     if the new capacity repays its pause while the present backlog lasts
 * @param onDemandFleet for {@link Kind#ONDEMAND}: the fixed number of on-demand instances
 */
public record SystemSpec(String name, Kind kind, boolean controller, boolean planner, boolean arranger, boolean mapper,
                         boolean continuous, boolean backlogAware, int onDemandFleet) {

    /** Control plane family. */
    public enum Kind {
        /** SpotServe and its ablations and extensions: proactive, context migration. */
        SPOTSERVE,
        /** Fixed (P, M, B); lost pipelines' requests restart on others; reactive. */
        REROUTING,
        /** Algorithm 1's configurations, but every change is a full restart (reload weights, recompute). */
        REPARALLELIZATION,
        /** A constant fleet of on-demand instances, no preemption. */
        ONDEMAND,
        /**
         * The real {@code ServingEngine} on a simulated clock ({@code io.spotserve.bench.engine.EngineRun}), not this
         * package's simulator: our policy as shipped.
         */
        ENGINE
    }

    public SystemSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(kind, "kind");
        if (kind == Kind.ONDEMAND && onDemandFleet < 1) {
            throw new IllegalArgumentException("on-demand system " + name + " needs >= 1 instance, had " + onDemandFleet);
        }
    }

    /** The faithful SpotServe policy. */
    public static SystemSpec spotServe() {
        return new SystemSpec("spotserve", Kind.SPOTSERVE, true, true, true, true, false, false, 0);
    }

    /** Ours: SpotServe + iteration-level batching + backlog-aware controller with the largest batch cap. */
    public static SystemSpec spotServePlus() {
        return new SystemSpec("spotserve+", Kind.SPOTSERVE, true, true, true, true, true, true, 0);
    }

    /** The Rerouting baseline. */
    public static SystemSpec rerouting() {
        return new SystemSpec("rerouting", Kind.REROUTING, false, false, false, false, false, false, 0);
    }

    /** The Reparallelization baseline. */
    public static SystemSpec reparallelization() {
        return new SystemSpec("reparallelization", Kind.REPARALLELIZATION, true, false, false, false, false, false, 0);
    }

    /** On-demand only with {@code n} instances. */
    public static SystemSpec onDemand(int n) {
        return new SystemSpec("ondemand-" + n, Kind.ONDEMAND, true, false, false, false, false, false, n);
    }

    /** The cumulative ablations of Fig. 9, in order. */
    public static List<SystemSpec> ablations() {
        return List.of(
                new SystemSpec("ablation-controller", Kind.SPOTSERVE, false, true, true, true, false, false, 0),
                new SystemSpec("ablation-planner", Kind.SPOTSERVE, false, false, true, true, false, false, 0),
                new SystemSpec("ablation-arranger", Kind.SPOTSERVE, false, false, false, true, false, false, 0),
                new SystemSpec("ablation-mapper", Kind.SPOTSERVE, false, false, false, false, false, false, 0));
    }

    /** The real serving engine, run by {@code EngineRun} (main grid only: about a second of wall time per cell). */
    public static SystemSpec engine() {
        return new SystemSpec("spotserve-engine", Kind.ENGINE, true, true, true, true, true, true, 0);
    }

    /** The paper's baselines built into the real engine ({@code EngineRun.Variant}), main grid only. */
    public static List<SystemSpec> engineBaselines() {
        return List.of(new SystemSpec("rerouting-engine", Kind.ENGINE, false, false, false, false, true, false, 0),
                new SystemSpec("reparallelization-engine", Kind.ENGINE, true, false, false, false, true, false, 0));
    }

    /** The systems the simulator runs: every one but {@link Kind#ENGINE}. */
    public boolean simulated() {
        return kind != Kind.ENGINE;
    }

    /** Every system of one evaluation cell, in output order. */
    public static List<SystemSpec> all() {
        List<SystemSpec> out = new java.util.ArrayList<>();
        out.add(spotServe());
        out.add(rerouting());
        out.add(reparallelization());
        for (int n : new int[] {3, 4, 6, 8}) {
            out.add(onDemand(n));
        }
        out.addAll(ablations());
        out.add(spotServePlus());
        out.add(engine());
        out.addAll(engineBaselines());
        return List.copyOf(out);
    }
}
