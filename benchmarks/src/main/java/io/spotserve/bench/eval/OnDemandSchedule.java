package io.spotserve.bench.eval;

import io.spotserve.plan.Decision;
import io.spotserve.plan.FleetPlan;
import io.spotserve.plan.ParallelConfigOptimizer;
import io.spotserve.trace.TraceEvent;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.function.IntFunction;

/**
 * The on-demand fleet of one "+O" cell, decided once and replayed for every engine system of the cell — as the
 * authors' artifact replays its pre-recorded {@code *_ondemand.txt} fleets for every system.
 *
 * <p>It is the instance manager of {@code Simulation} (Algorithm 1's Δ, PAPER policy, spare pool
 * {@link Scenario.Params#spareInstances()}, at most {@link Scenario.Params#maxInstances()} instances) run on the cell's
 * inputs alone, with no serving system attached: it acts at time 0, at every spot grant after 0, at every preemption
 * notice and every removal (in the trace's order; the notice is {@link Scenario.Params#graceSeconds()} before the
 * removal), and — in cells whose rate fluctuates (MAF) — every rate window, with α = the nominal rate, or in
 * fluctuating cells max(nominal, arrivals of the last window / window). Alive instances are the spot ones granted and
 * neither noticed nor removed plus the on-demand ones granted (launching or usable) and not released. The step is
 * the instance manager's rule {@link FleetPlan} (the engine's and the simulator's too), with the trace's spot
 * instances never released: Δ &gt; 0 requests on-demand instances (granted now, usable one launch delay later);
 * Δ &lt; 0 releases on-demand instances, those still launching first, oldest first. Because no system is attached, a
 * release cannot know whether the instance serves, so every usable one counts as hosting: a launching instance ends
 * at the decision, a usable one is handed back {@link Scenario.Params#graceSeconds()} later — every system sees it as
 * a preemption with that notice, so one that uses notices can move its context off first.
 *
 * <p>Same inputs, same schedule: the result depends on the model (through Algorithm 1), the spot trace, the nominal
 * rate and, in fluctuating cells, the arrivals — never on a system's behaviour.
 */
public final class OnDemandSchedule {
    /**
     * One on-demand instance of the schedule.
     *
     * @param id      {@code od-k}, k in grant order
     * @param granted billed from (seconds)
     * @param usable  granted + launch delay
     * @param decided when the release was decided, {@code +∞} if never
     * @param ended   billing end and removal: the decision for a launching instance, decision + grace for a usable
     *                one; {@code +∞} if never released (the run's stop ends it)
     */
    public record Lease(String id, double granted, double usable, double decided, double ended) {
        /** Whether the instance is ever usable (not released while launching). */
        public boolean everUsable() {
            return ended > usable;
        }

        /** Billed seconds up to {@code stop}. */
        public double billedSeconds(double stop) {
            return Math.max(0, Math.min(stop, ended) - granted);
        }
    }

    private OnDemandSchedule() {
    }

    /** Prints the schedule of one cell: {@code OnDemandSchedule MODEL TRACE [SEED]} (for inspection). */
    public static void main(String[] args) throws java.io.IOException {
        var model = io.spotserve.plan.PaperModel.fromName(args[0]);
        Scenario sc = Evaluation.scenario(Evaluation.locateShared(), model, args[1],
                args.length > 2 ? Long.parseLong(args[2]) : 1, Arrivals.Mode.PAPER);
        List<Lease> leases = of(sc);
        for (Lease l : leases) {
            System.out.printf(java.util.Locale.ROOT, "%s granted %.1f usable %.1f release decided %.1f ended %.1f%n",
                    l.id(), l.granted(), l.usable(), l.decided(), l.ended());
        }
        System.out.printf(java.util.Locale.ROOT, "%d on-demand instances, %.0f instance-seconds up to the trace end %.0f s%n",
                leases.size(), billedSeconds(leases, sc.endSeconds()), sc.endSeconds());
    }

    /**
     * The schedule of {@code sc}; empty for a cell without on-demand mixing.
     */
    public static List<Lease> of(Scenario sc) {
        Objects.requireNonNull(sc, "scenario");
        if (!sc.onDemandMixing()) {
            return List.of();
        }
        Scenario.Params prm = sc.params();
        // membership events in the simulator's order: trace order per instant, the start after the adds of time 0
        TreeMap<Double, List<Runnable>> at = new TreeMap<>();
        State st = new State(sc);
        for (TraceEvent e : sc.spotEvents()) {
            double t = e.time().toMillis() / 1000.0;
            List<String> nodes = e.nodes();
            if (e.kind() == TraceEvent.Kind.ADD) {
                add(at, t, () -> st.add(nodes));
            } else if (e.kind() == TraceEvent.Kind.REMOVE) {
                add(at, Math.max(0, t - prm.graceSeconds()), () -> st.notice(nodes));
                add(at, t, () -> st.remove(nodes));
            }
        }
        add(at, 0, st::manage);
        if (sc.fluctuating()) {
            for (double t = prm.rateWindowSeconds(); t < sc.endSeconds(); t += prm.rateWindowSeconds()) {
                add(at, t, st::manage);
            }
        }
        for (Map.Entry<Double, List<Runnable>> e : at.entrySet()) {
            st.now = e.getKey();
            e.getValue().forEach(Runnable::run);
        }
        return List.copyOf(st.leases.values());
    }

