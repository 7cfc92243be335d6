package io.spotserve.engine;

import io.spotserve.clock.EngineClock;
import io.spotserve.clock.DataMove;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ShardLayout;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.Arrangement;
import io.spotserve.plan.ContextUnit;
import io.spotserve.plan.Deployment;
import io.spotserve.plan.DeviceId;
import io.spotserve.plan.DeviceMapping;
import io.spotserve.plan.InflightBatch;
import io.spotserve.plan.MigrationInfeasibleException;
import io.spotserve.plan.ModelContext;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.Position;
import io.spotserve.plan.ReconfigurationPlanner;
import io.spotserve.plan.TargetFleet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The reconfiguration step of the meta-context manager (SpotServe §3, DESIGN.md §2): after a membership change it
 * runs the parallelization controller ({@link ConfigPlanner}: Algorithm 1 with a cost model, else the configured
 * layouts), the device mapper (most context stays in place), the interruption arranger (when to leave a noticed
 * instance), the migration planner (the order of the units; both from the {@link ReconfigurationPlanner}) and the migration itself
 * ({@link ContextMigration}, driven unit by unit from here), then resumes serving on the new pipelines. It owns the
 * pipelines of the current configuration. Owned by the engine thread.
 */
final class Reconfigurator {
    private static final Logger LOG = LoggerFactory.getLogger(Reconfigurator.class);
    /** A pipeline a migration leaves as it is fails its requests on a step error but stays (the migration holds it). */

    private final LlamaConfig config;
    private final EngineClock clock;
    private final Executor executor;
    private final SliceMover mover;
    private final KvParking parking;
    private final ReconfigurationMode mode;
    private final ConfigPlanner planner;
    /** Device mapping and migration order (SpotServe's Kuhn-Munkres one unless the host gave its own). */
    private final ReconfigurationPlanner reconfigurationPlanner;
    private final MetricsRecorder metrics;
    private final int maxBatch;
    private final int maxBatchTokens;
    private final InstanceManager instances;
    private final RequestManager requests;
    private final Inbox inbox;
    private final LostDevices losses;
    private final MigrationFallback fallback;
    /** The baselines' pipeline start-up around their weight reads; null: reads pause the engine. */
    private final PipelineStartup startup;

    private final List<PipelineSlot> slots = new ArrayList<>();
    private final List<String> changeReasons = new ArrayList<>();
    /** The kinds of {@link #changeReasons}, for the record. */
    private final EnumSet<Reconfiguration.Trigger> changeTriggers = EnumSet.noneOf(Reconfiguration.Trigger.class);
    private boolean membershipChanged;
    /** False for the next reconfiguration after an acquisition the arranger rerouted. */
    private boolean carryCaches = true;
    /** The configuration before the first membership change not yet handled by {@link #reconfigure}. */
    private String pendingFrom;
    /** The configuration the slots implement (slot i = pipeline i), or null when there are none. */
    private ParallelConfig current;
    private int nextSlotId;
    /** When the running reconfiguration started copying (untouched pipelines decode from then on). */
    private Duration migrationStart = Duration.ZERO;
    /** Engine-clock duration of a reconfiguration, smoothed: the lead time a preemption notice needs. */
    private Duration migrationEstimate = Duration.ZERO;
    /**
     * What a change of configuration costs the pipelines it builds, smoothed over reconfigurations: the pause, plus,
     * with the baselines' {@link PipelineStartup}, the wait until the slowest new pipeline has restarted and read its
     * weights (their reads are off the engine's clock, so the pause alone is near zero there). The planner prices a
     * change of shape with it; the lead before a deadline uses {@link #migrationEstimate}.
     */
    private Duration changeEstimate = Duration.ZERO;
    /** Bytes moved per second of pause, smoothed over the migrations that moved any (0: none yet). */
    private double migrationBytesPerSecond;
    /** Why no configuration fits the usable instances (said once at WARN), or null while one does. */
    private String noFit;
    private volatile String description = "[]";

