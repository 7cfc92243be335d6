package io.spotserve.engine;

import io.spotserve.exec.Device;
import io.spotserve.exec.ShardLayout;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.Arrangement;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.Decision;
import io.spotserve.plan.Interruption;
import io.spotserve.plan.InterruptionArranger;
import io.spotserve.plan.MemoryRule;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.ParallelConfigOptimizer;
import io.spotserve.plan.ReplanGate;
import io.spotserve.plan.TargetFleet;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engine's choice of configuration (the parallelization controller of SpotServe §3.2 inside the
 * meta-context manager, DESIGN.md §2): with a cost model, Algorithm 1 picks C = (D, P, M, B) for the usable
 * instances and the measured arrival rate, its Δ sets the instance target, and the interruption arranger times
 * the migration off a noticed instance (§4.1); without one, the configured (P, M) and its smaller fallbacks, as
 * many pipelines as the devices allow. Runs on the engine thread; holds the arrival-rate window and the last
 * decision.
 */
final class ConfigPlanner {
    private static final Logger LOG = LoggerFactory.getLogger(ConfigPlanner.class);
    /** Instances kept beyond what the configuration needs, so a preemption finds a replacement at hand (paper §7: 2). */
    static final int SPARE_INSTANCES = 2;

    private final LlamaConfig config;
    private final List<ShardLayout> layouts;
    private final int maxBatch;
    /** Planning core (null: fixed parallelism): Algorithm 1 and the interruption arranger, priced by the cost model. */
    private final CostModel costModel;
    /** Algorithm 1 searching up to the instance target: its Δ drives the instance manager. */
    private final ParallelConfigOptimizer optimizer;
    /** Algorithm 1 on the instances at hand: the configuration to run until more arrive. */
    private final ParallelConfigOptimizer fleetOptimizer;
    private final InterruptionArranger arranger;
    private final Duration replanInterval;
    /** The least arrival rate Algorithm 1 plans for (req/s). */
    private final double minimumRate;
    /** Whether the instance manager follows Algorithm 1's Δ (then instances beyond its D are surplus, not spare capacity). */
    private final boolean managesFleet;
    /** Submission times within the last re-planning interval: the arrival-rate estimate α_t. */
    private final ArrayDeque<Duration> arrivals = new ArrayDeque<>();
    /** A burst re-checks the workload trigger at most this many times per re-planning interval. */
    static final int BURST_SPACING = 6;
    private Duration nextReplan;
    /** When the workload trigger last looked (the interval's tick or a burst), or null. */
    private Duration lastCheck;
    private Decision lastDecision;
    private double rateAtDecision = -1;
    /** When the planner first looked at the clock: the arrival-rate window is full one interval later. */
    private Duration watchingSince;
    /** Whether {@link #lastDecision} saw an arrival rate measured over a whole re-planning interval. */
    private boolean decisionMeasured;
    /** A membership change kept the current shape although Algorithm 1's serves more: re-checked every interval. */
    private boolean deferred;

    /**
     * Bytes the executor stores per matrix weight, exactly (its real weight size in device memory: 1.0625 for Q8_0
     * blocks, 2 for halves, 4 for floats); {@link ShardLayout#weightBytes(int, int, double)} keeps the norm vectors
     * at 4. Read at every decision: a remote executor's value follows the workers that registered.
     */
    private final java.util.function.DoubleSupplier bytesPerWeight;

    /**
     * Whether the executor runs a tensor group across instances ({@link io.spotserve.exec.Executor#tensorGroupsSpanInstances});
     * when not, a layout of M shards is deployed only on instances whose device count M divides, and the engine's own
     * Algorithm 1 searches only tensor degrees that divide the cost model's GPUs per instance.
     */
    private final boolean groupsSpanInstances;

