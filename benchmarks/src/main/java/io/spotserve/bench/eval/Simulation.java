package io.spotserve.bench.eval;

import io.spotserve.plan.Arrangement;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.Decision;
import io.spotserve.plan.Deployment;
import io.spotserve.plan.DeviceId;
import io.spotserve.plan.DeviceMapper;
import io.spotserve.plan.DeviceMapping;
import io.spotserve.plan.FleetPlan;
import io.spotserve.plan.Hardware;
import io.spotserve.plan.InflightBatch;
import io.spotserve.plan.Interruption;
import io.spotserve.plan.InterruptionArranger;
import io.spotserve.plan.MigrationPlan;
import io.spotserve.plan.MigrationPlanner;
import io.spotserve.plan.ModelContext;
import io.spotserve.plan.PaperModel;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.ParallelConfigOptimizer;
import io.spotserve.plan.Position;
import io.spotserve.plan.ReplanGate;
import io.spotserve.plan.TargetFleet;
import io.spotserve.plan.Transfer;
import io.spotserve.trace.TraceEvent;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.TreeMap;

/**
 * Deterministic discrete-event simulation of one system serving one evaluation cell (SpotServe §6): virtual time in
 * double seconds, one priority queue of events (ties broken by insertion order), no threads, no wall clock, no
 * randomness of its own (arrivals come from the {@link Scenario}).
 *
 * <p>Decisions come from the real control plane: {@link ParallelConfigOptimizer} (Algorithm 1, PAPER policy; the SpotServe family may use
 * {@link Scenario.Params#spotServePolicy()}) picks
 * C, {@link DeviceMapper} maps devices and decides which batches keep their KV cache, {@link MigrationPlanner}
 * orders the migration (its StartStage markers give progressive resume times), {@link InterruptionArranger} decides
 * how many decode steps run inside the grace period and MIGRATE / REROUTE / FINISH, and for spotserve+
 * {@link ReplanGate} decides when a change of configuration is worth its pause (the engine's gate). The executor is
 * timing-only:
 * every prefill and decode iteration takes {@link CostModel#prefillSeconds} / {@link CostModel#decodeStepSeconds}
 * (+ {@link CostModel#embedSeconds} once per prefill) for the current (P, M, batch); a transfer step takes, on the
 * busiest instance, max(sent, received)/50 Gbps + intra-instance/50 Gbps + reloaded/{@code reloadBytesPerSecond},
 * plus the cost model's 0.5 s constant per migration.
 */
public final class Simulation {
    private static final double INF = Double.POSITIVE_INFINITY;

    private final Scenario sc;
    private final SystemSpec sys;
    private final Scenario.Params prm;
    private final CostModel cost;
    private final ModelContext ctx;
    private final Hardware hw;
    private final int gpi;
    private final InterruptionArranger arranger;
    private final ParallelConfigOptimizer deployOpt;
    private final Map<Integer, ParallelConfigOptimizer> fleetOpts = new HashMap<>();

    private final PriorityQueue<Ev> events = new PriorityQueue<>(
            Comparator.comparingDouble(Ev::t).thenComparingLong(Ev::seq));
    private long seq;
    private double now;

    private final LinkedHashMap<String, Inst> insts = new LinkedHashMap<>();
    private int onDemandCounter;
    private final Req[] reqs;
    private int arrived;
    private int completed;
    private final ArrayDeque<Req> fresh = new ArrayDeque<>();
    private final PriorityQueue<Req> retry = new PriorityQueue<>(
            Comparator.comparingInt((Req r) -> -r.done).thenComparingInt(r -> r.id));

    private Pipe[] pipes = new Pipe[0];
    private ParallelConfig config;
    private int m1 = 1;
    private int m2 = 1;
    private Target fixedShape;

    private Pending pending;
    private final Set<Pipe> resuming = new HashSet<>();
    /** spotserve+: α at the last workload decision (the gate's rate band), −1 before any. */
    private double rateAtDecision = -1;
    /** spotserve+: a membership change kept the shape although Algorithm 1's serves more (re-checked each window). */
    private boolean deferred;
    private boolean replanQueued;
    private double queuedDeadline = INF;
    private String queuedReason = "";

    private final List<RunResult.TimelineRow> timeline = new ArrayList<>();
    private final List<RunResult.Reconfiguration> reconfigs = new ArrayList<>();
    private double lastRowT = -INF;
    private int lastQ = -1;
    private int lastRun = -1;

    private Simulation(Scenario sc, SystemSpec sys) {
        this.sc = sc;
        this.sys = sys;
        this.prm = sc.params();
        this.hw = sc.costModel().hardware();
        this.gpi = hw.gpusPerInstance();
        this.ctx = sc.context();
        // without the memory-optimized migration order GPT-20B needs 16 GPUs instead of 12 (paper §6.4)
        this.cost = !sys.planner() && sys.kind() == SystemSpec.Kind.SPOTSERVE && sc.model() == PaperModel.GPT_20B
                ? CostModel.of(sc.costModel().profile(), sc.model().shape(), hw, 16) : sc.costModel();
        this.arranger = new InterruptionArranger(cost);
        // the sensitivity study may switch the SpotServe family to the ARTIFACT reading; everything else stays PAPER
        this.deployOpt = optimizerBuilder(cost, sys.kind() == SystemSpec.Kind.SPOTSERVE ? prm.spotServePolicy()
                : ParallelConfigOptimizer.Policy.PAPER).build();
        this.reqs = new Req[sc.arrivals().length];
        for (int i = 0; i < reqs.length; i++) {
            reqs[i] = new Req(i, sc.arrivals()[i]);
        }
    }

    /** Runs {@code system} on {@code scenario}. Same inputs, same result. */
    public static RunResult run(Scenario scenario, SystemSpec system) {
        if (!system.simulated()) {
            throw new IllegalArgumentException(system.name() + " is the real engine, run by EngineRun, not simulated here");
        }
        return new Simulation(scenario, system).execute();
    }

    /**
     * Whether {@code system} can serve the model at all on this scenario: false only for an on-demand fleet too small
     * for any configuration (e.g. 3 instances = 12 GPUs for LLaMA-30B, which needs 16).
     */
    public static boolean feasible(Scenario scenario, SystemSpec system) {
        if (system.kind() != SystemSpec.Kind.ONDEMAND) {
            return true;
        }
        return new Simulation(scenario, system).deployOpt.decide(system.onDemandFleet(), system.onDemandFleet(),
                0).choice().isPresent();
    }

    private ParallelConfigOptimizer.Builder optimizerBuilder(CostModel m, ParallelConfigOptimizer.Policy policy) {
        return ParallelConfigOptimizer.builder(m).policy(policy)
                .maxBatch(prm.maxBatch()).promptTokens(prm.promptTokens()).outputTokens(prm.outputTokens())
                .arrivalCv(sc.optimizerCv());
    }