    Reconfigurator(ServingEngine.Builder b, LlamaConfig config, EngineClock clock, Executor executor, SliceMover mover,
                   KvParking parking, ConfigPlanner planner, MetricsRecorder metrics, InstanceManager instances,
                   RequestManager requests, Inbox inbox, LostDevices losses) {
        this.config = config;
        this.clock = clock;
        this.executor = executor;
        this.mover = mover;
        this.parking = parking;
        this.mode = b.reconfigurationMode;
        this.planner = planner;
        this.reconfigurationPlanner = b.reconfigurationPlanner;
        this.metrics = metrics;
        this.maxBatch = b.maxBatch;
        this.maxBatchTokens = b.maxBatchTokens;
        this.instances = instances;
        this.requests = requests;
        this.inbox = inbox;
        this.losses = losses;
        this.startup = PipelineStartup.of(b);
        this.fallback = new MigrationFallback(executor, mover, config, b.maxBatchTokens, losses);
    }

    // ------------------------------------------------------------------ views

    List<PipelineSlot> slots() {
        return slots;
    }

    /** Any thread: the pipelines of the current configuration, as text. */
    String description() {
        return description;
    }

    /** Requests one pipeline runs at once: B of the current configuration. */
    int batchCap() {
        return current != null ? current.maxBatch() : maxBatch;
    }

    /** Why requests cannot run now (no configuration fits the usable instances), or null. */
    String noFit() {
        return slots.isEmpty() ? noFit : null;
    }

    /**
     * Whether a pipeline takes new requests: intact, started, and on no instance under preemption notice — or, while
     * leaving the noticed instance would cost a pipeline, on one still in its grace period before the arranged time.
     */
    boolean admits(PipelineSlot s) {
        return !s.broken() && (!doomed(s) || leavingLosesPipelines() && instances.inGrace(s.instances))
                && s.readyAt.compareTo(clock.now()) <= 0;
    }

    /**
     * Whether the usable instances hold fewer pipelines of the current configuration than run now: leaving a noticed
     * instance then costs serving capacity, so its pipeline keeps serving through the grace period (it admits new
     * requests, and a FINISH arrangement does not leave early while requests wait).
     */
    boolean leavingLosesPipelines() {
        return current != null && planner.pipelinesOn(instances.usable(), current) < current.dataParallel();
    }

    private boolean doomed(PipelineSlot s) {
        for (String id : s.instances) {
            InstanceRecord r = instances.get(id);
            if (r == null || !r.usable()) {
                return true;
            }
        }
        return false;
    }

    /** Whether a configuration is deployed. */
    boolean configured() {
        return current != null;
    }

    /** Whether any pipeline, intact or broken, has a position on the instance. */
    boolean holdsPositions(String instanceId) {
        for (PipelineSlot s : slots) {
            if (s.instances.contains(instanceId)) {
                return true;
            }
        }
        return false;
    }

    /** Whether an intact pipeline has a position on the instance. */
    boolean hosts(String instanceId) {
        for (PipelineSlot s : slots) {
            if (s.instances.contains(instanceId) && !s.broken()) {
                return true;
            }
        }
        return false;
    }

    String describe() {
        List<String> out = new ArrayList<>();
        for (PipelineSlot s : slots) {
            out.add(s.describe());
        }
        return out.toString();
    }

    // ------------------------------------------------------------------ membership changes

    void changed(Reconfiguration.Trigger trigger, String reason) {
        if (pendingFrom == null) {
            pendingFrom = describe();
        }
        membershipChanged = true;
        changeReasons.add(reason);
        changeTriggers.add(trigger);
    }

    boolean pending() {
        return membershipChanged;
    }

    /** The planner's periodic re-planning gate (arrival rate, Δ): records a change when it says so. */
    void replanGate(int queued, int running) {
        String why = planner.replanReason(instances.usable(), current, clock.now(), queued, running, changeEstimate);
        if (why != null) {
            changed(Reconfiguration.Trigger.REPLAN, why);
        }
    }

