package io.spotserve.engine;

import io.spotserve.clock.EngineClock;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceProvider;
import io.spotserve.plan.Arrangement;
import io.spotserve.plan.DeviceId;
import io.spotserve.plan.FleetPlan;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The instance manager (SpotServe §3.2, DESIGN.md §2): the instances the engine holds and their devices, the
 * provider's events (applied by the engine in the order the provider emitted them for each instance, see
 * {@link Inbox}), preemption deadlines, and the fleet size N_t: on-demand asks and releases around the target, with
 * on-demand instances released first. Membership changes are reported to the {@link Reconfigurator}. Owned by the
 * engine thread.
 */
final class InstanceManager {
    private static final Logger LOG = LoggerFactory.getLogger(InstanceManager.class);

    private final Executor executor;
    private final InstanceProvider provider;
    private final MetricsRecorder metrics;
    private final EngineClock clock;
    private final ConfigPlanner planner;
    private final int targetInstances;
    private final Map<String, InstanceRecord> instances = new LinkedHashMap<>();
    private final Set<String> gone = new HashSet<>();
    /** The arranger's decisions at acquisition notices, by instance, until its {@code Acquired} comes. */
    private final Map<String, ConfigPlanner.Arranged> launches = new HashMap<>();
    private int outstandingRequests;
    /** Set once the engine drains for close: instances that arrive then are released at once. */
    private boolean draining;
    private Reconfigurator reconfigurator;
    private RequestManager requests;

    InstanceManager(Executor executor, InstanceProvider provider, MetricsRecorder metrics, EngineClock clock,
                    ConfigPlanner planner, int targetInstances) {
        this.executor = executor;
        this.provider = provider;
        this.metrics = metrics;
        this.clock = clock;
        this.planner = planner;
        this.targetInstances = targetInstances;
    }

    void wire(Reconfigurator reconfigurator, RequestManager requests) {
        this.reconfigurator = reconfigurator;
        this.requests = requests;
    }

    void draining() {
        draining = true;
    }

    InstanceRecord get(String id) {
        return instances.get(id);
    }

    boolean holds(String id) {
        return instances.containsKey(id);
    }

    /** Every device of every instance held, by id. */
    Map<DeviceId, Device> devices() {
        Map<DeviceId, Device> all = new HashMap<>();
        for (InstanceRecord r : instances.values()) {
            for (Device d : r.devices) {
                all.put(d.id(), d);
            }
        }
        return all;
    }

    /**
     * Instances the configuration may use: without a preemption notice and not waiting for the time the arranger
     * picked for them to join, in acquisition order.
     */
    List<InstanceRecord> usable() {
        List<InstanceRecord> usable = new ArrayList<>();
        for (InstanceRecord r : instances.values()) {
            if (r.usable() && r.joinAt == null) {
                usable.add(r);
            }
        }
        return usable;
    }

    /** Instances gone by {@code now}: terminated, released, or past their preemption deadline. */
    Set<String> goneBy(Duration now) {
        Set<String> dead = new HashSet<>(gone);
        for (InstanceRecord r : instances.values()) {
            if (r.deadline != null && r.deadline.compareTo(now) <= 0) {
                dead.add(r.instance.id());
            }
        }
        return dead;
    }

    /** The earliest preemption deadline or arrangement time, or null. */
    Duration nextDue() {
        Duration next = null;
        for (InstanceRecord r : instances.values()) {
            next = RequestManager.min(next, r.deadline);
            next = RequestManager.min(next, leaveAt(r));
            next = RequestManager.min(next, r.joinAt);
        }
        return next;
    }

    // ------------------------------------------------------------------ events

    void apply(InstanceEvent event) {
        if (event instanceof InstanceEvent.Launching l) {
            launching(l);
        } else if (event instanceof InstanceEvent.Acquired a) {
            acquired(a);
        } else if (event instanceof InstanceEvent.PreemptionNotice n) {
            noticed(n);
        } else if (event instanceof InstanceEvent.Terminated t) {
            terminated(t);
        }
    }

