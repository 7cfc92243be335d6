package io.spotserve.engine;

import io.spotserve.exec.DeviceLostException;
import io.spotserve.plan.DeviceId;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Devices an executor reported gone ({@link DeviceLostException}: a worker process died or was fenced) while the
 * engine was calling into a pipeline: a forward step, an admission, a migration or a weight load. Where the call
 * failed only records the loss here ({@link #report}); the engine loop hands what was recorded to the
 * {@link InstanceManager} ({@link #take}), which treats each instance holding a lost device as gone without
 * grace, like a preemption, so the next plan runs on the remaining instances. Data flows one way: the parts that
 * call pipelines never reach into the instance manager. Owned by the engine thread.
 */
final class LostDevices {
    /**
     * One report: the instances whose devices are gone, and why.
     *
     * @param instances ids of the instances that held the lost devices
     * @param cause     the executor's message
     */
    record Loss(Set<String> instances, String cause) {
        Loss {
            instances = Collections.unmodifiableSet(new LinkedHashSet<>(instances));
        }
    }

    private final List<Loss> pending = new ArrayList<>();

    /**
     * The {@link DeviceLostException} behind {@code t}, walking its cause chain (a step's failure arrives wrapped by
     * the future that ran it), or null when none is there.
     */
    static DeviceLostException find(Throwable t) {
        Set<Throwable> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Throwable c = t; c != null && seen.add(c); c = c.getCause()) {
            if (c instanceof DeviceLostException lost) {
                return lost;
            }
        }
        return null;
    }

    /** The instances holding the devices {@code e} names. */
    static Set<String> instancesOf(DeviceLostException e) {
        Set<String> out = new LinkedHashSet<>();
        for (DeviceId d : e.devices()) {
            out.add(d.instance());
        }
        return out;
    }

    /** Records the loss {@code e} reports; returns the instances it names. */
    Set<String> report(DeviceLostException e) {
        Set<String> instances = instancesOf(e);
        pending.add(new Loss(instances, String.valueOf(e.getMessage()))); // even naming none, it calls for a re-plan
        return instances;
    }

    /** Instances reported lost and not yet taken (a migration in progress stops using them at once). */
    Set<String> pendingInstances() {
        Set<String> out = new LinkedHashSet<>();
        for (Loss l : pending) {
            out.addAll(l.instances());
        }
        return out;
    }

    boolean isEmpty() {
        return pending.isEmpty();
    }

    /** What was reported since the last call, oldest first. */
    List<Loss> take() {
        List<Loss> out = List.copyOf(pending);
        pending.clear();
        return out;
    }
}