    private ParallelConfigOptimizer fleetOpt(int acquirable) {
        return fleetOpts.computeIfAbsent(acquirable, a -> optimizerBuilder(sc.costModel(), ParallelConfigOptimizer.Policy.PAPER)
                .spareInstances(prm.spareInstances()).acquirableInstances(a).build());
    }

    // ------------------------------------------------------------------ main loop

    private RunResult execute() {
        if (sys.kind() == SystemSpec.Kind.ONDEMAND) {
            for (int i = 0; i < sys.onDemandFleet(); i++) {
                Inst in = new Inst("od-" + i, false, 0);
                in.ready = true;
                insts.put(in.name, in);
            }
        } else {
            for (TraceEvent e : sc.spotEvents()) {
                double t = e.time().toMillis() / 1000.0;
                List<String> nodes = e.nodes();
                if (e.kind() == TraceEvent.Kind.ADD) {
                    at(t, () -> addSpot(nodes));
                } else if (e.kind() == TraceEvent.Kind.REMOVE) {
                    at(Math.max(0, t - prm.graceSeconds()), () -> notice(nodes, t));
                    at(t, () -> death(nodes));
                }
            }
        }
        at(0, this::start);
        for (Req r : reqs) {
            at(r.arrival, () -> arrive(r));
        }
        boolean periodic = sys.kind() != SystemSpec.Kind.ONDEMAND && sys.kind() != SystemSpec.Kind.REROUTING
                && (sc.fluctuating() || sys.kind() == SystemSpec.Kind.SPOTSERVE && sys.controller());
        if (periodic) {
            for (double t = prm.rateWindowSeconds(); t < sc.endSeconds(); t += prm.rateWindowSeconds()) {
                at(t, this::rateCheck);
            }
        }
        double limit = sc.endSeconds() + prm.drainSeconds();
        double stop = limit;
        while (!events.isEmpty()) {
            Ev ev = events.peek();
            if (completed == reqs.length && arrived == reqs.length && ev.t() > sc.endSeconds()) {
                stop = Math.max(sc.endSeconds(), now);
                break;
            }
            if (ev.t() > limit) {
                break;
            }
            events.poll();
            now = ev.t();
            ev.action().run();
        }
        if (events.isEmpty()) {
            // nothing left to happen: done, or stuck (no feasible configuration and no instance coming)
            stop = completed == reqs.length ? Math.max(sc.endSeconds(), now) : limit;
        }
        now = stop;
        mark(true);
        double spot = 0;
        double od = 0;
        for (Inst in : insts.values()) {
            double end = Math.min(stop, in.end);
            double s = Math.max(0, end - in.start);
            if (in.spot) {
                spot += s;
            } else {
                od += s;
            }
        }
        double usd = (spot * hw.spotUsdPerHour() + od * hw.onDemandUsdPerHour()) / 3600.0;
        List<RunResult.Request> rows = new ArrayList<>(reqs.length);
        for (Req r : reqs) {
            boolean ok = !Double.isNaN(r.finish);
            rows.add(new RunResult.Request(r.id, r.arrival, r.firstToken, r.finish, ok ? prm.outputTokens() : r.done,
                    r.restarts));
        }
        return new RunResult(sys.name(), rows, timeline, reconfigs, stop, spot, od, usd);
    }

    private void at(double t, Runnable action) {
        events.add(new Ev(t, seq++, action));
    }

    private record Ev(double t, long seq, Runnable action) {
    }

    // ------------------------------------------------------------------ fleet

    private void start() {
        List<Inst> ready = readyInstances(false);
        if (sys.kind() == SystemSpec.Kind.REROUTING) {
            Target t = deployTarget(ready.size(), countOnDemand(ready));
            if (t != null) {
                fixedShape = t;
                m1 = t.m1;
                m2 = t.m2;
                formPipelines(true);
            }
        } else {
            Target t = deployTarget(ready.size(), countOnDemand(ready));
            if (t != null) {
                if (!sys.controller() || sys.kind() == SystemSpec.Kind.ONDEMAND) {
                    fixedShape = t;
                }
                packedDeploy(t, ready, true, "start");
            }
        }
        fleetManage();
        mark(true);
    }

    private void addSpot(List<String> nodes) {
        for (String n : nodes) {
            Inst in = new Inst(n, true, now);
            insts.put(n, in);
            if (now == 0) {
                in.ready = true;
            } else {
                at(now + prm.launchSeconds(), () -> ready(in));
            }
        }
        if (now > 0) {
            fleetManage();
        }
        mark(true);
    }

    private void notice(List<String> nodes, double deathTime) {
        for (String n : nodes) {
            Inst in = insts.get(n);
            if (in == null || in.dead) {
                continue;
            }
            in.noticed = true;
            in.deathAt = deathTime;
        }
        fleetManage();
        if (sys.kind() == SystemSpec.Kind.SPOTSERVE) {
            requestReplan("preemption notice " + String.join("+", nodes), deathTime);
        }
        mark(true);
    }

    private void death(List<String> nodes) {
        Set<String> dead = new HashSet<>();
        for (String n : nodes) {
            Inst in = insts.get(n);
            if (in == null || in.dead) {
                continue;
            }
            in.dead = true;
            in.end = Math.min(in.end, now);
            dead.add(n);
        }
        switch (sys.kind()) {
            case SPOTSERVE -> {
                boolean broke = false;
                for (Pipe p : pipes) {
                    if (p != null && !p.broken && p.usesAny(dead)) {
                        breakPipe(p, false);
                        broke = true;
                    }
                }
                if (broke) {
                    requestReplan("instance lost before migration", INF);
                }
                maybeFinishHalting();
            }
            case REROUTING -> {
                List<Pipe> left = new ArrayList<>();
                int before = pipes.length;
                for (Pipe p : pipes) {
                    if (p.usesAny(dead)) {
                        breakPipe(p, true);
                    } else {
                        left.add(p);
                    }
                }
                pipes = left.toArray(new Pipe[0]);
                if (pipes.length != before) {
                    record("preemption: drop " + (before - pipes.length) + " pipeline(s)", shapeString(before),
                            shapeString(pipes.length), 0, 0, 0);
                }
                formPipelines(false);
            }
            case REPARALLELIZATION -> reparDecide("preemption " + String.join("+", dead));
            case ONDEMAND -> {
            }
        }
        fleetManage();
        mark(true);
    }

    private void ready(Inst in) {
        if (in.dead || in.released) {
            return;
        }
        in.ready = true;
        switch (sys.kind()) {
            case SPOTSERVE -> requestReplan("acquisition " + in.name, INF);
            case REROUTING -> formPipelines(false);
            case REPARALLELIZATION -> reparDecide("acquisition " + in.name);
            case ONDEMAND -> {
            }
        }
        mark(true);
    }