    /**
     * An acquisition notice: the interruption arranger decides now how the running batches meet the newcomer (SpotServe
     * §3.4): they keep decoding while it initializes and join it after S_t steps with their caches (MIGRATE), finish
     * before it is ready (FINISH), or go to it without their caches (REROUTE: moving them would take longer). Applied
     * when its {@code Acquired} comes.
     */
    private void launching(InstanceEvent.Launching l) {
        String id = l.instanceId();
        if (instances.containsKey(id) || gone.contains(id) || launches.containsKey(id)) {
            LOG.debug("acquisition notice for {} ignored: the instance is {}", id,
                    gone.contains(id) ? "gone" : "known already");
            return;
        }
        ConfigPlanner.Arranged a = reconfigurator.arrangeJoin(l, requests.stepEstimate());
        LOG.info("instance {} launching, ready at {}{}", id, l.readyAt(),
                a == null ? ": it joins on arrival" : ": " + a.action() + " (" + a.reason() + ")");
        if (a != null) {
            launches.put(id, a);
        }
    }

    private void acquired(InstanceEvent.Acquired a) {
        String id = a.instanceId();
        ConfigPlanner.Arranged arranged = launches.remove(id);
        outstandingRequests = Math.max(0, outstandingRequests - 1);
        if (instances.containsKey(id)) {
            LOG.debug("duplicate Acquired event for {} ignored", id);
            return;
        }
        if (gone.contains(id)) {
            LOG.warn("late Acquired event for {} ignored: the instance already terminated", id);
            return;
        }
        if (draining) {
            LOG.info("instance {} arrived while closing; releasing it", id);
            provider.release(id);
            return;
        }
        List<Device> devices = new ArrayList<>();
        try {
            for (int g = 0; g < a.instance().type().gpus(); g++) {
                devices.add(executor.createDevice(new DeviceId(id, g), a.instance().type().memoryPerGpuBytes()));
            }
        } catch (RuntimeException e) {
            LOG.error("cannot create the devices of instance {}; ignoring it", id, e);
            for (Device d : devices) {
                executor.destroyDevice(d);
            }
            return;
        }
        InstanceRecord record = new InstanceRecord(a.instance(), devices);
        instances.put(id, record);
        metrics.instanceStarted(a.instance(), clock.now());
        LOG.info("instance {} acquired ({} x {} MiB, {})", id, devices.size(),
                a.instance().type().memoryPerGpuBytes() >> 20, a.instance().type().market());
        join(record, arranged);
    }

    /** The newcomer joins now, or at the arranger's S_t; a REROUTE join carries no cache. */
    private void join(InstanceRecord r, ConfigPlanner.Arranged arranged) {
        String id = r.instance.id();
        if (arranged == null) {
            reconfigurator.changed(Reconfiguration.Trigger.ACQUIRED, "acquired " + id);
        } else if (arranged.action() == Arrangement.Action.REROUTE) {
            reconfigurator.rerouteAtNextChange();
            reconfigurator.changed(Reconfiguration.Trigger.ACQUIRED, "acquired " + id + ": reroute");
        } else if (arranged.action() == Arrangement.Action.FINISH) {
            reconfigurator.changed(Reconfiguration.Trigger.ACQUIRED, "acquired " + id + ": batches finished first");
        } else if (arranged.at().compareTo(clock.now()) > 0) {
            r.joinAt = arranged.at();
            LOG.info("instance {} joins at {}, after the running batches' arranged steps", id, r.joinAt);
        } else {
            reconfigurator.changed(Reconfiguration.Trigger.ACQUIRED, "acquired " + id + ": migrate");
        }
    }