    ConfigPlanner(ServingEngine.Builder b, LlamaConfig config, List<ShardLayout> layouts,
                  java.util.function.DoubleSupplier bytesPerWeight, boolean groupsSpanInstances) {
        this.config = config;
        this.groupsSpanInstances = groupsSpanInstances;
        this.bytesPerWeight = bytesPerWeight;
        this.layouts = layouts;
        this.maxBatch = b.maxBatch;
        this.costModel = b.costModel;
        this.replanInterval = b.replanInterval;
        this.minimumRate = b.minimumArrivalRate;
        this.managesFleet = b.targetInstances > 0;
        if (costModel == null) {
            this.optimizer = null;
            this.fleetOptimizer = null;
            this.arranger = null;
        } else {
            if (b.optimizer != null) {
                this.optimizer = b.optimizer;
                this.fleetOptimizer = b.optimizer;
            } else {
                ParallelConfigOptimizer.Builder settings = b.optimizerSettings != null ? b.optimizerSettings.copy()
                        : defaultSettings(costModel, config, maxBatch).spareInstances(SPARE_INSTANCES);
                if (!groupsSpanInstances) {
                    // a power of two M divides the instance's GPUs iff it divides their lowest set bit
                    int perInstance = Integer.lowestOneBit(costModel.hardware().gpusPerInstance());
                    settings.maxTensorParallel(Math.min(settings.maxTensorParallel(), perInstance));
                }
                this.optimizer = settings.copy().acquirableInstances(b.targetInstances).build();
                this.fleetOptimizer = settings.copy().acquirableInstances(0).spareInstances(0).build();
            }
            this.arranger = new InterruptionArranger(costModel);
        }
    }

    /** Algorithm 1 limited to the instances at hand (the configuration to run now); null without planning. */
    ParallelConfigOptimizer fleetOptimizer() {
        return fleetOptimizer;
    }

    /** Whether Algorithm 1 drives the engine (a cost model was given). */
    boolean planning() {
        return optimizer != null;
    }

    /** Records a submission (the arrival-rate window). */
    void arrived(Duration at) {
        arrivals.addLast(at);
    }

    /**
     * The configuration for the usable instances. With planning, Algorithm 1's choice (for a fleet nobody shrinks,
     * the shape of most throughput instead when Algorithm 1's leaves devices idle: {@link #idleDevicesShape}) — but
     * with {@code current} deployed, {@link ReplanGate#atMembershipChange} keeps the current (P, M, B) resized to the usable devices unless
     * it no longer fits or Algorithm 1's choice serves more and repays {@code pause} for the {@code backlog} +
     * {@code running} requests (hysteresis: a fleet moving between two sizes does not move between two shapes).
     * Without planning, or when neither fits: the first configured (P, M) — then the smaller fallbacks — for which
     * some usable instances have devices large enough for every position with B full-length KV caches; D = as many
     * pipelines as those devices allow. Fills {@code fleet} with the instances that qualify (too small ones stay
     * idle).
     */
    ParallelConfig choose(List<InstanceRecord> usable, List<TargetFleet.Instance> fleet, Duration now,
                          int backlog, int running, ParallelConfig current, Duration pause) {
        if (optimizer != null) {
            watch(now);
            ParallelConfig planned = plannedConfig(usable, fleet, now, arrivalRate(now, backlog), pause);
            if (current != null) {
                double priced = shapeChangePause(planned, pause);
                ParallelConfig chosen = ReplanGate.atMembershipChange(current, planned, fleetShrinks(usable),
                        capacity(usable), backlog, running, arrivalsOnly(now), seconds(replanInterval), priced);
                deferred = chosen != null && chosen != planned && planned != null
                        && throughput(planned) > throughput(chosen);
                if (chosen != null && chosen != planned) {
                    eligible(usable, ShardLayout.split(config, chosen.pipelineStages(), chosen.tensorShards()),
                            chosen.maxBatch(), fleet);
                    LOG.info("keeping {} (resized) over Algorithm 1's {}: the change of shape would not repay a {} s"
                            + " pause", chosen, planned, String.format(Locale.ROOT, "%.3f", priced));
                    return chosen;
                }
            }
            if (planned != null) {
                return planned;
            }
        }
        for (ShardLayout candidate : layouts) {
            int p = candidate.stages();
            int m = candidate.shards();
            ShardLayout l = ShardLayout.split(config, p, m);
            fleet.clear();
            int gpus = 0;
            gpus = eligible(usable, l, maxBatch, fleet);
            if (gpus >= p * m) {
                return ParallelConfig.of(gpus / (p * m), p, m, maxBatch);
            }
        }
        fleet.clear();
        return null;
    }