    /**
     * SpotServe §4.1, just-in-time arrangement: when to leave a noticed instance so the doomed pipelines keep decoding
     * while the grace period still leaves room for the migration, and what happens to their batches (the
     * interruption arranger's action); null when no intact pipeline is on the instance (re-plan now).
     */
    ConfigPlanner.Arranged arrange(InstanceEvent.PreemptionNotice n, Duration stepEstimate) {
        if (!hosts(n.instanceId())) {
            return null;
        }
        Duration now = clock.now();
        Duration lead = lead(n.instanceId(), stepEstimate);
        Duration at = n.deadline().minus(lead);
        if (current == null) {
            return new ConfigPlanner.Arranged(at, at, Arrangement.Action.MIGRATE, "no configuration yet");
        }
        return planner.arrange(n, current, remaining(n.instanceId()), now, lead, at, stepEstimate);
    }

    /**
     * How long before a deadline the pipelines on a noticed instance must stop: two migrations and two steps at the
     * current estimates (a step in flight always completes, and the estimates may still be low).
     */
    Duration lead(Duration stepEstimate) {
        return lead(migrationEstimate, stepEstimate);
    }

    private static Duration lead(Duration migration, Duration step) {
        return migration.multipliedBy(2).plus(step.multipliedBy(2));
    }

    /**
     * {@link #lead} for leaving {@code instanceId}. When the usable instances hold fewer pipelines of the current
     * configuration (leaving it drops its pipelines, the shape is kept), the migration is the KV caches of their
     * requests only: priced at the rate measured over past migrations ({@link #migrationBytesPerSecond}: bytes moved
     * over their pause), when that is shorter than the estimate of past migrations (which moved weights too).
     * LLaMA-30B B_S: 3.4 GB of caches in 0.5 s, where the estimate of ≈ 5.4 s made the last noticed host leave 11 s
     * before its deadline, one pipeline short in a backlog.
     */
    Duration lead(String instanceId, Duration stepEstimate) {
        Duration migration = migrationEstimate;
        if (leavingLosesPipelines()) {
            long kv = 0;
            for (PipelineSlot s : slots) {
                if (s.instances.contains(instanceId) && !s.broken()) {
                    for (LiveRequest q : s.active) {
                        kv += (long) s.pipeline.length(q.id) * config.kvBytesPerPosition();
                    }
                }
            }
            if (migrationBytesPerSecond > 0) {
                Duration caches = Duration.ofNanos((long) (kv * 1e9 / migrationBytesPerSecond));
                if (caches.compareTo(migration) < 0) {
                    migration = caches;
                }
            }
        }
        return lead(migration, stepEstimate);
    }

    /**
     * SpotServe §3.4 at an acquisition notice: how the running batches meet the newcomer (see
     * {@link ConfigPlanner#arrangeJoin}); null when nothing runs (it simply joins on arrival).
     */
    ConfigPlanner.Arranged arrangeJoin(InstanceEvent.Launching l, Duration stepEstimate) {
        int remaining = remaining(null);
        if (current == null || remaining == 0) {
            return null;
        }
        return planner.arrangeJoin(l, current, remaining, clock.now(), lead(stepEstimate), stepEstimate);
    }

    /**
     * The arranger rerouted an acquisition: the next reconfiguration does not carry KV caches (the requests of the
     * pipelines it changes recompute on the new ones); weights still move as the device mapper says.
     */
    void rerouteAtNextChange() {
        carryCaches = false;
    }

    /**
     * The most output tokens a request on a pipeline of the instance still has to generate; with a null id, on any
     * pipeline.
     */
    private int remaining(String instanceId) {
        int remaining = 0;
        for (PipelineSlot s : slots) {
            if (instanceId == null || s.instances.contains(instanceId)) {
                for (LiveRequest q : s.active) {
                    remaining = Math.max(remaining, q.request.maxNewTokens() - q.generatedCount);
                }
            }
        }
        return remaining;
    }

    /** Whether a pipeline on the instance still runs requests (a FINISH arrangement waits for them). */
    boolean busyOn(String instanceId) {
        for (PipelineSlot s : slots) {
            if (s.instances.contains(instanceId) && !s.active.isEmpty()) {
                return true;
            }
        }
        return false;
    }

