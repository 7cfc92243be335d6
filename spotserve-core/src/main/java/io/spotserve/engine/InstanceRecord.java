package io.spotserve.engine;

import io.spotserve.exec.Device;
import io.spotserve.instance.Instance;
import java.time.Duration;
import java.util.List;

/**
 * The engine's view of one instance: its devices, its preemption deadline once noticed, and when it joins the
 * configuration if the arranger deferred that.
 */
final class InstanceRecord {
    final Instance instance;
    final List<Device> devices;
    Duration deadline;
    /** When to migrate off this noticed instance (deadline minus migration time); null once arranged. */
    Duration arrangeAt;
    /** The arranger said FINISH: leave as soon as the batches on it are done (by {@link #arrangeAt} at the latest). */
    boolean finishing;
    /**
     * When this newly acquired instance joins the configuration, as the interruption arranger placed it after the
     * instance's acquisition notice; null once joined (or when it joined on arrival).
     */
    Duration joinAt;
    /**
     * The instance manager released this surplus instance while it hosted part of the configuration: it is no longer
     * usable (the next reconfiguration moves its context off) and is handed back once no pipeline is on it.
     */
    boolean releasing;

    InstanceRecord(Instance instance, List<Device> devices) {
        this.instance = instance;
        this.devices = devices;
    }

    boolean usable() {
        return deadline == null && !releasing;
    }
}