    /**
     * Workload trigger (paper §3.2: the optimizer acts when the current capacity no longer matches α_t): re-plan only
     * when φ(C_t) is below the current α_t; membership changes always re-plan.
     */
    private void rateCheck() {
        fleetManage();
        if (config == null || pipes.length == 0) {
            return;
        }
        double phi = cost.throughput(config, Math.min(m1, config.maxBatch()), Math.min(m2, config.maxBatch()),
                prm.promptTokens(), prm.outputTokens());
        double a = deployAlpha();
        if (gated()) {
            gate(a, phi);
            return;
        }
        if (phi >= a) {
            return;
        }
        if (sys.kind() == SystemSpec.Kind.SPOTSERVE) {
            requestReplan(String.format(Locale.ROOT, "rate %.2f req/s > capacity %.2f", a, phi), INF);
        } else if (sys.kind() == SystemSpec.Kind.REPARALLELIZATION) {
            reparDecide(String.format(Locale.ROOT, "rate %.2f req/s > capacity %.2f", a, phi));
        }
    }

    /**
     * Whether this system's re-plan decisions go through the engine's gate ({@link ReplanGate}): ours, spotserve+.
     * The paper's SpotServe and its ablations keep the paper's trigger (φ(C_t) &lt; α_t, Algorithm 1's choice at every
     * membership change).
     */
    private boolean gated() {
        return sys.kind() == SystemSpec.Kind.SPOTSERVE && sys.backlogAware();
    }

    /**
     * spotserve+, every rate window: the engine's workload trigger ({@link ReplanGate#rateMoved},
     * {@link ReplanGate#onRate}) and its re-check of a change of shape a membership change deferred.
     */
    private void gate(double rate, double phi) {
        if (pending != null || !resuming.isEmpty() || !pipesIntact()) {
            return; // a reconfiguration is under way, or one is due anyway
        }
        List<Inst> surv = readyInstances(false);
        if (deferred) {
            Target t = gatedTarget(surv);
            if (t != null && !ReplanGate.sameShape(t.config, config)) {
                requestReplan(String.format(Locale.ROOT, "deferred change of shape at %.2f req/s", rate), INF);
                return;
            }
        }
        if (!ReplanGate.rateMoved(rate, rateAtDecision)) {
            return;
        }
        rateAtDecision = rate;
        Target tgt = deployTarget(surv.size(), countOnDemand(surv));
        if (tgt == null) {
            return;
        }
        ReplanGate.Outcome o = ReplanGate.onRate(rate, config, tgt.config, false, capacity(surv.size(), tgt), waiting(),
                running(), arrivalsRate(), prm.rateWindowSeconds(), pauseTo(tgt, surv));
        if (o.replans()) {
            requestReplan(String.format(Locale.ROOT, "rate %.2f req/s > capacity %.2f", rate, phi), INF);
        }
    }

    /**
     * The configuration to deploy on {@code surv}: Algorithm 1's ({@link #deployTarget}); for spotserve+ with a
     * configuration deployed, the engine's membership-change hysteresis ({@link ReplanGate#atMembershipChange})
     * between it and the current (P, M, B) resized.
     */
    private Target chooseTarget(List<Inst> surv) {
        if (!gated() || config == null || pipes.length == 0) {
            return deployTarget(surv.size(), countOnDemand(surv));
        }
        return gatedTarget(surv);
    }

    private Target gatedTarget(List<Inst> surv) {
        Target tgt = deployTarget(surv.size(), countOnDemand(surv));
        ReplanGate.Capacity cap = capacity(surv.size(), tgt);
        ParallelConfig preferred = tgt == null ? null : tgt.config;
        double pause = tgt == null ? 0 : pauseTo(tgt, surv);
        ParallelConfig chosen = ReplanGate.atMembershipChange(config, preferred, false, cap, waiting(), running(),
                arrivalsRate(), prm.rateWindowSeconds(), pause);
        deferred = preferred != null && chosen != preferred && cap.throughput(preferred) > cap.throughput(chosen);
        if (chosen == null || chosen == preferred) {
            return tgt;
        }
        return new Target(chosen, m1, m2);
    }

    /**
     * The gate's view of {@code instances} instances: D = their GPUs / (P·M) (every device serving, as
     * {@link #deployTarget}), φ with the micro-batching of the current configuration for its shape and of
     * {@code tgt} for Algorithm 1's.
     */
    private ReplanGate.Capacity capacity(int instances, Target tgt) {
        return new ReplanGate.Capacity() {
            @Override
            public ParallelConfig fit(ParallelConfig shape) {
                int d = instances * gpi / (shape.pipelineStages() * shape.tensorShards());
                return d < 1 ? null : ParallelConfig.of(d, shape.pipelineStages(), shape.tensorShards(),
                        shape.maxBatch());
            }

            @Override
            public double throughput(ParallelConfig c) {
                boolean current = config != null && c.pipelineStages() == config.pipelineStages()
                        && c.tensorShards() == config.tensorShards() && c.maxBatch() == config.maxBatch();
                int a = current || tgt == null ? m1 : tgt.m1;
                int b = current || tgt == null ? m2 : tgt.m2;
                try {
                    return cost.throughput(c, Math.min(a, c.maxBatch()), Math.min(b, c.maxBatch()),
                            prm.promptTokens(), prm.outputTokens());
                } catch (IllegalArgumentException e) {
                    return 0;
                }
            }
        };
    }

    /** The pause of moving to {@code tgt}: the planned migration's time, at least an engine restart. */
    private double pauseTo(Target tgt, List<Inst> surv) {
        return Math.max(prm.engineRestartSeconds(), mapAndTime(deployment(null), tgt, surv).totalSeconds);
    }

    private int waiting() {
        return retry.size() + fresh.size();
    }

    private int running() {
        int n = 0;
        for (Pipe p : pipes) {
            if (p != null) {
                n += p.active.size();
            }
        }
        return n;
    }

    /** α without the backlog, floored at the nominal rate: the gate's arrivals for the queue that follows. */
    private double arrivalsRate() {
        return Math.max(sc.nominalRate(), windowRate());
    }

