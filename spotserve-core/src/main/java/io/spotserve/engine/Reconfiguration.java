package io.spotserve.engine;

import io.spotserve.plan.ParallelConfig;
import java.time.Duration;
import java.util.Set;

/**
 * One change of the engine's parallel configuration (SpotServe §3: every membership change re-plans), with
 * what the device mapper predicted next to what the migration really did, so a host can see that context
 * stayed in place.
 *
 * @param at                   engine-clock time the change started
 * @param reason               what triggered it (instance acquired, preemption notice, termination, ...), in words
 * @param triggers             the kinds of event that triggered it (several when changes were planned together)
 * @param from                 pipelines before, e.g. "[P2M1@[a, b]]"
 * @param to                   pipelines after
 * @param configuration        the configuration C = (D, P, M, B) the pipelines after implement; null when none
 * @param interruptedRequests  requests that lost their KV cache and resume by recomputing from committed tokens
 * @param resumedRequests      requests whose KV cache was migrated: they resume at their committed step
 * @param parkedRequests       requests whose KV cache was parked in host memory instead (no room for it in the new
 *                             configuration, or, when no configuration fitted before this change, exported from a doomed
 *                             pipeline since the previous record): they resume at their committed step when admitted
 *                             again ({@link EngineMetrics#migrations()} counts them then) or recompute if the parked
 *                             cache cannot be restored ({@link EngineMetrics#restarts()}); not in the other two counts
 * @param bytesMigrated        weight and KV bytes copied from one device to another
 * @param bytesKept            context bytes handed to a new position on the same device (not moved)
 * @param bytesLoaded          weight bytes read from the checkpoint (no surviving replica)
 * @param plannedBytesMoved    bytes the device mapper predicted to move device to device
 * @param plannedBytesReloaded bytes the device mapper predicted to reload from the checkpoint
 * @param pause                engine-clock time the change took
 */
public record Reconfiguration(Duration at, String reason, Set<Trigger> triggers, String from, String to, ParallelConfig configuration,
                              int interruptedRequests,
                              int resumedRequests, int parkedRequests, long bytesMigrated, long bytesKept, long bytesLoaded,
                              long plannedBytesMoved, long plannedBytesReloaded, Duration pause) {

    /** What made the engine re-plan its pipelines. */
    public enum Trigger {
        /** An instance was acquired (it joins now, or after the interruption arranger's steps). */
        ACQUIRED,
        /** A preemption notice: the engine leaves the instance before its deadline. */
        NOTICE,
        /** A noticed instance reached its deadline and was taken. */
        DEADLINE,
        /** An instance was terminated by the cloud or found lost (its worker died), with no notice left to act on. */
        LOST,
        /** The engine released a surplus instance of its own. */
        RELEASED,
        /** The planner's periodic re-plan (arrival rate, backlog) chose another configuration. */
        REPLAN,
        /** A pipeline was taken out of service after a failed step. */
        RETIRED
    }

    /** Checks the values. */
    public Reconfiguration {
        triggers = Set.copyOf(triggers);
    }

    /**
     * Whether the cloud forced this change: a preemption notice, a deadline or an instance that was terminated or lost
     * was among its triggers (not only acquisitions, the planner, failed steps or releases of our own).
     */
    public boolean forcedByCloud() {
        return triggers.contains(Trigger.NOTICE) || triggers.contains(Trigger.DEADLINE)
                || triggers.contains(Trigger.LOST);
    }
}