    /**
     * The arranger's REROUTE: the requests of the pipelines on the instance leave them now without their KV caches
     * (they recompute elsewhere from their committed tokens); the pipelines take no more requests.
     */
    void reroute(String instanceId) {
        for (PipelineSlot s : slots) {
            if (s.instances.contains(instanceId) && !s.broken() && !s.active.isEmpty()) {
                requests.requeue(s);
            }
        }
    }

    /**
     * The instance is gone: every pipeline with a position on it is broken. Its requests lose their KV cache (it is
     * incomplete now) and go back to the front of the queue; the weights on the lost positions are freed, while the
     * surviving positions keep theirs for the next reconfiguration to reuse.
     */
    void loseInstance(String instanceId, Reconfiguration.Trigger trigger) {
        for (PipelineSlot s : slots) {
            if (!s.instances.contains(instanceId)) {
                continue;
            }
            requests.requeue(s);
            ShardLayout l = s.pipeline.layout();
            for (int st = 0; st < l.stages(); st++) {
                for (int m = 0; m < l.shards(); m++) {
                    if (s.pipeline.device(st, m).id().instance().equals(instanceId)) {
                        s.lost.add(st * l.shards() + m); // may be marked already by a migration that saw it die
                        releaseLost(s, st, m);
                    }
                }
            }
            changed(trigger, "lost a position of " + s.describe());
        }
    }

    /** Frees the weights of a lost position; a device that died with its worker has nothing left to free. */
    private static void releaseLost(PipelineSlot s, int stage, int shard) {
        try {
            for (ContextSlice w : s.pipeline.layout().weightSlices(stage, shard)) {
                s.pipeline.releaseSlice(stage, shard, w);
            }
        } catch (RuntimeException e) {
            LOG.debug("lost position (stage {}, shard {}) of {} not released: {}", stage, shard, s.describe(),
                    e.toString());
        }
    }

    /** Takes a pipeline out of service (step failure, shutdown): requests re-queued, storage freed. */
    void retire(PipelineSlot s) {
        changed(Reconfiguration.Trigger.RETIRED, "retired " + s.describe());
        requests.requeue(s);
        slots.remove(s);
        s.close();
        if (slots.isEmpty()) {
            current = null;
        }
    }

    /** Shutdown: every pipeline retired (their requests failed already), the description emptied. */
    void closeAll() {
        for (PipelineSlot s : new ArrayList<>(slots)) {
            retire(s);
        }
        description = "[]";
    }

    /**
     * No configuration fits the usable instances, but pipelines on instances whose notice is due still hold requests:
     * park their KV caches in host memory and take those pipelines out of service, so the requests resume with their
     * caches as soon as instances are available again (beyond the paper, which recomputes them).
     */
    private void parkDoomed() {
        for (PipelineSlot s : new ArrayList<>(slots)) {
            boolean due = false;
            for (String id : s.instances) {
                InstanceRecord r = instances.get(id);
                due |= r != null && r.deadline != null && r.arrangeAt == null; // a released one keeps serving
            }
            if (!due || s.broken() || s.active.isEmpty()) {
                continue;
            }
            int parked = 0;
            try {
                for (LiveRequest r : s.active) {
                    if (parking.park(r, s)) {
                        parked++;
                    }
                }
            } catch (RuntimeException e) {
                DeviceLostException lost = LostDevices.find(e);
                if (lost == null) {
                    throw e;
                }
                requests.deviceLost(s, lost, "parking KV caches"); // the parked ones resume with them, the rest recompute
            }
            LOG.info("no configuration fits the usable instances: {} of {} requests on doomed {} parked their KV caches"
                    + " in host memory", parked, s.active.size(), s.describe());
            retire(s);
        }
    }

    // ------------------------------------------------------------------ reconfiguration