    /**
     * "+O": Algorithm 1's Δ by the instance manager's rule ({@link OnDemandSchedule#step}, {@link FleetPlan}): asks (ready
     * after the launch delay) or on-demand releases; a hosting one gets a notice first, to move its context off.
     */
    private void fleetManage() {
        if (!sc.onDemandMixing() || sys.kind() == SystemSpec.Kind.ONDEMAND) {
            return;
        }
        Set<String> used = usedInstances();
        List<FleetPlan.Member> members = new ArrayList<>();
        for (Inst in : insts.values()) {
            if (!in.dead && !in.released && !in.noticed) {
                members.add(new FleetPlan.Member(in.name, !in.spot, !in.ready ? FleetPlan.State.LAUNCHING
                        : used.contains(in.name) ? FleetPlan.State.HOSTING : FleetPlan.State.IDLE));
            }
        }
        FleetPlan.Step step = OnDemandSchedule.step(members, alpha(), prm, this::fleetOpt);
        for (int i = 0; i < step.ask(); i++) {
            Inst in = new Inst("od-" + onDemandCounter++, false, now);
            insts.put(in.name, in);
            at(now + prm.launchSeconds(), () -> ready(in));
        }
        List<String> leaving = new ArrayList<>();
        for (FleetPlan.Release r : step.releases()) {
            Inst in = insts.get(r.id());
            if (r.migrateFirst()) { // a hosting one leaves after a notice of its own
                in.noticed = true;
                in.deathAt = now + prm.graceSeconds();
                leaving.add(in.name);
            } else {
                in.released = true;
                in.end = now;
            }
        }
        if (!leaving.isEmpty()) {
            at(now + prm.graceSeconds(), () -> death(leaving));
            if (sys.kind() == SystemSpec.Kind.SPOTSERVE) {
                requestReplan("release " + String.join("+", leaving), now + prm.graceSeconds());
            }
        }
    }

    /** α_t for Algorithm 1: see {@link #deployAlpha()}; the instance manager and the baselines use this one. */
    private double alpha() {
        return sc.fluctuating() ? Math.max(sc.nominalRate(), windowRate()) : sc.nominalRate();
    }

    private double windowRate() {
        double from = now - prm.rateWindowSeconds();
        int c = 0;
        for (int i = arrived - 1; i >= 0 && reqs[i].arrival > from; i--) {
            c++;
        }
        return c / prm.rateWindowSeconds();
    }

    /**
     * α_t for SpotServe's deployment decisions: the paper's online estimate over the last window, floored at the
     * workload's nominal rate where one is given (the artifact's fixed "required throughput"); ours also adds the rate
     * that drains the queued backlog within two windows. Baselines and the instance manager use {@link #alpha()}.
     */
    private double deployAlpha() {
        double a = alpha();
        if (sys.kind() == SystemSpec.Kind.SPOTSERVE && sys.controller()) {
            a = Math.max(a, windowRate());
        }
        if (sys.backlogAware()) {
            a += (fresh.size() + retry.size()) / (2 * prm.rateWindowSeconds());
        }
        return a;
    }

    private List<Inst> readyInstances(boolean includeNoticed) {
        List<Inst> out = new ArrayList<>();
        for (Inst in : insts.values()) {
            if (in.ready && !in.dead && !in.released && (includeNoticed || !in.noticed)) {
                out.add(in);
            }
        }
        return out;
    }

    private static int countOnDemand(List<Inst> l) {
        int c = 0;
        for (Inst in : l) {
            if (!in.spot) {
                c++;
            }
        }
        return c;
    }

    private Set<String> usedInstances() {
        Set<String> s = new HashSet<>();
        for (Pipe p : pipes) {
            if (p != null) {
                for (DeviceId d : p.devices) {
                    s.add(d.instance());
                }
            }
        }
        return s;
    }

    // ------------------------------------------------------------------ configuration choice

    private record Target(ParallelConfig config, int m1, int m2) {
    }

    private Target deployTarget(int instances, int onDemand) {
        if (fixedShape != null) {
            ParallelConfig f = fixedShape.config;
            int d = instances * gpi / (f.pipelineStages() * f.tensorShards());
            if (sys.kind() == SystemSpec.Kind.ONDEMAND) {
                d = f.dataParallel();
            }
            return d < 1 ? null : new Target(ParallelConfig.of(d, f.pipelineStages(), f.tensorShards(), f.maxBatch()),
                    fixedShape.m1, fixedShape.m2);
        }
        Decision dec = deployOpt.decide(instances, onDemand, deployAlpha());
        if (dec.choice().isEmpty()) {
            return null;
        }
        // held instances cost the same busy or idle: Algorithm 1's (P, M, B), D = floor(GPUs / (P·M)) as in [A]
        ParallelConfig c = dec.choice().get().config();
        int d = Math.max(c.dataParallel(), instances * gpi / (c.pipelineStages() * c.tensorShards()));
        // ours: the batch cap costs nothing at low load (an iteration runs the actual batch), so take the largest
        int b = sys.backlogAware() ? largestBatch(c.tensorShards(), c.maxBatch()) : c.maxBatch();
        return new Target(ParallelConfig.of(d, c.pipelineStages(), c.tensorShards(), b),
                dec.choice().get().prefillMicroBatches(), dec.choice().get().decodeMicroBatches());
    }

    private int largestBatch(int shards, int chosen) {
        int b = chosen;
        while (b * 2 <= prm.maxBatch() && cost.profile().layerTimes().get(shards).containsKey(b * 2)
                && b * 2 <= 1 << (cost.profile().embedMs().size() - 1)) {
            b *= 2;
        }
        return b;
    }

    // ------------------------------------------------------------------ requests and the timing-only executor

    private void arrive(Req r) {
        arrived++;
        fresh.add(r);
        dispatch();
        mark(false);
    }

    private Req pollQueue() {
        Req r = retry.poll();
        return r != null ? r : fresh.poll();
    }

    private void requeue(Req r, boolean fromScratch) {
        if (r.cached || r.done > 0) {
            r.restarts++;
        }
        r.cached = false;
        if (fromScratch) {
            r.done = 0;
        }
        retry.add(r);
    }

    /** Idle pipelines first (so iteration-level batching never stacks requests while a pipeline idles), then the rest. */
    private void dispatch() {
        for (Pipe p : pipes) {
            if (p != null && p.active.isEmpty()) {
                tryStart(p);
            }
        }
        for (Pipe p : pipes) {
            if (p != null) {
                tryStart(p);
            }
        }
    }