    /**
     * The engine's Algorithm 1 (paper policy) for our executor: device-memory rule, prompt / output lengths of a
     * typical request for the model's context, searching {@code acquirable} instances beyond those at hand, and
     * keeping {@code spare} instances beyond those the configuration needs.
     */
    static ParallelConfigOptimizer defaultOptimizer(CostModel costModel, LlamaConfig config, int maxBatch,
                                                    int acquirable, int spare) {
        return defaultSettings(costModel, config, maxBatch).acquirableInstances(acquirable).spareInstances(spare).build();
    }

    private static ParallelConfigOptimizer.Builder defaultSettings(CostModel costModel, LlamaConfig config,
                                                                   int maxBatch) {
        return ParallelConfigOptimizer.builder(costModel).memoryRule(MemoryRule.DEVICE_MEMORY).maxBatch(maxBatch)
                .promptTokens(typicalPromptTokens(config))
                .outputTokens(typicalOutputTokens(config));
    }

    /** Algorithm 1's choice on the usable instances at the measured arrival rate, if our devices can hold it. */
    private ParallelConfig plannedConfig(List<InstanceRecord> usable, List<TargetFleet.Instance> fleet,
                                         Duration now, double rate, Duration pause) {
        decide(usable, now, rate); // Δ for the instance manager
        Decision d = fleetOptimizer.decide(usable.size(), onDemand(usable), rate);
        if (d.choice().isEmpty()) {
            LOG.info("Algorithm 1 finds no configuration for {} instances: {}", usable.size(), d.reason());
            return null;
        }
        ParallelConfig c = d.config();
        ShardLayout l;
        try {
            l = ShardLayout.split(config, c.pipelineStages(), c.tensorShards());
        } catch (IllegalArgumentException e) {
            LOG.warn("Algorithm 1 chose {}, which this model cannot be split into ({}); using the fixed layouts", c,
                    e.getMessage());
            return null;
        }
        int gpus = eligible(usable, l, c.maxBatch(), fleet);
        int pm = c.pipelineStages() * c.tensorShards();
        if (gpus < pm) {
            LOG.warn("Algorithm 1 chose {}, but only {} devices can hold its positions; using the fixed layouts", c, gpus);
            return null;
        }
        LOG.info("Algorithm 1 at {} req/s on {} instances: {} ({})", String.format(Locale.ROOT, "%.3f", rate),
                usable.size(), c, d.reason());
        ParallelConfig sized = ParallelConfig.of(dataParallel(c, gpus), c.pipelineStages(), c.tensorShards(),
                c.maxBatch());
        ParallelConfig most = idleDevicesShape(usable, sized, pause);
        if (most == null) {
            return sized;
        }
        eligible(usable, ShardLayout.split(config, most.pipelineStages(), most.tensorShards()), most.maxBatch(), fleet);
        LOG.info("planning {} over Algorithm 1's {}: it puts idle devices to work and repays a change of shape", most,
                sized);
        return most;
    }