    /**
     * Re-plans after a membership change (SpotServe §3): configuration for the usable devices, device mapping,
     * migration order, then the migration itself. Nothing happens when the current pipelines are intact and still
     * the best choice, or when no configuration fits (doomed pipelines then serve until their deadline). No step may
     * be in flight.
     */
    void reconfigure() {
        membershipChanged = false;
        String from = pendingFrom != null ? pendingFrom : describe();
        pendingFrom = null;
        Map<DeviceId, Device> all = instances.devices();
        List<InstanceRecord> usable = instances.usable();
        List<TargetFleet.Instance> fleet = new ArrayList<>();
        ParallelConfig target = planner.choose(usable, fleet, clock.now(), requests.queued(),
                PipelineSlot.running(slots), current, changeEstimate);
        if (target == null) {
            parkDoomed();
            noFit(usable);
        } else {
            noFit = null;
        }
        if (target == null || intact(target)) {
            if (target == null && !slots.isEmpty()) {
                LOG.info("no configuration fits the {} usable instances; current pipelines {} stay as they are",
                        usable.size(), describe());
            }
            pendingFrom = from; // nothing changed: the reasons wait for the change that follows
            return;
        }
        awaitStepsEnded();
        Duration started = clock.now();
        int interrupted = requests.takeInterrupted();
        DeploymentSnapshot old = snapshot(target);
        // the executor's stored size per weight now (a remote executor's follows its live workers), as the
        // migration counts it
        ModelContext bytes = ModelContext.of("model", config, executor.storedBytesPerWeightExact());
        DeviceMapping mapping = reconfigurationPlanner.map(bytes, old.deployment(), new TargetFleet(target, fleet));
        long minCapacity = Long.MAX_VALUE;
        for (TargetFleet.Instance i : fleet) {
            minCapacity = Math.min(minCapacity, instances.get(i.name()).instance.type().memoryPerGpuBytes());
        }
        List<ContextUnit> order = migrationOrder(mapping, minCapacity);
        List<PipelineSlot> before = new ArrayList<>(slots);
        List<LiveRequest> inFlight = new ArrayList<>();
        for (PipelineSlot s : before) {
            inFlight.addAll(s.active);
        }
        clock.migrationStarted();
        migrationStart = clock.now();
        if (startup != null) {
            startup.begin();
        }
        ContextMigration migration = new ContextMigration(executor, mover, config, before, mapping, old.requests(), all,
                parking, mode, carryCaches)
                // batches bounded only where the pipelines left as they are decode between units
                .directBatchBytes(clock.stepsDuringMigration() ? ContextMigration.DIRECT_BATCH_BYTES : Long.MAX_VALUE);
        carryCaches = true;
        ContextMigration.Result result;
        try {
            result = migrate(migration, order);
        } catch (RuntimeException e) {
            migration.abort();
            result = fallback.recover(e, mapping, before, inFlight, all, requests::isQueued, () -> nextSlotId++);
        }
        Duration startupWait = startup == null ? Duration.ZERO
                : startup.start(result.slots(), migration.unchanged(), clock);
        slots.clear();
        slots.addAll(result.slots());
        current = slots.isEmpty() ? null : target;
        requests.requeue(result.dropped(), result.untouched());
        interrupted += requests.takeInterrupted();
        metrics.migrated(result.resumed(), result.bytesMoved());
        String to = describe();
        description = to;
        leftNoticed(before);
        String reason = String.join(", ", changeReasons);
        changeReasons.clear();
        Set<Reconfiguration.Trigger> triggers = Set.copyOf(changeTriggers);
        changeTriggers.clear();
        Duration pause = clock.now().minus(started);
        migrationEstimate = RequestManager.smooth(migrationEstimate, pause);
        if (result.bytesMoved() > 0 && pause.toNanos() > 0) {
            double rate = result.bytesMoved() * 1e9 / pause.toNanos();
            migrationBytesPerSecond = migrationBytesPerSecond == 0 ? rate : (3 * migrationBytesPerSecond + rate) / 4;
        }
        changeEstimate = RequestManager.smooth(changeEstimate, pause.plus(startupWait));
        int parked = parking.takeParked();
        Reconfiguration rec = new Reconfiguration(started, reason, triggers, from, to, current, interrupted,
                result.resumed(), parked, result.bytesMoved(), result.bytesKept(), result.bytesReloaded(), mapping.bytesMoved(),
                mapping.bytesReloaded(), pause);
        metrics.reconfigured(rec);
        LOG.info("reconfigured {} -> {} as {} ({}): {} requests resumed with their cache, {} parked it, {} recompute;"
                        + " bytes moved {} (mapper: {}), kept in place {}, reloaded {} (mapper: {})", from, to, target,
                reason, result.resumed(), parked, interrupted, result.bytesMoved(), mapping.bytesMoved(),
                result.bytesKept(), result.bytesReloaded(), mapping.bytesReloaded());
    }