    private void tryStart(Pipe p) {
        if (!p.usable || p.busy || p.broken || p.retired || p.halted) {
            return;
        }
        int cap = config.maxBatch();
        if (!p.halting) {
            if (sys.continuous()) {
                // iteration-level admission, in groups of >= B/2 while others run: a prefill of one request on a
                // P-stage pipeline costs about P times its share of a pipelined group prefill and stalls the batch
                // and only when there is a backlog (at least one waiting request per pipeline): at low load a request
                // is better off waiting briefly for a pipeline of its own than stalling and slowing a running batch
                int free = cap - p.active.size();
                int minGroup = p.active.isEmpty() ? 1 : Math.max(1, cap / 2);
                boolean backlog = retry.size() + fresh.size() >= pipes.length;
                if (free >= minGroup && (p.active.isEmpty() || backlog)) {
                    while (p.active.size() < cap && (!retry.isEmpty() || !fresh.isEmpty())) {
                        p.active.add(pollQueue());
                    }
                }
            } else if (p.active.isEmpty()) {
                while (p.active.size() < cap && (!retry.isEmpty() || !fresh.isEmpty())) {
                    p.active.add(pollQueue());
                }
                p.batch = pow2(p.active.size());
            }
        }
        if (p.active.isEmpty()) {
            if (p.halting) {
                halt(p);
            }
            return;
        }
        List<Req> need = new ArrayList<>();
        int maxDone = 0;
        for (Req r : p.active) {
            if (!r.cached) {
                need.add(r);
                maxDone = Math.max(maxDone, r.done);
            }
        }
        int stages = config.pipelineStages();
        int shards = config.tensorShards();
        double dur;
        if (!need.isEmpty()) {
            int b = pow2(need.size());
            dur = cost.prefillSeconds(stages, shards, b, Math.min(m1, b), prm.promptTokens() + maxDone)
                    + cost.embedSeconds(b);
            p.prefill = need;
        } else {
            int b = sys.continuous() ? pow2(p.active.size()) : Math.max(p.batch, pow2(p.active.size()));
            dur = cost.decodeStepSeconds(stages, shards, b, Math.min(m2, b));
            p.prefill = null;
        }
        p.busy = true;
        int gen = p.gen;
        at(now + dur, () -> iterationDone(p, gen));
    }

    private void iterationDone(Pipe p, int gen) {
        if (p.gen != gen || p.retired || p.broken) {
            return;
        }
        p.busy = false;
        if (p.prefill != null) {
            for (Req r : p.prefill) {
                r.cached = true;
                if (Double.isNaN(r.firstToken)) {
                    r.firstToken = now;
                }
            }
            p.prefill = null;
        } else {
            for (int i = p.active.size() - 1; i >= 0; i--) {
                Req r = p.active.get(i);
                r.done++;
                if (r.done >= prm.outputTokens()) {
                    r.finish = now;
                    completed++;
                    p.active.remove(i);
                }
            }
            if (!sys.continuous() && p.active.isEmpty()) {
                p.batch = 0;
            }
        }
        if (p.halting) {
            if (p.stopAfter > 0) {
                p.stopAfter--;
            }
            if (p.active.isEmpty() || (p.stopAfter == 0 && p.action != Arrangement.Action.FINISH)) {
                halt(p);
                return;
            }
        }
        tryStart(p);
        mark(false);
    }

    private void breakPipe(Pipe p, boolean fromScratch) {
        p.gen++;
        p.busy = false;
        p.broken = true;
        p.usable = false;
        for (Req r : p.active) {
            requeue(r, fromScratch);
        }
        p.active.clear();
        p.prefill = null;
        if (resuming.remove(p) && resuming.isEmpty()) {
            afterMigration();
        }
        if (pending != null && pending.touched().contains(p)) {
            p.halted = true;
        }
    }

    // ------------------------------------------------------------------ SpotServe family

    /** A reconfiguration whose touched pipelines are still running their arranged steps. */
    private record Pending(String reason, Set<Pipe> touched) {
    }

    private void requestReplan(String reason, double deadline) {
        if (pending != null || !resuming.isEmpty()) {
            replanQueued = true;
            queuedDeadline = Math.min(queuedDeadline, deadline);
            queuedReason = reason;
            return;
        }
        beginReplan(reason, deadline);
    }

    private void afterMigration() {
        if (replanQueued && pending == null && resuming.isEmpty()) {
            replanQueued = false;
            double d = queuedDeadline;
            queuedDeadline = INF;
            beginReplan(queuedReason, d);
        }
    }

    private boolean pipesIntact() {
        if (config == null || pipes.length != config.dataParallel()) {
            return false;
        }
        for (Pipe p : pipes) {
            if (p == null || p.broken) {
                return false;
            }
            for (DeviceId d : p.devices) {
                Inst in = insts.get(d.instance());
                if (in.dead || in.noticed || in.released) {
                    return false;
                }
            }
        }
        return true;
    }

    private void beginReplan(String reason, double deadline) {
        List<Inst> surv = readyInstances(false);
        Target tgt = chooseTarget(surv);
        if (tgt == null) {
            return;
        }
        boolean intact = pipesIntact();
        if (intact && tgt.config.equals(config) && tgt.m1 == m1 && tgt.m2 == m2) {
            return;
        }
        if (config == null || pipes.length == 0) {
            packedDeploy(tgt, surv, false, reason);
            return;
        }
        Plan tentative = mapAndTime(deployment(null), tgt, surv);
        Set<Pipe> touched = new HashSet<>();
        for (Pipe p : pipes) {
            if (p != null && !tentative.untouchedOld.contains(p)) {
                touched.add(p);
            }
        }
        Map<Arrangement.Action, Integer> actions = new TreeMap<>();
        for (Pipe p : touched) {
            if (arrange(p, tentative.totalSeconds, deadline)) {
                actions.merge(p.action, 1, Integer::sum);
            }
        }
        StringBuilder why = new StringBuilder(reason);
        if (!actions.isEmpty()) {
            why.append(" [");
            actions.forEach((k, v) -> why.append(why.charAt(why.length() - 1) == '[' ? "" : " ")
                    .append(k.name().toLowerCase(Locale.ROOT)).append(' ').append(v));
            why.append(']');
        }
        pending = new Pending(why.toString(), touched);
        maybeFinishHalting();
    }

    /** Arranges one touched pipeline; returns whether it had a running batch to arrange. */
    private boolean arrange(Pipe p, double tmig, double deadline) {
        p.halting = true;
        if (p.broken || p.active.isEmpty() || !p.usable) {
            p.action = Arrangement.Action.MIGRATE;
            p.halted = true;
            return false;
        }
        int remaining = 0;
        for (Req r : p.active) {
            remaining = Math.max(remaining, prm.outputTokens() - r.done);
        }
        // the engine's record of what to do (plan/Interruption); the simulator counts steps, the engine paces time
        Interruption plan = !sys.arranger() ? Interruption.rerouteNow("ablation without the arranger")
                : deadline < INF ? Interruption.atPreemption(arranger, config, m2, remaining, Math.max(0, deadline - now),
                tmig, 0) : Interruption.migrateNow("no deadline");
        p.action = plan.action();
        p.stopAfter = plan.stepsBeforeStop(p.busy ? 1 : 0);
        if (p.stopAfter == 0) {
            p.halted = true;
        }
        return true;
    }

    private void halt(Pipe p) {
        p.halted = true;
        maybeFinishHalting();
    }

    private void maybeFinishHalting() {
        if (pending == null) {
            return;
        }
        for (Pipe p : pending.touched()) {
            if (!p.halted) {
                return;
            }
        }
        Pending pd = pending;
        pending = null;
        doReconfig(pd);
    }