    /**
     * Algorithm 1's choice amended for a fleet nobody shrinks ({@link ReplanGate#takesIdleDevices}): the (P, M, B) of
     * most throughput on the usable devices (Algorithm 1's line 5, at a rate no configuration keeps up with), sized
     * to them, when it puts devices to work that {@code planned} leaves idle and serves more by what repays its pause
     * over one interval; null when Algorithm 1's choice stands (a managed fleet, whose idle devices are released,
     * always keeps it). GPT-20B on 9 or 10 instances: Algorithm 1's D2P2M8B8 holds 32 GPUs at the nominal rate (the
     * lower latency), D3P3M4B8 all 36 and 29 % more throughput; a burst then met two pipelines and changed shape in
     * the middle of it, every waiting request paying the pause.
     */
    private ParallelConfig idleDevicesShape(List<InstanceRecord> usable, ParallelConfig planned, Duration pause) {
        if (managesFleet || planned == null) {
            return null;
        }
        Decision most = fleetOptimizer.decide(usable.size(), onDemand(usable), Double.MAX_VALUE);
        if (most.choice().isEmpty()) {
            return null;
        }
        ReplanGate.Capacity capacity = capacity(usable);
        ParallelConfig sized = capacity.fit(most.config());
        return sized != null && ReplanGate.takesIdleDevices(planned, sized, capacity, seconds(replanInterval),
                shapeChangePause(sized, pause)) ? sized : null;
    }

    /** Algorithm 1's choice on the usable instances, sized to them, with {@link #idleDevicesShape}; null when none. */
    private ParallelConfig preferredOn(List<InstanceRecord> usable, Decision d, Duration pause) {
        if (d.choice().isEmpty()) {
            return null;
        }
        ParallelConfig sized = capacity(usable).fit(d.config());
        ParallelConfig most = idleDevicesShape(usable, sized, pause);
        return most != null ? most : sized;
    }

    /**
     * D for Algorithm 1's (P, M, B) on {@code gpus} eligible devices: its own D when the instance manager follows its Δ
     * (the instances beyond it are surplus and get released), else every device that can hold a position — a fleet
     * nobody shrinks costs the same idle or busy, and the extra pipelines are burst capacity (Algorithm 1's D is the
     * fewest that reach α_t).
     */
    private int dataParallel(ParallelConfig c, int gpus) {
        int all = gpus / (c.pipelineStages() * c.tensorShards());
        return managesFleet ? Math.min(c.dataParallel(), all) : all;
    }

    private static int onDemand(List<InstanceRecord> usable) {
        int n = 0;
        for (InstanceRecord r : usable) {
            if (!r.instance.type().preemptible()) {
                n++;
            }
        }
        return n;
    }

    private Decision decide(List<InstanceRecord> usable, Duration now, double rate) {
        Decision d = optimizer.decide(usable.size(), onDemand(usable), rate);
        boolean measured = rateMeasured(now);
        if (lastDecision == null || d.targetInstances() != lastDecision.targetInstances() || measured != decisionMeasured) {
            LOG.info("Algorithm 1 at {} req/s on {} instances: target {} instances ({}){}",
                    String.format(Locale.ROOT, "%.3f", rate), usable.size(), d.targetInstances(), d.reason(),
                    measured ? "" : "; the rate is not yet measured over a whole interval: no spot instance is released");
        }
        lastDecision = d;
        rateAtDecision = rate;
        decisionMeasured = measured;
        return d;
    }

    /** Starts the arrival-rate window's clock at the planner's first look. */
    private void watch(Duration now) {
        if (watchingSince == null) {
            watchingSince = now;
        }
    }

    /** Whether the arrival-rate window covers a whole re-planning interval at {@code now}. */
    private boolean rateMeasured(Duration now) {
        return watchingSince != null && now.compareTo(watchingSince.plus(replanInterval)) >= 0;
    }

    /**
     * Whether the instance manager may release idle spot instances beyond the last Δ: only with planning, and only
     * when that decision saw an arrival rate measured over a whole re-planning interval. A spot instance given back
     * cannot be asked for again (the cloud adds spot instances on its own), so a decision at start-up, before any
     * request was counted, must not shrink the fleet for good: on the paper's trace B_S the engine released 3 of its 10
     * spot instances at 0 req/s and bought 5 on-demand ones 1 s later, when the load was measured.
     */
    boolean releasesSpot() {
        return optimizer != null && lastDecision != null && decisionMeasured;
    }