    /**
     * A change that takes pipelines off noticed instances is one the notice forced, whatever else set it off (on-demand
     * instances joining while a noticed one finishes its batches, the planner re-planning without it): it says so
     * with {@link Reconfiguration.Trigger#NOTICE} and a reason per instance left, unless a notice reason names it
     * already.
     */
    private void leftNoticed(List<PipelineSlot> before) {
        Set<String> after = new HashSet<>();
        for (PipelineSlot s : slots) {
            after.addAll(s.instances);
        }
        Set<String> left = new LinkedHashSet<>(); // in pipeline order
        for (PipelineSlot s : before) {
            for (String id : s.instances) {
                InstanceRecord r = instances.get(id);
                if (!after.contains(id) && r != null && r.deadline != null) {
                    left.add(id);
                }
            }
        }
        for (String id : left) {
            String prefix = "notice " + id;
            if (changeReasons.stream().noneMatch(x -> x.equals(prefix) || x.startsWith(prefix + ":"))) {
                changeReasons.add("left noticed " + id);
            }
            changeTriggers.add(Reconfiguration.Trigger.NOTICE);
        }
    }

    /** Says once, at WARN, that the usable instances cannot hold the model; requests then fail at their deadline. */
    private void noFit(List<InstanceRecord> usable) {
        if (usable.isEmpty()) {
            noFit = null; // no instance at all: requests simply wait (and expire) for one
            return;
        }
        if (!slots.isEmpty()) {
            return;
        }
        long largest = 0;
        int gpus = 0;
        for (InstanceRecord r : usable) {
            largest = Math.max(largest, r.instance.type().memoryPerGpuBytes());
            gpus += r.instance.type().gpus();
        }
        String why = "no configuration of the " + usable.size() + " usable instances (" + gpus
                + " devices, largest " + largest + " bytes) holds the model's weights and KV caches";
        if (noFit == null) {
            LOG.warn("{}; requests wait for larger instances and fail when their timeout elapses", why);
        }
        noFit = why;
    }

    /** Drives the migration unit by unit: copies charged to the clock, deaths noticed, untouched pipelines decoding. */
    private ContextMigration.Result migrate(ContextMigration migration, List<ContextUnit> order) {
        afterUnit(migration, migration.begin(order, maxBatchTokens, () -> nextSlotId++));
        while (migration.hasNextUnit()) {
            afterUnit(migration, migration.nextUnit());
        }
        return migration.finish();
    }

    /**
     * Between two migrated units: charge the copies to the clock, tell the migration which instances are gone by now
     * (events are only looked at here; they are applied after the migration, like any other), and let the pipelines
     * the migration leaves as they are decode meanwhile when the clock allows it.
     */
    private void afterUnit(ContextMigration migration, List<DataMove> moves) {
        clock.migrated(startup == null ? moves : startup.withoutReads(moves)); // built pipelines wait for their reads
        Duration now = clock.now();
        for (DeviceLostException e : migration.takeLosses()) {
            losses.report(e); // a source that died with staged slices: the engine treats it as gone
        }
        Set<String> dead = new HashSet<>(instances.goneBy(now));
        dead.addAll(inbox.goneBy(now));
        dead.addAll(losses.pendingInstances()); // a step that kept decoding meanwhile found a worker dead
        migration.instancesGone(dead);
        if (clock.stepsDuringMigration()) {
            keepDecoding(migration.unchanged(), dead, now);
        }
    }