    /** The old side for the device mapper; {@code touched} pipes contribute their batches per their action. */
    private Deployment deployment(Pending pd) {
        Map<Position, DeviceId> placement = new LinkedHashMap<>();
        Map<Integer, List<InflightBatch>> batches = new TreeMap<>();
        for (int d = 0; d < pipes.length; d++) {
            Pipe p = pipes[d];
            if (p == null) {
                continue;
            }
            int k = 0;
            for (int s = 0; s < config.pipelineStages(); s++) {
                for (int m = 0; m < config.tensorShards(); m++) {
                    DeviceId dev = p.devices.get(k++);
                    Inst in = insts.get(dev.instance());
                    // an instance that dies now (no grace left, e.g. a 0 s notice) is no migration source
                    if (!in.dead && in.deathAt > now) {
                        placement.put(new Position(d, s, m), dev);
                    }
                }
            }
            if (p.broken || (pd != null && pd.touched().contains(p) && p.action == Arrangement.Action.REROUTE)) {
                continue;
            }
            List<InflightBatch> list = new ArrayList<>();
            for (Req r : p.active) {
                if (r.cached) {
                    list.add(new InflightBatch("r" + r.id, 1, prm.promptTokens(), r.done));
                }
            }
            if (!list.isEmpty()) {
                batches.put(d, list);
            }
        }
        return new Deployment(config, placement, batches);
    }

    private void doReconfig(Pending pd) {
        List<Inst> surv = readyInstances(false);
        Target tgt = chooseTarget(surv);
        if (tgt == null) {
            // nothing feasible on the survivors: stop the touched pipelines, keep the requests' committed tokens
            for (Pipe p : pd.touched()) {
                breakPipe(p, false);
            }
            record(pd.reason() + " (no feasible configuration)", configString(config), "none", 0, 0, 0);
            config = null;
            pipes = new Pipe[0];
            dispatch();
            return;
        }
        Deployment old = deployment(pd);
        Plan plan = mapAndTime(old, tgt, surv);
        ParallelConfig from = config;
        Map<Integer, Req> byId = new HashMap<>();
        Set<Req> placed = new HashSet<>();
        for (Pipe p : pipes) {
            if (p != null) {
                for (Req r : p.active) {
                    byId.put(r.id, r);
                }
            }
        }
        Pipe[] next = new Pipe[tgt.config.dataParallel()];
        double pause = 0;
        for (int d = 0; d < next.length; d++) {
            Pipe keep = plan.untouchedNew.get(d);
            if (keep != null) {
                next[d] = keep;
                placed.addAll(keep.active);
                continue;
            }
            Pipe np = new Pipe(plan.devicesOf(d, tgt.config));
            for (String id : plan.kept.getOrDefault(d, List.of())) {
                Req r = byId.get(Integer.parseInt(id.substring(1)));
                np.active.add(r);
                placed.add(r);
            }
            np.batch = np.active.isEmpty() ? 0 : pow2(np.active.size());
            double off = Math.max(plan.resume[d], prm.engineRestartSeconds());
            pause = Math.max(pause, off);
            next[d] = np;
            resuming.add(np);
            at(now + off, () -> resume(np));
        }
        Set<Pipe> reused = new HashSet<>(Arrays.asList(next));
        for (Pipe p : pipes) {
            if (p == null || reused.contains(p)) {
                continue;
            }
            p.gen++;
            p.retired = true;
            p.busy = false;
            for (Req r : p.active) {
                if (!placed.contains(r)) {
                    requeue(r, false);
                }
            }
            p.active.clear();
        }
        config = tgt.config;
        m1 = tgt.m1;
        m2 = tgt.m2;
        pipes = next;
        for (Pipe p : next) {
            p.halting = false;
            p.halted = false;
            p.stopAfter = 0;
        }
        record(pd.reason(), configString(from), configString(config), plan.bytesMoved, plan.bytesReloaded, pause);
        dispatch();
        if (resuming.isEmpty()) {
            afterMigration();
        }
        mark(true);
    }

    private void resume(Pipe p) {
        if (!resuming.remove(p) || p.retired || p.broken) {
            return;
        }
        p.usable = true;
        tryStart(p);
        if (resuming.isEmpty()) {
            afterMigration();
        }
        mark(true);
    }

    /** A fresh deployment packed onto {@code on} in order: warm at t = 0, otherwise engines start and load weights. */
    private void packedDeploy(Target tgt, List<Inst> on, boolean warm, String reason) {
        List<DeviceId> devs = new ArrayList<>();
        for (Inst in : on) {
            for (int g = 0; g < gpi; g++) {
                devs.add(new DeviceId(in.name, g));
            }
        }
        ParallelConfig c = tgt.config;
        int per = c.pipelineStages() * c.tensorShards();
        Pipe[] next = new Pipe[c.dataParallel()];
        double load = warm ? 0 : prm.engineRestartSeconds() + maxInstanceWeightBytes(c, devs) / prm.reloadBytesPerSecond();
        for (int d = 0; d < next.length; d++) {
            next[d] = new Pipe(new ArrayList<>(devs.subList(d * per, (d + 1) * per)));
            if (warm) {
                next[d].usable = true;
            } else {
                Pipe np = next[d];
                if (sys.kind() == SystemSpec.Kind.SPOTSERVE) {
                    resuming.add(np);
                }
                at(now + load, () -> {
                    if (sys.kind() == SystemSpec.Kind.SPOTSERVE) {
                        resume(np);
                    } else if (!np.retired) {
                        np.usable = true;
                        tryStart(np);
                        mark(true);
                    }
                });
            }
        }
        ParallelConfig from = config;
        config = c;
        m1 = tgt.m1;
        m2 = tgt.m2;
        pipes = next;
        if (!warm) {
            record(reason + " (restart, reload weights)", configString(from), configString(c), 0,
                    totalWeightBytes(c), load);
        } else {
            record(reason, "none", configString(c), 0, 0, 0);
        }
        dispatch();
    }

    // ------------------------------------------------------------------ mapping + migration timing

    private final class Plan {
        Map<Position, DeviceId> placement;
        Map<Integer, List<String>> kept = new HashMap<>();
        double[] resume;
        double totalSeconds;
        long bytesMoved;
        long bytesReloaded;
        final Set<Pipe> untouchedOld = new HashSet<>();
        final Map<Integer, Pipe> untouchedNew = new HashMap<>();

        List<DeviceId> devicesOf(int d, ParallelConfig c) {
            List<DeviceId> l = new ArrayList<>();
            for (int s = 0; s < c.pipelineStages(); s++) {
                for (int m = 0; m < c.tensorShards(); m++) {
                    l.add(placement.get(new Position(d, s, m)));
                }
            }
            return l;
        }
    }