    /** Fills {@code fleet} with the usable instances whose every device holds a position of {@code l} with B caches. */
    private int eligible(List<InstanceRecord> usable, ShardLayout l, int batch, List<TargetFleet.Instance> fleet) {
        fleet.clear();
        int gpus = 0;
        double weightBytes = bytesPerWeight.getAsDouble(); // once per check, not per device
        for (InstanceRecord r : usable) {
            if (!groupsSpanInstances && r.devices.size() % l.shards() != 0) {
                continue; // its devices cannot hold whole tensor groups of this layout
            }
            boolean fitsAll = true;
            for (Device d : r.devices) {
                fitsAll &= fits(l, batch, d.capacityBytes(), weightBytes);
            }
            if (fitsAll) {
                fleet.add(new TargetFleet.Instance(r.instance.id(), r.devices.size()));
                gpus += r.devices.size();
            }
        }
        return gpus;
    }

    /**
     * α_t: requests submitted during the last re-planning interval, plus the requests still waiting, per second of
     * that interval — a backlog counts as load until it is served, so a burst that has left the window but not the
     * queue does not make the planner give instances back.
     */
    private double arrivalRate(Duration now, int backlog) {
        Duration from = now.minus(replanInterval);
        while (!arrivals.isEmpty() && arrivals.peekFirst().compareTo(from) < 0) {
            arrivals.pollFirst();
        }
        return Math.max(minimumRate, (arrivals.size() + backlog) / seconds(replanInterval));
    }

    /** The arrival rate of the last interval without the backlog (the gate's α for the queue that follows). */
    private double arrivalsOnly(Duration now) {
        arrivalRate(now, 0); // drops the submissions older than the interval
        return Math.max(minimumRate, arrivals.size() / seconds(replanInterval));
    }

    /**
     * Every re-planning interval, and early in a burst ({@link #burst}): the reason to re-plan on the arrival rate,
     * or null. Its Δ always updates the
     * instance target; whether the configuration changes is {@link ReplanGate#onRate}'s rule (the rate moved by more
     * than a quarter since the last decision, Algorithm 1 prefers another (P, M, B), and either a managed fleet
     * shrinks with the load or the current configuration cannot keep up and the change repays its pause for the
     * requests it delays). A change of shape a membership change deferred (requests were waiting) is re-checked
     * with {@link ReplanGate#atMembershipChange}'s rule every interval, whatever the rate did.
     */
    String replanReason(List<InstanceRecord> usable, ParallelConfig current, Duration now, int backlog, int running,
                        Duration pause) {
        if (optimizer == null) {
            return null;
        }
        watch(now);
        if (nextReplan == null) {
            nextReplan = now.plus(replanInterval);
            return null;
        }
        if (now.compareTo(nextReplan) < 0 && !burst(current, now, backlog)) {
            return null;
        }
        lastCheck = now;
        nextReplan = now.plus(replanInterval);
        double rate = arrivalRate(now, backlog);
        if (deferred && current != null) {
            // a change of shape a membership change refused while requests waited: made once it repays them
            ParallelConfig preferred = preferredOn(usable, fleetOptimizer.decide(usable.size(), onDemand(usable),
                    rate), pause);
            ParallelConfig chosen = ReplanGate.atMembershipChange(current, preferred, fleetShrinks(usable),
                    capacity(usable), backlog, running, arrivalsOnly(now), seconds(replanInterval),
                    shapeChangePause(preferred, pause));
            deferred = preferred != null && chosen != preferred && throughput(preferred) > throughput(chosen);
            if (preferred != null && chosen == preferred && !ReplanGate.sameShape(preferred, current)) {
                decide(usable, now, rate);
                return String.format(Locale.ROOT, "deferred change of shape to %s at %.3f req/s", preferred, rate);
            }
        }
        if (!ReplanGate.rateMoved(rate, rateAtDecision)) {
            if (!decisionMeasured && rateMeasured(now)) {
                // the first rate of a whole interval: its Δ may release spot instances (releasesSpot), whatever it did
                decide(usable, now, rate);
            }
            return null;
        }
        decide(usable, now, rate);
        Decision d = fleetOptimizer.decide(usable.size(), onDemand(usable), rate);
        ParallelConfig preferred = d.choice().isEmpty() ? null : d.config();
        ParallelConfig most = preferred == null ? null : idleDevicesShape(usable, capacity(usable).fit(preferred), pause);
        if (most != null) {
            preferred = most;
        }
        ReplanGate.Outcome o = ReplanGate.onRate(rate, current, preferred, fleetShrinks(usable), capacity(usable),
                backlog, running, arrivalsOnly(now), seconds(replanInterval), shapeChangePause(preferred, pause));
        if (!o.replans()) {
            LOG.debug("not re-planning to {} at {} req/s from {}", preferred, rate, current);
            return null;
        }
        String why = String.format(Locale.ROOT, "arrival rate %.3f req/s", rate);
        return o == ReplanGate.Outcome.SHRINK ? why + " (fewer GPUs: Δ releases the rest)" : why;
    }