    /**
     * Instance-seconds the schedule bills up to {@code stop}.
     */
    public static double billedSeconds(List<Lease> leases, double stop) {
        double s = 0;
        for (Lease l : leases) {
            s += l.billedSeconds(stop);
        }
        return s;
    }

    /**
     * The instance manager's step on an evaluation fleet (this schedule's and the simulator's): Algorithm 1's target
     * (PAPER policy, spare pool, from the optimizer for the instances still acquirable under
     * {@link Scenario.Params#maxInstances()}) for N_t = {@code members}, carried out by {@link FleetPlan} with the
     * trace's spot instances never released. Empty when no configuration is feasible.
     */
    static FleetPlan.Step step(List<FleetPlan.Member> members, double alpha, Scenario.Params prm,
                               IntFunction<ParallelConfigOptimizer> optimizerFor) {
        int n = members.size();
        int onDemand = (int) members.stream().filter(FleetPlan.Member::onDemand).count();
        Decision d = optimizerFor.apply(Math.max(0, prm.maxInstances() - n)).decide(n, onDemand, alpha);
        if (d.choice().isEmpty()) {
            return new FleetPlan.Step(0, List.of());
        }
        return FleetPlan.plan(d.targetInstances(), members, 0, prm.maxInstances(), false);
    }

    private static void add(TreeMap<Double, List<Runnable>> at, double t, Runnable r) {
        at.computeIfAbsent(t, k -> new ArrayList<>()).add(r);
    }

    /** The cloud as the instance manager sees it while the schedule is built. */
    private static final class State {
        private final Scenario sc;
        private final Scenario.Params prm;
        private final Map<Integer, ParallelConfigOptimizer> optimizers = new HashMap<>();
        private final Map<String, Boolean> spotAlive = new LinkedHashMap<>(); // node -> neither noticed nor removed
        private final Map<String, Lease> leases = new LinkedHashMap<>();
        private double now;

        State(Scenario sc) {
            this.sc = sc;
            this.prm = sc.params();
        }

        void add(List<String> nodes) {
            for (String n : nodes) {
                spotAlive.put(n, true);
            }
            if (now > 0) {
                manage();
            }
        }

        void notice(List<String> nodes) {
            for (String n : nodes) {
                spotAlive.computeIfPresent(n, (k, v) -> false);
            }
            manage();
        }

        void remove(List<String> nodes) {
            for (String n : nodes) {
                spotAlive.computeIfPresent(n, (k, v) -> false);
            }
            manage();
        }

        void manage() {
            List<Lease> onDemand = new ArrayList<>();
            for (Lease l : leases.values()) {
                if (l.decided() == Double.POSITIVE_INFINITY) {
                    onDemand.add(l);
                }
            }
            List<FleetPlan.Member> members = new ArrayList<>();
            spotAlive.forEach((node, alive) -> {
                if (alive) {
                    members.add(new FleetPlan.Member(node, false, FleetPlan.State.IDLE));
                }
            });
            for (Lease l : onDemand) {
                // no system is attached: a usable instance may host, so it gets a notice before it goes
                members.add(new FleetPlan.Member(l.id(), true,
                        l.usable() > now ? FleetPlan.State.LAUNCHING : FleetPlan.State.HOSTING));
            }
            FleetPlan.Step step = step(members, alpha(), prm, this::optimizer);
            for (int i = 0; i < step.ask(); i++) {
                String id = "od-" + leases.size();
                leases.put(id, new Lease(id, now, now + prm.launchSeconds(), Double.POSITIVE_INFINITY,
                        Double.POSITIVE_INFINITY));
            }
            for (FleetPlan.Release r : step.releases()) {
                Lease l = leases.get(r.id());
                double end = r.migrateFirst() ? now + prm.graceSeconds() : now;
                leases.put(l.id(), new Lease(l.id(), l.granted(), l.usable(), now, end));
            }
        }

        private double alpha() {
            if (!sc.fluctuating()) {
                return sc.nominalRate();
            }
            double from = now - prm.rateWindowSeconds();
            int c = 0;
            for (double a : sc.arrivals()) {
                if (a > from && a <= now) {
                    c++;
                }
            }
            return Math.max(sc.nominalRate(), c / prm.rateWindowSeconds());
        }

        private ParallelConfigOptimizer optimizer(int acquirable) {
            return optimizers.computeIfAbsent(acquirable, a -> ParallelConfigOptimizer.builder(sc.costModel())
                    .policy(ParallelConfigOptimizer.Policy.PAPER).maxBatch(prm.maxBatch())
                    .promptTokens(prm.promptTokens()).outputTokens(prm.outputTokens()).arrivalCv(sc.optimizerCv())
                    .spareInstances(prm.spareInstances()).acquirableInstances(a).build());
        }
    }
}