    private void noticed(InstanceEvent.PreemptionNotice n) {
        InstanceRecord r = instances.get(n.instanceId());
        if (r == null) {
            if (gone.contains(n.instanceId())) {
                LOG.debug("late preemption notice for {} ignored: already gone", n.instanceId());
            } else {
                LOG.warn("preemption notice for unknown instance {} ignored", n.instanceId());
            }
            return;
        }
        if (r.deadline != null) {
            if (n.deadline().compareTo(r.deadline) < 0) {
                LOG.info("repeated notice for {} moves its deadline from {} to {}", n.instanceId(), r.deadline,
                        n.deadline());
                r.deadline = n.deadline();
            } else {
                LOG.debug("duplicate preemption notice for {} ignored", n.instanceId());
            }
            return;
        }
        r.deadline = n.deadline();
        r.joinAt = null; // a newcomer noticed before it joined never joins
        metrics.noticed(n.instanceId());
        LOG.info("preemption notice for {}: deadline {} (grace {})", n.instanceId(), n.deadline(), n.grace());
        ConfigPlanner.Arranged a = reconfigurator.arrange(n, requests.stepEstimate());
        Duration now = clock.now();
        if (a == null && !reconfigurator.holdsPositions(n.instanceId()) && reconfigurator.configured()) {
            // nothing of the deployment is on it: no reason to re-plan now. A re-plan here would also move the
            // pipelines of instances noticed at the same moment off them at once, instead of at their arranged time
            LOG.info("{} serves no pipeline: it leaves at its deadline, the deployment stays", n.instanceId());
        } else if (a == null) {
            reconfigurator.changed(Reconfiguration.Trigger.NOTICE, "notice " + n.instanceId());
        } else if (a.action() == Arrangement.Action.REROUTE) {
            LOG.info("pipelines on {} reroute their requests now, without their caches ({})", n.instanceId(),
                    a.reason());
            reconfigurator.reroute(n.instanceId());
            reconfigurator.changed(Reconfiguration.Trigger.NOTICE, "notice " + n.instanceId() + ": reroute");
        } else if (a.at().compareTo(now) <= 0) {
            reconfigurator.changed(Reconfiguration.Trigger.NOTICE, "notice " + n.instanceId());
        } else {
            // FINISH: leave as soon as the batches are done, by the latest safe time at most
            r.finishing = a.action() == Arrangement.Action.FINISH;
            r.arrangeAt = r.finishing ? a.latest() : a.at();
            LOG.info("pipelines on {} keep decoding until {} (deadline {}){}", n.instanceId(), a.at(), n.deadline(),
                    r.finishing ? ", or until their batches finish" : "");
        }
    }

    private void terminated(InstanceEvent.Terminated t) {
        launches.remove(t.instanceId()); // launched, then gone before it was ever usable
        if (!instances.containsKey(t.instanceId())) {
            if (gone.contains(t.instanceId())) {
                LOG.debug("duplicate or late Terminated event for {} ignored", t.instanceId());
            } else {
                LOG.warn("Terminated event for unknown instance {} ignored", t.instanceId());
                gone.add(t.instanceId());
            }
            return;
        }
        LOG.info("instance {} terminated", t.instanceId());
        // bill until the cloud's termination time, even when the event is applied later on the engine clock
        Duration now = clock.now();
        remove(t.instanceId(), Reconfiguration.Trigger.LOST, "terminated " + t.instanceId(), t.at().compareTo(now) < 0 ? t.at() : now);
    }

    /**
     * Devices were found lost while the engine called into a pipeline (their worker died or was fenced): every
     * instance holding one is gone now, as a preemption without grace. Its pipelines lose their positions there (their
     * requests recompute), it is released to the provider, and the engine re-plans on the remaining instances. The
     * provider's own Terminated (or any later event) for it is then ignored like any event for a gone instance.
     */
    void lost(LostDevices.Loss loss) {
        for (String id : loss.instances()) {
            if (!instances.containsKey(id)) {
                LOG.debug("lost devices of {} need nothing more: the instance is {}", id,
                        gone.contains(id) ? "already gone" : "not one of ours");
                continue;
            }
            LOG.warn("instance {} is lost ({}); serving goes on without it", id, loss.cause());
            remove(id, Reconfiguration.Trigger.LOST, "lost " + id);
            provider.release(id);
        }
        reconfigurator.changed(Reconfiguration.Trigger.LOST, "devices lost on " + loss.instances()); // a broken pipeline is replaced in any case
    }