    /**
     * The pause a change to {@code next}'s (P, M) is priced with: the measured reconfiguration time, but never less
     * than moving the new positions' weights onto an instance over the network (the instance's GPUs × the model's
     * weights / (P·M), by the cost model's migration time). Before any migration was measured the estimate is 0 (a
     * warm start pauses nothing), and a change of shape then looked free: GPT-20B B_S re-planned 30 s into a burst
     * and stopped every pipeline for 4.9 s.
     */
    private double shapeChangePause(ParallelConfig next, Duration measured) {
        double m = seconds(measured);
        if (next == null) {
            return m;
        }
        int pm = next.pipelineStages() * next.tensorShards();
        int perInstance = Math.min(costModel.hardware().gpusPerInstance(), pm);
        long bytes = costModel.shape().weightBytes() / pm * perInstance;
        return Math.max(m, costModel.migrationSeconds(bytes));
    }

    /** Whether the instance manager follows Δ and Δ wants fewer instances than are usable (the fleet shrinks). */
    private boolean fleetShrinks(List<InstanceRecord> usable) {
        return managesFleet && lastDecision != null && lastDecision.targetInstances() < usable.size();
    }

    /**
     * How many pipelines of {@code shape}'s (P, M, B) the usable instances hold (by the engine's rule for D), 0 when
     * not one fits.
     */
    int pipelinesOn(List<InstanceRecord> usable, ParallelConfig shape) {
        ParallelConfig fit = capacity(usable).fit(shape);
        return fit == null ? 0 : fit.dataParallel();
    }

    /** The gate's view of the usable instances: a (P, M, B) sized to the devices that hold it, and its φ. */
    private ReplanGate.Capacity capacity(List<InstanceRecord> usable) {
        return new ReplanGate.Capacity() {
            @Override
            public ParallelConfig fit(ParallelConfig shape) {
                int gpus;
                try {
                    gpus = eligible(usable, ShardLayout.split(config, shape.pipelineStages(), shape.tensorShards()),
                            shape.maxBatch(), new ArrayList<>());
                } catch (IllegalArgumentException e) {
                    return null;
                }
                if (gpus < shape.pipelineStages() * shape.tensorShards()) {
                    return null;
                }
                return ParallelConfig.of(dataParallel(shape, gpus), shape.pipelineStages(), shape.tensorShards(),
                        shape.maxBatch());
            }

            @Override
            public double throughput(ParallelConfig c) {
                return ConfigPlanner.this.throughput(c);
            }
        };
    }