    /**
     * Pipelines the reconfiguration leaves as they are run the steps that fit up to {@code now} (each step starting
     * when the previous one ended, from the start of the migration), unless one of their instances is gone. No
     * admissions meanwhile: new requests wait for the new configuration.
     */
    private void keepDecoding(List<PipelineSlot> unchanged, Set<String> dead, Duration now) {
        for (PipelineSlot s : unchanged) {
            boolean alive = !s.broken();
            for (String id : s.instances) {
                alive &= !dead.contains(id);
            }
            if (!alive) {
                continue;
            }
            if (s.busyUntil.compareTo(migrationStart) < 0) {
                s.busyUntil = migrationStart;
            }
            while (!s.active.isEmpty() && s.busyUntil.compareTo(now) < 0) {
                if (!requests.stepNow(s, s.busyUntil)) {
                    break;
                }
            }
        }
        // a pipeline whose step failed here lost its requests already; the migration in progress owns the pipelines
        // and the next reconfiguration builds fresh ones, so it is not retired behind the migration's back
        requests.takeFailed();
    }

    /**
     * Waits until every pipeline's last forward step has ended (only a simulated clock prices steps ahead of now): a
     * reconfiguration, like a GPU kernel, does not cut a running step short.
     */
    private void awaitStepsEnded() {
        Duration until = Duration.ZERO;
        for (PipelineSlot s : slots) {
            until = s.busyUntil.compareTo(until) > 0 ? s.busyUntil : until;
        }
        while (clock.now().compareTo(until) < 0) {
            synchronized (inbox.monitor) {
                try {
                    clock.awaitUntil(until, inbox.monitor);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** Whether the pipelines already implement {@code target} on usable, complete positions. */
    private boolean intact(ParallelConfig target) {
        if (current == null || !current.equals(target) || slots.size() != target.dataParallel()) {
            return false;
        }
        for (PipelineSlot s : slots) {
            if (s.broken()) {
                return false;
            }
            for (String id : s.instances) {
                InstanceRecord r = instances.get(id);
                if (r == null || !r.usable()) {
                    return false;
                }
            }
        }
        return true;
    }

    /** The current deployment as the device mapper sees it: live positions and each pipeline's requests. */
    private DeploymentSnapshot snapshot(ParallelConfig target) {
        if (current == null || slots.isEmpty()) {
            return new DeploymentSnapshot(new Deployment(target, Map.of(), Map.of()), Map.of());
        }
        ParallelConfig oc = ParallelConfig.of(slots.size(), current.pipelineStages(), current.tensorShards(),
                current.maxBatch());
        Map<Position, DeviceId> placement = new LinkedHashMap<>();
        Map<Integer, List<InflightBatch>> batches = new LinkedHashMap<>();
        Map<String, LiveRequest> requestsByBatch = new LinkedHashMap<>();
        for (int i = 0; i < slots.size(); i++) {
            PipelineSlot s = slots.get(i);
            ShardLayout l = s.pipeline.layout();
            for (int st = 0; st < l.stages(); st++) {
                for (int m = 0; m < l.shards(); m++) {
                    DeviceId d = s.pipeline.device(st, m).id();
                    if (s.alive(st, m) && instances.holds(d.instance())) {
                        placement.put(new Position(i, st, m), d);
                    }
                }
            }
            List<InflightBatch> mine = new ArrayList<>();
            for (LiveRequest r : s.active) {
                int filled = s.pipeline.length(r.id);
                if (filled > 0) {
                    int prompt = Math.min(filled, r.prompt.length);
                    InflightBatch b = new InflightBatch("r" + r.id, 1, prompt, filled - prompt);
                    mine.add(b);
                    requestsByBatch.put(b.id(), r);
                }
            }
            if (!mine.isEmpty()) {
                batches.put(i, mine);
            }
        }
        return new DeploymentSnapshot(new Deployment(oc, placement, batches), requestsByBatch);
    }

    /** The planner's unit order under a per-instance buffer of one device's memory; sequential when infeasible. */
    private List<ContextUnit> migrationOrder(DeviceMapping mapping, long bufferBytes) {
        try {
            return reconfigurationPlanner.plan(mapping, bufferBytes).order();
        } catch (MigrationInfeasibleException e) {
            LOG.info("no migration order keeps every instance's buffer within {} bytes ({}); using the sequential order",
                    bufferBytes, e.getMessage());
            return List.of();
        }
    }
}