    /** Arrangement times and preemption deadlines that have come: migrate off, or release at the deadline. */
    void deadlines(Duration now) {
        for (InstanceRecord r : instances.values()) {
            if (r.joinAt != null && r.joinAt.compareTo(now) <= 0) {
                r.joinAt = null;
                reconfigurator.changed(Reconfiguration.Trigger.ACQUIRED, "acquired " + r.instance.id() + ": migrate after the arranged steps");
            }
            if (batchesFinished(r)) {
                r.arrangeAt = null;
                LOG.info("the batches on {} finished: leaving it before its deadline {}", r.instance.id(), r.deadline);
                reconfigurator.changed(Reconfiguration.Trigger.NOTICE, "notice " + r.instance.id() + ": batches finished");
            } else if (due(leaveAt(r), now)) {
                r.arrangeAt = null;
                LOG.info("{} is due to leave at {} (deadline {}): migrating off it now", r.instance.id(), now, r.deadline);
                reconfigurator.changed(Reconfiguration.Trigger.NOTICE, "notice " + r.instance.id());
            }
        }
        List<InstanceRecord> expired = new ArrayList<>();
        for (InstanceRecord r : instances.values()) {
            if (r.deadline != null && r.deadline.compareTo(now) <= 0) {
                expired.add(r);
            }
        }
        for (InstanceRecord r : expired) {
            String id = r.instance.id();
            LOG.info("preemption deadline of {} reached; releasing it", id);
            remove(id, Reconfiguration.Trigger.DEADLINE, "deadline of " + id, r.deadline); // the cloud takes it at the deadline: billing ends there
            provider.release(id);
        }
    }