    /** The prompt length the planner prices a typical request with: the paper's 512, or half the context if shorter. */
    private static int typicalPromptTokens(LlamaConfig config) {
        return Math.min(512, Math.max(1, config.seqLen() / 2));
    }

    /** The output length of a typical request: the paper's 128, or a quarter of the context if shorter. */
    private static int typicalOutputTokens(LlamaConfig config) {
        return Math.min(128, Math.max(1, config.seqLen() / 4));
    }

    /** φ(C) in requests per second with the best micro-batch counts, 0 if the cost model cannot price C. */
    private double throughput(ParallelConfig c) {
        int prompt = typicalPromptTokens(config);
        int output = typicalOutputTokens(config);
        double best = 0;
        for (int m1 = 1; m1 <= c.maxBatch(); m1 *= 2) {
            for (int m2 = 1; m2 <= c.maxBatch(); m2 *= 2) {
                try {
                    best = Math.max(best, costModel.throughput(c, m1, m2, prompt, output));
                } catch (IllegalArgumentException e) {
                    // this micro-batching is outside the profile
                }
            }
        }
        return best;
    }

    /**
     * Whether a burst calls for the workload trigger before the interval's tick: more requests wait than one round
     * of every deployed batch holds (D·B), and a {@link #BURST_SPACING}th of the interval has passed since the last
     * look. Bursts of a CV-6 arrival process last seconds; a trigger that looks only every 30 s meets most of them
     * after they have drained. A change of B alone moves nothing (a free reconfiguration under {@code MIGRATE}); any
     * change still passes {@link ReplanGate#onRate} with the pause it costs.
     */
    private boolean burst(ParallelConfig current, Duration now, int backlog) {
        return current != null && backlog > current.dataParallel() * current.maxBatch()
                && (lastCheck == null || now.compareTo(lastCheck.plus(replanInterval.dividedBy(BURST_SPACING))) >= 0);
    }

    /** When the engine must wake up to re-plan ({@code busy}: requests queued or running), or null. */
    Duration nextReplan(boolean busy) {
        // re-plan while there is load, or until a decision has seen it gone (then an idle engine sleeps), and at least
        // once on a whole interval's rate (so an idle fleet's surplus spot instances go)
        if (optimizer != null && nextReplan != null && (busy || !arrivals.isEmpty() || rateAtDecision > 0
                || !decisionMeasured)) {
            return nextReplan;
        }
        return null;
    }

    /** Instances the fleet should have: {@code target}, or with planning the last Δ capped by it; -1 before any decision. */
    int desiredInstances(int target) {
        if (optimizer == null) {
            return target;
        }
        return lastDecision == null ? -1 : Math.min(target, lastDecision.targetInstances());
    }

    /**
     * The interruption arranger's decision for a noticed instance: when to leave it after S_t steps, the latest time
     * to leave it (deadline minus the migration lead), and what its batches do.
     */
    record Arranged(Duration at, Duration latest, Arrangement.Action action, String reason) {
    }

    /**
     * SpotServe §4.1: when to migrate off a noticed instance, and how. Without planning, {@code latest} (deadline
     * minus the migration lead) and MIGRATE; with it, the interruption arranger's S_t (the most decode steps of the
     * doomed batches that still fit the grace period minus the migration time; the arranger prices steps with the
     * cost model, our measured step time paces them), never later than {@code latest}, and its action: MIGRATE the
     * caches after S_t steps, REROUTE the requests now without their caches, or let the batches FINISH first.
     */
    Arranged arrange(InstanceEvent.PreemptionNotice n, ParallelConfig current, int remaining, Duration now,
                     Duration lead, Duration latest, Duration iteration) {
        if (arranger == null) {
            return new Arranged(latest, latest, Arrangement.Action.MIGRATE, "no planning core: leave just in time");
        }
        try {
            double grace = Math.max(0, seconds(n.deadline().minus(now)));
            // the arranger prices steps with the cost model (M2 = 1); our measured step time paces them
            Interruption i = Interruption.atPreemption(arranger, current, 1, remaining, grace, seconds(lead),
                    seconds(iteration));
            LOG.info("interruption arranger for {}: {} ({})", n.instanceId(), i.action(), i.reason());
            Duration at = i.leaveAfterSeconds() < i.latestSeconds() || i.action() == Arrangement.Action.REROUTE
                    ? now.plusNanos((long) (i.leaveAfterSeconds() * 1e9)) : latest;
            return new Arranged(at.compareTo(latest) < 0 ? at : latest, latest, i.action(), i.reason());
        } catch (IllegalArgumentException e) {
            LOG.debug("the cost model cannot price {}: {}; pacing by the deadline only", current, e.getMessage());
            return new Arranged(latest, latest, Arrangement.Action.MIGRATE, "unpriced: " + e.getMessage());
        }
    }