    private Plan mapAndTime(Deployment old, Target tgt, List<Inst> surv) {
        ParallelConfig nc = tgt.config;
        // instances that hold context first, in fleet order; then the empty ones
        Set<String> holding = new HashSet<>();
        old.placement().values().forEach(d -> holding.add(d.instance()));
        List<TargetFleet.Instance> order = new ArrayList<>();
        for (Inst in : surv) {
            if (holding.contains(in.name)) {
                order.add(new TargetFleet.Instance(in.name, gpi));
            }
        }
        for (Inst in : surv) {
            if (!holding.contains(in.name)) {
                order.add(new TargetFleet.Instance(in.name, gpi));
            }
        }
        Plan plan = new Plan();
        plan.resume = new double[nc.dataParallel()];
        if (sys.mapper()) {
            DeviceMapping mapping = DeviceMapper.map(ctx, old, new TargetFleet(nc, order));
            plan.placement = mapping.placement();
            mapping.keptBatches().forEach((d, l) -> {
                List<String> ids = new ArrayList<>();
                l.forEach(b -> ids.add(b.id()));
                plan.kept.put(d, ids);
            });
            plan.bytesMoved = mapping.bytesMoved();
            plan.bytesReloaded = mapping.bytesReloaded();
            plan.totalSeconds = transferSeconds(mapping.transfers());
            if (sys.planner()) {
                MigrationPlan mp = MigrationPlanner.plan(mapping, Long.MAX_VALUE);
                List<Transfer> sofar = new ArrayList<>();
                double t = transferSeconds(sofar);
                Arrays.fill(plan.resume, 0);
                for (MigrationPlan.Step s : mp.steps()) {
                    if (s instanceof MigrationPlan.Migrate m) {
                        sofar.addAll(m.transfers());
                        t = transferSeconds(sofar);
                    } else if (s instanceof MigrationPlan.StartStage st) {
                        plan.resume[st.pipeline()] = Math.max(plan.resume[st.pipeline()], t);
                    }
                }
            } else {
                Arrays.fill(plan.resume, plan.totalSeconds);
            }
        } else {
            naiveMapping(old, nc, order, plan);
        }
        // pipelines whose devices, shape and requests are unchanged keep running untouched
        if (config != null && nc.pipelineStages() == config.pipelineStages() && nc.tensorShards() == config.tensorShards()
                && nc.maxBatch() == config.maxBatch()) {
            for (int d = 0; d < nc.dataParallel(); d++) {
                List<DeviceId> devs = plan.devicesOf(d, nc);
                for (int od = 0; od < pipes.length; od++) {
                    Pipe p = pipes[od];
                    if (p == null || p.broken || !p.devices.equals(devs) || plan.untouchedOld.contains(p)) {
                        continue;
                    }
                    Set<String> mine = new HashSet<>();
                    for (Req r : p.active) {
                        if (r.cached) {
                            mine.add("r" + r.id);
                        }
                    }
                    Set<String> got = new HashSet<>(plan.kept.getOrDefault(d, List.of()));
                    if (sys.mapper() ? got.equals(mine) : true) {
                        plan.untouchedOld.add(p);
                        plan.untouchedNew.put(d, p);
                        plan.resume[d] = 0;
                    }
                }
            }
        }
        return plan;
    }

    /** Migration time of a set of transfers executed in parallel (busiest instance) + the fixed overhead. */
    private double transferSeconds(List<Transfer> transfers) {
        if (transfers.isEmpty()) {
            return 0;
        }
        Map<String, long[]> per = new HashMap<>();
        for (Transfer t : transfers) {
            long b = t.bytes();
            long[] to = per.computeIfAbsent(t.target().instance(), k -> new long[4]);
            if (t.isReload()) {
                to[3] += b;
            } else if (t.intraInstance()) {
                to[2] += b;
            } else {
                to[1] += b;
                per.computeIfAbsent(t.source().instance(), k -> new long[4])[0] += b;
            }
        }
        double net = hw.networkGbps() * 1e9 / 8;
        double worst = 0;
        for (long[] v : per.values()) {
            worst = Math.max(worst, Math.max(v[0], v[1]) / net + v[2] / net + v[3] / prm.reloadBytesPerSecond());
        }
        return worst + hw.migrationOverheadSeconds();
    }

    /** Ablated device mapper: positions packed onto the target devices in order; no KV cache is carried. */
    private void naiveMapping(Deployment old, ParallelConfig nc, List<TargetFleet.Instance> order, Plan plan) {
        Map<DeviceId, Position> oldPos = new HashMap<>();
        old.placement().forEach((p, d) -> oldPos.put(d, p));
        List<DeviceId> devs = new ArrayList<>();
        for (TargetFleet.Instance in : order) {
            for (int g = 0; g < in.gpus(); g++) {
                devs.add(new DeviceId(in.name(), g));
            }
        }
        plan.placement = new LinkedHashMap<>();
        Map<String, Long> recv = new HashMap<>();
        int i = 0;
        for (Position p : Deployment.positions(nc)) {
            DeviceId dev = devs.get(i++);
            plan.placement.put(p, dev);
            long need = ctx.weightBytesPerPosition(nc, p);
            Position o = oldPos.get(dev);
            long reuse = o == null ? 0 : overlapBytes(old.config(), o, nc, p);
            long b = Math.max(0, need - reuse);
            plan.bytesMoved += b;
            recv.merge(dev.instance(), b, Long::sum);
        }
        double net = hw.networkGbps() * 1e9 / 8;
        double worst = 0;
        for (long b : recv.values()) {
            worst = Math.max(worst, b / net);
        }
        plan.totalSeconds = plan.bytesMoved == 0 ? 0 : worst + hw.migrationOverheadSeconds();
        Arrays.fill(plan.resume, plan.totalSeconds);
    }

    private long overlapBytes(ParallelConfig oc, Position o, ParallelConfig nc, Position n) {
        int a0 = ctx.firstLayer(o.stage(), oc.pipelineStages());
        int a1 = ctx.firstLayer(o.stage() + 1, oc.pipelineStages());
        int b0 = ctx.firstLayer(n.stage(), nc.pipelineStages());
        int b1 = ctx.firstLayer(n.stage() + 1, nc.pipelineStages());
        int layers = Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
        double s0 = Math.max((double) o.shard() / oc.tensorShards(), (double) n.shard() / nc.tensorShards());
        double s1 = Math.min((double) (o.shard() + 1) / oc.tensorShards(), (double) (n.shard() + 1) / nc.tensorShards());
        long b = (long) (layers * Math.max(0, s1 - s0) * ctx.layerWeightBytes());
        if (o.stage() == 0 && n.stage() == 0) {
            b += ctx.embeddingBytes();
        }
        if (o.stage() == oc.pipelineStages() - 1 && n.stage() == nc.pipelineStages() - 1) {
            b += ctx.classifierBytes();
        }
        return b;
    }