    /** Whether instances dated events or deadlines are due by {@code now} (the engine quiesces pipelines first). */
    boolean deadlineDue(Duration now) {
        for (InstanceRecord r : instances.values()) {
            if (due(leaveAt(r), now)
                    || (r.joinAt != null && r.joinAt.compareTo(now) <= 0)
                    || (r.deadline != null && r.deadline.compareTo(now) <= 0) || batchesFinished(r)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether the pipeline on {@code ids} may still take requests: none of them is releasing, and every noticed one is
     * arranged to leave later than now (it is in its grace period, before the migration lead).
     */
    boolean inGrace(Collection<String> ids) {
        Duration now = clock.now();
        for (String id : ids) {
            InstanceRecord r = instances.get(id);
            if (r == null || r.releasing
                    || r.deadline != null && (r.arrangeAt == null || due(leaveAt(r), now))) {
                return false;
            }
        }
        return true;
    }

    /**
     * When the pipelines on a noticed instance stop decoding and its context moves off: the arranged time, or earlier
     * once the latest safe time (deadline minus {@link Reconfigurator#lead}) re-taken at the current step estimate
     * has come first. The arrangement priced the lead at the notice, when the estimate may have been cold: a notice
     * right after the first steps, with more pipelines filling up after it (each round of steps longer), left the
     * last round ending past the deadline and the caches lost. Null when the instance is not arranged to leave.
     */
    private Duration leaveAt(InstanceRecord r) {
        if (r.arrangeAt == null || r.deadline == null) {
            return r.arrangeAt;
        }
        Duration latest = r.deadline.minus(reconfigurator.lead(r.instance.id(), requests.stepEstimate()));
        return latest.compareTo(r.arrangeAt) < 0 ? latest : r.arrangeAt;
    }

    private static boolean due(Duration at, Duration now) {
        return at != null && at.compareTo(now) <= 0;
    }

    /**
     * A FINISH arrangement whose batches are done: the instance can be left now — unless requests wait and leaving
     * would cost a pipeline ({@link Reconfigurator#leavingLosesPipelines}); it then serves them until its arranged
     * time.
     */
    private boolean batchesFinished(InstanceRecord r) {
        return r.arrangeAt != null && r.finishing && !reconfigurator.busyOn(r.instance.id())
                && !(requests.queued() > 0 && reconfigurator.leavingLosesPipelines());
    }

    /** Forgets an instance now: retires its pipelines (their KV caches are lost) and destroys its devices. */
    private void remove(String id, Reconfiguration.Trigger trigger, String reason) {
        remove(id, trigger, reason, clock.now());
    }

    /** Forgets an instance whose billing ended at {@code endedAt}. */
    private void remove(String id, Reconfiguration.Trigger trigger, String reason, Duration endedAt) {
        InstanceRecord r = instances.remove(id);
        gone.add(id);
        if (r == null) {
            return;
        }
        reconfigurator.loseInstance(id, trigger);
        destroy(r.devices);
        metrics.instanceEnded(id, endedAt);
        reconfigurator.changed(trigger, reason);
    }

    /** Destroys devices; never throws (a dead worker's devices went with its process). */
    private void destroy(List<Device> devices) {
        for (Device d : devices) {
            try {
                executor.destroyDevice(d);
            } catch (RuntimeException e) {
                LOG.warn("destroying device {} failed ({}); it is forgotten", d.id(), e.toString());
            }
        }
    }

    // ------------------------------------------------------------------ N_t

    /**
     * N_t by the instance manager's rule ({@link FleetPlan}): asks for on-demand instances below the target, releases
     * surplus ones — on-demand first (launching, idle, then hosting ones after migrating off), then idle spot ones when
     * planning on a measured arrival rate ({@link ConfigPlanner#releasesSpot}) — and never a hosting instance before its context is moved off.
     */
    void manage() {
        if (targetInstances == 0 || draining) {
            return;
        }
        for (InstanceRecord r : new ArrayList<>(instances.values())) {
            String id = r.instance.id();
            if (r.releasing && r.deadline == null && !reconfigurator.hosts(id)) {
                LOG.info("surplus instance {} hosts nothing any more: releasing it", id);
                remove(id, Reconfiguration.Trigger.RELEASED, "released " + id);
                provider.release(id);
            }
        }
        int desired = planner.desiredInstances(targetInstances);
        if (desired < 0) {
            return;
        }
        List<FleetPlan.Member> members = new ArrayList<>();
        for (InstanceRecord r : instances.values()) {
            if (r.usable()) {
                String id = r.instance.id();
                FleetPlan.State state = r.joinAt != null ? FleetPlan.State.LAUNCHING
                        : reconfigurator.hosts(id) ? FleetPlan.State.HOSTING : FleetPlan.State.IDLE;
                members.add(new FleetPlan.Member(id, !r.instance.type().preemptible(), state));
            }
        }
        FleetPlan.Step step = FleetPlan.plan(desired, members, outstandingRequests, Integer.MAX_VALUE,
                planner.releasesSpot());
        if (step.ask() > 0) {
            outstandingRequests += step.ask();
            LOG.info("{} usable instances and {} asked for, target {}: requesting {}", members.size(),
                    outstandingRequests - step.ask(), desired, step.ask());
            provider.requestOnDemand(step.ask());
        }
        for (FleetPlan.Release release : step.releases()) {
            InstanceRecord r = instances.get(release.id());
            String kind = r.instance.type().preemptible() ? "spot" : "on-demand";
            if (release.migrateFirst()) {
                // not usable from now on: the next reconfiguration moves its context off, then it goes (above)
                LOG.info("releasing surplus {} instance {} after moving its context off", kind, release.id());
                r.releasing = true;
                reconfigurator.changed(Reconfiguration.Trigger.RELEASED, "releasing " + release.id());
            } else {
                LOG.info("releasing surplus {} instance {}", kind, release.id());
                remove(release.id(), Reconfiguration.Trigger.RELEASED, "released " + release.id());
                provider.release(release.id());
            }
        }
    }

    /** Shutdown: destroys every device and releases every instance to the provider. */
    void releaseAll() {
        for (String id : new ArrayList<>(instances.keySet())) {
            InstanceRecord r = instances.remove(id);
            gone.add(id);
            destroy(r.devices);
            metrics.instanceEnded(id, clock.now());
            provider.release(id);
        }
    }
}
