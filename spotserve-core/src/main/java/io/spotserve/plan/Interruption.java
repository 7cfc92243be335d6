package io.spotserve.plan;

import java.util.Objects;

/**
 * What a serving system does about an interruption, and when, given the {@link InterruptionArranger}'s decision
 * (SpotServe §3.4, §4.1): the engine and the evaluation's simulator both act on this record.
 *
 * <ul>
 *   <li>{@link Arrangement.Action#MIGRATE MIGRATE}: the pipelines keep decoding for S_t steps, then stop and their KV
 *       caches move with the new configuration — never later than {@link #latestSeconds()} (the grace period minus
 *       the migration time), whatever the pace of the steps;</li>
 *   <li>{@link Arrangement.Action#FINISH FINISH}: the batches finish their remaining tokens before the change (the
 *       instance is left as soon as they are done, by {@link #latestSeconds()} at the latest);</li>
 *   <li>{@link Arrangement.Action#REROUTE REROUTE}: stop now and hand the requests on without their caches (they
 *       recompute from their committed tokens).</li>
 * </ul>
 * A step already in flight always completes ({@link #stepsBeforeStop}). Times are seconds from the decision.
 *
 * @param action            what the batches do
 * @param steps             S_t: decode steps to run before stopping (0 for REROUTE)
 * @param leaveAfterSeconds when to stop: S_t steps at the caller's pace, capped at {@code latestSeconds}
 * @param latestSeconds     the latest safe stop (grace − migration time, 0 when none is left; for an acquisition the
 *                          same as {@code leaveAfterSeconds})
 * @param reason            one line saying why
 */
public record Interruption(Arrangement.Action action, int steps, double leaveAfterSeconds, double latestSeconds,
                           String reason) {
    public Interruption {
        Objects.requireNonNull(action, "action");
        Objects.requireNonNull(reason, "reason");
        if (steps < 0 || !(leaveAfterSeconds >= 0) || !(latestSeconds >= 0)) {
            throw new IllegalArgumentException("steps and times must be >= 0, were " + steps + ", "
                    + leaveAfterSeconds + ", " + latestSeconds);
        }
    }

    /**
     * At a preemption notice: the arranger's S_t and action for the batch with the most tokens to go.
     *
     * @param arranger         the interruption arranger
     * @param config           C_t
     * @param decodeMicroBatches M2 of C_t
     * @param remainingTokens  R, the most output tokens a request on the doomed pipelines still has to generate
     * @param graceSeconds     T⁻, time left until the instance goes
     * @param migrationSeconds T_mig, the time the change is expected to take
     * @param stepSeconds      the caller's pace of one decode step (its measured time); 0 or less: the arranger's own
     *                         (cost-model) price of the S_t steps, l_exe(S_t)
     * @throws IllegalArgumentException as {@link InterruptionArranger#onPreemption} (e.g. a configuration the cost
     *                                  model cannot price)
     */
    public static Interruption atPreemption(InterruptionArranger arranger, ParallelConfig config,
                                            int decodeMicroBatches, int remainingTokens, double graceSeconds,
                                            double migrationSeconds, double stepSeconds) {
        Arrangement a = arranger.onPreemption(config, decodeMicroBatches, remainingTokens, graceSeconds,
                migrationSeconds);
        double latest = Math.max(0, graceSeconds - migrationSeconds);
        return of(a, stepSeconds, latest);
    }

    /**
     * At an acquisition notice: the running batches keep decoding while the newcomer initializes, and it joins after
     * S_t steps (MIGRATE), once they finish (FINISH), or on arrival without their caches (REROUTE).
     *
     * @param initSeconds T⁺, time until the newcomer is ready
     * @see #atPreemption
     */
    public static Interruption atAcquisition(InterruptionArranger arranger, ParallelConfig config,
                                             int decodeMicroBatches, int remainingTokens, double initSeconds,
                                             double migrationSeconds, double stepSeconds) {
        Arrangement a = arranger.onAcquisition(config, decodeMicroBatches, remainingTokens, initSeconds,
                migrationSeconds);
        return of(a, stepSeconds, Double.POSITIVE_INFINITY);
    }

    /** A change without a deadline (an instance ready, a new rate): stop after the step in flight and migrate. */
    public static Interruption migrateNow(String reason) {
        return new Interruption(Arrangement.Action.MIGRATE, 0, 0, 0, reason);
    }

    /** Stop after the step in flight and hand the requests on without their caches (no arranger at all). */
    public static Interruption rerouteNow(String reason) {
        return new Interruption(Arrangement.Action.REROUTE, 0, 0, 0, reason);
    }

    private static Interruption of(Arrangement a, double stepSeconds, double latest) {
        if (a.action() == Arrangement.Action.REROUTE) {
            return new Interruption(a.action(), 0, 0, Double.isInfinite(latest) ? 0 : latest, a.reason());
        }
        double decode = stepSeconds > 0 ? a.steps() * stepSeconds : a.decodeSeconds();
        double after = Math.min(Math.min(decode, latest), Long.MAX_VALUE / 2e9);
        return new Interruption(a.action(), a.steps(), after, Double.isInfinite(latest) ? after : latest, a.reason());
    }

    /** Whether the KV caches go along with the requests (MIGRATE, FINISH), or are dropped (REROUTE). */
    public boolean carriesCaches() {
        return action != Arrangement.Action.REROUTE;
    }

    /**
     * Decode steps a pipeline runs before it stops, counting from now with {@code inFlight} steps (0 or 1) already
     * dispatched: an in-flight step always completes; REROUTE stops after it, MIGRATE and FINISH after S_t.
     */
    public int stepsBeforeStop(int inFlight) {
        return action == Arrangement.Action.REROUTE ? inFlight : Math.max(steps, inFlight);
    }
}