    private long maxInstanceWeightBytes(ParallelConfig c, List<DeviceId> devs) {
        Map<String, Long> per = new HashMap<>();
        int i = 0;
        for (Position p : Deployment.positions(c)) {
            per.merge(devs.get(i++).instance(), ctx.weightBytesPerPosition(c, p), Long::sum);
        }
        return per.values().stream().mapToLong(Long::longValue).max().orElse(0);
    }

    private long totalWeightBytes(ParallelConfig c) {
        long t = 0;
        for (Position p : Deployment.positions(c)) {
            t += ctx.weightBytesPerPosition(c, p);
        }
        return t;
    }

    // ------------------------------------------------------------------ Rerouting

    private void formPipelines(boolean warm) {
        ParallelConfig f = fixedShape.config;
        int need = f.pipelineStages() * f.tensorShards();
        Set<DeviceId> used = new HashSet<>();
        for (Pipe p : pipes) {
            used.addAll(p.devices);
        }
        List<DeviceId> free = new ArrayList<>();
        for (Inst in : readyInstances(true)) {
            for (int g = 0; g < gpi; g++) {
                DeviceId d = new DeviceId(in.name, g);
                if (!used.contains(d)) {
                    free.add(d);
                }
            }
        }
        int before = pipes.length;
        List<Pipe> all = new ArrayList<>(Arrays.asList(pipes));
        ParallelConfig one = ParallelConfig.of(1, f.pipelineStages(), f.tensorShards(), f.maxBatch());
        long reloaded = 0;
        double pause = 0;
        while (free.size() >= need) {
            List<DeviceId> devs = new ArrayList<>(free.subList(0, need));
            free.subList(0, need).clear();
            Pipe p = new Pipe(devs);
            all.add(p);
            if (warm) {
                p.usable = true;
            } else {
                double load = prm.engineRestartSeconds() + maxInstanceWeightBytes(one, devs) / prm.reloadBytesPerSecond();
                reloaded += totalWeightBytes(one);
                pause = Math.max(pause, load);
                at(now + load, () -> {
                    if (!p.retired && !p.broken) {
                        p.usable = true;
                        tryStart(p);
                        mark(true);
                    }
                });
            }
        }
        pipes = all.toArray(new Pipe[0]);
        config = pipes.length == 0 ? null : ParallelConfig.of(pipes.length, f.pipelineStages(), f.tensorShards(), f.maxBatch());
        if (config == null) {
            config = f;   // keeps the batch cap defined; no pipeline exists
        }
        if (pipes.length != before) {
            record(warm ? "start" : "add pipeline(s)", warm ? "none" : shapeString(before), shapeString(pipes.length),
                    0, reloaded, pause);
        }
        dispatch();
    }

    private String shapeString(int d) {
        if (d == 0 || fixedShape == null) {
            return "none";
        }
        ParallelConfig f = fixedShape.config;
        return configString(ParallelConfig.of(d, f.pipelineStages(), f.tensorShards(), f.maxBatch()));
    }

    // ------------------------------------------------------------------ Reparallelization

    private void reparDecide(String reason) {
        List<Inst> avail = readyInstances(true);
        Target t = deployTarget(avail.size(), countOnDemand(avail));
        boolean lost = false;
        for (Pipe p : pipes) {
            for (DeviceId d : p.devices) {
                if (insts.get(d.instance()).dead || insts.get(d.instance()).released) {
                    lost = true;
                }
            }
        }
        if (!lost && t != null && t.config.equals(config) && t.m1 == m1 && t.m2 == m2) {
            return;
        }
        for (Pipe p : pipes) {
            p.gen++;
            p.retired = true;
            for (Req r : p.active) {
                requeue(r, true);
            }
            p.active.clear();
        }
        if (t == null) {
            record(reason, configString(config), "none", 0, 0, 0);
            config = null;
            pipes = new Pipe[0];
            return;
        }
        packedDeploy(t, avail, false, reason);
    }

    // ------------------------------------------------------------------ output

    private void record(String reason, String from, String to, long moved, long reloaded, double pause) {
        reconfigs.add(new RunResult.Reconfiguration(now, from, to, reason, moved, reloaded, pause));
    }

    private void mark(boolean force) {
        int q = fresh.size() + retry.size();
        int running = 0;
        for (Pipe p : pipes) {
            if (p != null) {
                running += p.active.size();
            }
        }
        if (!force && (now - lastRowT < 1.0 || (q == lastQ && running == lastRun))) {
            return;
        }
        int spot = 0;
        int od = 0;
        for (Inst in : insts.values()) {
            if (!in.dead && !in.released) {
                if (in.spot) {
                    spot++;
                } else {
                    od++;
                }
            }
        }
        String c = pipes.length == 0 ? "none" : configString(config);
        timeline.add(new RunResult.TimelineRow(now, spot, od, c, q, running));
        lastRowT = now;
        lastQ = q;
        lastRun = running;
    }

    /** D2P3M4B4 form of a configuration, or "none". */
    public static String configString(ParallelConfig c) {
        return c == null ? "none" : String.format(Locale.ROOT, "D%dP%dM%dB%d", c.dataParallel(), c.pipelineStages(),
                c.tensorShards(), c.maxBatch());
    }

    static int pow2(int n) {
        int p = 1;
        while (p < n) {
            p <<= 1;
        }
        return p;
    }

    // ------------------------------------------------------------------ state holders

    private static final class Inst {
        final String name;
        final boolean spot;
        final double start;
        double end = INF;
        boolean ready;
        boolean noticed;
        /** When a noticed instance dies (INF until noticed). */
        double deathAt = INF;
        boolean dead;
        boolean released;

        Inst(String name, boolean spot, double start) {
            this.name = name;
            this.spot = spot;
            this.start = start;
        }
    }

    private static final class Req {
        final int id;
        final double arrival;
        double firstToken = Double.NaN;
        double finish = Double.NaN;
        int done;
        boolean cached;
        int restarts;

        Req(int id, double arrival) {
            this.id = id;
            this.arrival = arrival;
        }
    }

    private static final class Pipe {
        final List<DeviceId> devices;
        final Set<String> instances = new HashSet<>();
        final List<Req> active = new ArrayList<>();
        List<Req> prefill;
        int batch;
        int gen;
        boolean usable;
        boolean busy;
        boolean broken;
        boolean retired;
        boolean halting;
        boolean halted;
        int stopAfter;
        Arrangement.Action action = Arrangement.Action.MIGRATE;

        Pipe(List<DeviceId> devices) {
            this.devices = List.copyOf(devices);
            devices.forEach(d -> instances.add(d.instance()));
        }

        boolean usesAny(Set<String> names) {
            for (String n : names) {
                if (instances.contains(n)) {
                    return true;
                }
            }
            return false;
        }
    }
}