    /**
     * SpotServe §3.4 at an acquisition notice: the running batches (at most {@code remaining} tokens to go) keep
     * decoding for S_t steps, the fewest that cover the newcomer's initialization T⁺ (the arranger's
     * {@code onAcquisition}), and the newcomer joins then: MIGRATE their caches at that point, FINISH (the batches are
     * done before it is ready; it joins on arrival) or REROUTE (moving the caches takes at least as long as those
     * steps: it joins on arrival and the requests of changed pipelines recompute). Null without a planning core or
     * when the cost model cannot price the current configuration: the newcomer joins on arrival.
     */
    Arranged arrangeJoin(InstanceEvent.Launching l, ParallelConfig current, int remaining, Duration now, Duration lead,
                         Duration iteration) {
        if (arranger == null) {
            return null;
        }
        try {
            double startup = Math.max(0, seconds(l.readyAt().minus(now)));
            Interruption i = Interruption.atAcquisition(arranger, current, 1, remaining, startup, seconds(lead),
                    seconds(iteration));
            Duration at = now.plusNanos((long) (i.leaveAfterSeconds() * 1e9));
            LOG.info("interruption arranger for newcomer {}: {} ({})", l.instanceId(), i.action(), i.reason());
            return new Arranged(at, at, i.action(), i.reason());
        } catch (IllegalArgumentException e) {
            LOG.debug("the cost model cannot price {}: {}; the newcomer joins on arrival", current, e.getMessage());
            return null;
        }
    }

    /**
     * Most positions (prompt + output) one request may use, which the memory model reserves KV cache for: the
     * model's seq_len up to {@value #MAX_CONTEXT_TOKENS}. Real models declare contexts (Llama 3.1: 131,072) far
     * beyond what a serving instance allocates per sequence; KV caches are sized by each request, and requests
     * longer than this are rejected at submission.
     */
    static int contextTokens(LlamaConfig config) {
        return Math.min(config.seqLen(), MAX_CONTEXT_TOKENS);
    }

    static final int MAX_CONTEXT_TOKENS = 4096;

    /**
     * Whether each position's weights ({@code bytesPerWeight} per matrix weight) plus KV cache for B full-length
     * sequences fit {@code capacity} bytes.
     */
    private boolean fits(ShardLayout layout, int batch, long capacity, double bytesPerWeight) {
        for (int st = 0; st < layout.stages(); st++) {
            for (int m = 0; m < layout.shards(); m++) {
                long need = layout.weightBytes(st, m, bytesPerWeight)
                        + (long) batch * contextTokens(config) * layout.kvBytesPerPosition(st, m);
                if (need > capacity) {
                    return false;
                }
            }
        }
        return true;
    }

    /** {@code d} in seconds, without the overflow of {@code toNanos()} for durations beyond 292 years. */
    private static double seconds(Duration d) {
        try {
            return d.toNanos() / 1e9;
        } catch (ArithmeticException e) {
            return d.getSeconds() + d.getNano() / 1e9;
        }
    }
}
