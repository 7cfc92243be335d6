package io.spotserve.plan;

import java.util.Objects;

/**
 * The re-plan gate: when a change of parallel configuration is worth its pause. Algorithm 1 says which (D, P, M, B)
 * it would pick now; this class says whether to move to it. Pure (no clock, no state): the engine's
 * {@code ConfigPlanner} and the evaluation's simulator ({@code spotserve+}) call the same rules, so they cannot
 * disagree.
 *
 * <p>Two moments ask for a decision:
 * <ul>
 *   <li><b>Workload trigger</b> (every re-planning interval, {@link #onRate}): the arrival rate moved by more than
 *       {@link #RATE_BAND} since the last decision ({@link #rateMoved}), Algorithm 1 prefers another (P, M, B), and
 *       either a managed fleet shrinks with the load (the new configuration needs fewer GPUs and Δ wants fewer
 *       instances than are held), or the current configuration cannot keep up (φ(C_t) &lt; α_t) and the change
 *       repays its pause for the requests it delays ({@link #worthChanging}).</li>
 *   <li><b>Membership change</b> (an instance noticed, lost or acquired, {@link #atMembershipChange}): a
 *       reconfiguration happens anyway, but the (P, M, B) changes only when it must (the current one no longer fits),
 *       or when Algorithm 1's new choice serves more and repays the pause of changing shape for the requests it
 *       delays ({@link #worthChanging}). Without this hysteresis a fleet that moves between two sizes moves between two
 *       shapes each time (GPT-20B: D2P2M8 at one size, D3P3M4 at the next), and every flip stops every pipeline.</li>
 * </ul>
 * For a fleet nobody shrinks, the configuration both moments start from may be the one of most throughput on the
 * usable devices instead of Algorithm 1's lower-latency one, when Algorithm 1's leaves devices idle and the extra
 * capacity repays a change of shape with nothing queued ({@link #takesIdleDevices}).
 * Membership changes themselves are never gated: they must reconfigure.
 */
public final class ReplanGate {
    /** The workload trigger's dead band: the rate must move by more than this fraction of the last decision's. */
    public static final double RATE_BAND = 0.25;

    private ReplanGate() {
    }

    /** What the caller's fleet can hold: the configurations it could deploy now and what they serve. */
    public interface Capacity {
        /**
         * {@code shape}'s (P, M, B) with as many pipelines as the usable devices hold (by the caller's rule for D),
         * or null when not one pipeline fits.
         */
        ParallelConfig fit(ParallelConfig shape);

        /** φ(c): requests per second {@code c} serves; 0 when it cannot be priced. */
        double throughput(ParallelConfig c);
    }

    /** Why the workload trigger re-plans, or that it does not. */
    public enum Outcome {
        /** No change. */
        KEEP,
        /** Nothing is deployed: any configuration Algorithm 1 finds. */
        DEPLOY,
        /** A managed fleet shrinks with the load: fewer GPUs, Δ releases the rest. */
        SHRINK,
        /** The current configuration cannot keep up, and the new one repays its pause. */
        CAPACITY;

        /** Whether this outcome changes the configuration. */
        public boolean replans() {
            return this != KEEP;
        }
    }

    /**
     * Whether the arrival rate moved enough since the last decision to ask Algorithm 1 again: by more than
     * {@link #RATE_BAND} of {@code rateAtDecision}, or from 0 to anything, or when nothing was decided yet
     * ({@code rateAtDecision} &lt; 0).
     */
    public static boolean rateMoved(double rate, double rateAtDecision) {
        if (rateAtDecision < 0) {
            return true;
        }
        if (rateAtDecision == 0) {
            return rate > 0;
        }
        return Math.abs(rate - rateAtDecision) > RATE_BAND * rateAtDecision;
    }

    /**
     * Whether {@code preferred} asks for nothing {@code current} lacks: the same (P, M, B) and no more pipelines.
     */
    public static boolean sameShape(ParallelConfig preferred, ParallelConfig current) {
        return preferred.pipelineStages() == current.pipelineStages()
                && preferred.tensorShards() == current.tensorShards()
                && preferred.maxBatch() == current.maxBatch()
                && preferred.dataParallel() <= current.dataParallel();
    }

    /**
     * The workload trigger, once the rate moved ({@link #rateMoved}).
     *
     * @param rate         α_t, requests per second
     * @param current      the deployed configuration, or null when none
     * @param preferred    Algorithm 1's choice at {@code rate} on the usable instances, or null when it finds none
     * @param fleetShrinks the instance manager follows Δ and Δ wants fewer instances than the fleet holds
     * @param capacity     what the usable devices hold
     * @param waiting      requests queued (they wait through the pause)
     * @param running      requests running (they are paused with the pipelines)
     * @param arrivals     requests arriving per second (the recent rate, without the backlog)
     * @param window       the re-planning interval, seconds
     * @param pause        the reconfiguration's pause, seconds
     */
    public static Outcome onRate(double rate, ParallelConfig current, ParallelConfig preferred, boolean fleetShrinks,
                                 Capacity capacity, int waiting, int running, double arrivals, double window,
                                 double pause) {
        Objects.requireNonNull(capacity, "capacity");
        if (preferred == null) {
            return Outcome.KEEP;
        }
        if (current == null) {
            return Outcome.DEPLOY;
        }
        if (sameShape(preferred, current)) {
            return Outcome.KEEP;
        }
        if (fleetShrinks && preferred.gpus() < current.gpus()) {
            return Outcome.SHRINK; // a managed fleet shrinks with the load, for its cost
        }
        double phiNow = capacity.throughput(current);
        if (phiNow >= rate) {
            return Outcome.KEEP; // every device serving: a change would only trade a pause for a little latency
        }
        ParallelConfig next = capacity.fit(preferred);
        if (next == null) {
            return Outcome.KEEP;
        }
        return worthChanging(phiNow, capacity.throughput(next), waiting, running, arrivals, window, pause)
                ? Outcome.CAPACITY : Outcome.KEEP;
    }

    /**
     * At a membership change: the configuration to deploy. {@code current}'s (P, M, B) resized to the usable devices
     * is kept unless it no longer fits, a managed fleet shrinks to Algorithm 1's fewer GPUs, or Algorithm 1's
     * {@code preferred} serves more and repays the pause of changing shape for the requests it delays
     * ({@link #worthChanging}; the same test as the workload trigger's). A caller that keeps the shape although
     * Algorithm 1's serves more asks again every interval: the change is deferred, not dropped.
     *
     * @param current      the deployed configuration, or null when none
     * @param preferred    Algorithm 1's choice on the usable instances, already sized to them, or null when none
     * @param fleetShrinks the instance manager follows Δ and Δ wants fewer instances than the fleet holds
     * @param capacity     what the usable devices hold
     * @param waiting      requests queued (they wait through the pause)
     * @param running      requests running (they are paused with the pipelines)
     * @param arrivals     requests arriving per second (the recent rate, without the backlog)
     * @param window       the re-planning interval, seconds
     * @param pause        the pause of a change of shape, seconds
     * @return {@code preferred}, or {@code current}'s shape resized; null only when both are null or unfit
     */
    public static ParallelConfig atMembershipChange(ParallelConfig current, ParallelConfig preferred,
                                                    boolean fleetShrinks, Capacity capacity, int waiting, int running,
                                                    double arrivals, double window, double pause) {
        Objects.requireNonNull(capacity, "capacity");
        ParallelConfig kept = current == null ? null : capacity.fit(current);
        if (kept == null) {
            return preferred;
        }
        if (preferred == null) {
            return kept;
        }
        if (sameShape(preferred, kept) || sameShape(kept, preferred)) {
            return preferred; // same (P, M, B): only D differs, and Algorithm 1's D stands
        }
        if (fleetShrinks && preferred.gpus() < kept.gpus()) {
            return preferred;
        }
        double phiKept = capacity.throughput(kept);
        double phiPreferred = capacity.throughput(preferred);
        return worthChanging(phiKept, phiPreferred, waiting, running, arrivals, window, pause) ? preferred : kept;
    }

    /**
     * Whether a fleet nobody shrinks should plan for {@code most}, the (P, M, B) of most throughput on its devices,
     * rather than Algorithm 1's {@code planned} (its lowest-latency choice that keeps up with the mean rate): when
     * {@code most} puts devices to work that {@code planned} leaves idle, and serves more by what repays a change of
     * shape over one window with nothing queued ({@link #repaysPause} with H = the window: φ_most · (window − pause)
     * &gt; φ_planned · window). Such a fleet costs the same idle or busy, and the extra capacity that needs a change
     * of shape cannot be had cheaply in a burst — there every waiting request pays the pause — so it is taken at a
     * membership change or a quiet moment instead. Both configurations are sized to the usable devices.
     *
     * @param planned  Algorithm 1's choice, sized to the usable devices
     * @param most     the configuration of most throughput on the usable devices, sized to them
     * @param capacity what the usable devices hold (its φ)
     * @param window   the re-planning interval, seconds
     * @param pause    the pause of changing to {@code most}'s shape, seconds
     */
    public static boolean takesIdleDevices(ParallelConfig planned, ParallelConfig most, Capacity capacity,
                                           double window, double pause) {
        Objects.requireNonNull(capacity, "capacity");
        if (planned == null || most == null || most.gpus() <= planned.gpus()) {
            return false;
        }
        double phiPlanned = capacity.throughput(planned);
        return phiPlanned > 0 && repaysPause(phiPlanned, capacity.throughput(most), 0, window, pause);
    }

    /**
     * Whether re-planning from throughput {@code phiNow} to {@code phiNext} (requests per second) repays a pause of
     * {@code pauseSeconds}, with {@code work} requests queued or running and a rate window of {@code windowSeconds}.
     * Over the horizon H = max(window, work / φ_now) the current configuration serves φ_now · H requests, the new one
     * φ_next · (H − pause). When nothing is served now ({@code phiNow} = 0) any configuration that serves is worth it.
     */
    public static boolean repaysPause(double phiNow, double phiNext, int work, double windowSeconds,
                                      double pauseSeconds) {
        double horizon = Math.max(windowSeconds, phiNow > 0 ? work / phiNow : Double.POSITIVE_INFINITY);
        if (Double.isInfinite(horizon)) {
            return phiNext > 0;
        }
        return phiNext * (horizon - pauseSeconds) > phiNow * horizon;
    }

    /**
     * The test of every change of shape. While requests wait, the change must lower their request-seconds and those
     * of the requests arriving over the horizon ({@link #lowersLatency}): in the middle of a burst every queued request
     * pays the pause. When nothing is queued — the quietest moment a change can have — there is no queue to shorten
     * and the change is judged on capacity for what comes next: it must serve more over one window despite its pause
     * ({@link #repaysPause}, with H = the window: at least window / (window − pause) times the throughput, 19 % more
     * for a 4.8 s pause and a 30 s window). A change refused while requests wait is thereby deferred to the moment
     * the queue has drained, or to the moment the queue is long enough to gain.
     */
    public static boolean worthChanging(double phiNow, double phiNext, int waiting, int running, double arrivals,
                                        double window, double pause) {
        if (waiting <= 0) {
            return repaysPause(phiNow, phiNext, running, window, pause);
        }
        return lowersLatency(phiNow, phiNext, waiting, running, arrivals, window, pause);
    }

    /**
     * Whether a change of shape lowers the total latency of the requests present and arriving over
     * the horizon, in a fluid model of the queue. Q requests are queued or running; without the change the queue moves
     * at α − φ_now, with it it grows at α through the pause and then moves at α − φ_next (never below empty); the
     * change is made iff ∫Q over the horizon H = max(window, (waiting + running) / φ_now) is smaller with it (by
     * Little's law, the request-seconds spent in the system). A burst that is over (α small) gains little from more
     * throughput and every request in it pays the pause: no change; a sustained overload (α &gt; φ_now) or a long queue
     * repays it. When nothing is served now any configuration that serves is worth it.
     *
     * @param phiNow   φ of the configuration kept, requests per second
     * @param phiNext  φ of the configuration changed to
     * @param waiting  requests queued
     * @param running  requests running (paused with the pipelines)
     * @param arrivals α, requests arriving per second (the recent rate, without the backlog)
     * @param window   the re-planning interval, seconds (the shortest horizon)
     * @param pause    the change's pause, seconds
     */
    public static boolean lowersLatency(double phiNow, double phiNext, int waiting, int running, double arrivals,
                                        double window, double pause) {
        if (!(phiNow > 0)) {
            return phiNext > 0;
        }
        if (!(phiNext > phiNow)) {
            return false;
        }
        double q0 = Math.max(0, waiting) + Math.max(0, running);
        double horizon = Math.max(window, q0 / phiNow);
        double p = Math.min(Math.max(0, pause), horizon);
        double alpha = Math.max(0, arrivals);
        double without = queueIntegral(q0, alpha - phiNow, horizon);
        double with = queueIntegral(q0, alpha, p) + queueIntegral(q0 + alpha * p, alpha - phiNext, horizon - p);
        return with < without;
    }

    /** ∫₀ᵗ max(0, q + slope · s) ds for q ≥ 0: the queue's request-seconds when it moves at {@code slope}. */
    static double queueIntegral(double q, double slope, double t) {
        if (t <= 0) {
            return 0;
        }
        if (slope >= 0) {
            return q * t + slope * t * t / 2;
        }
        double empty = q / -slope; // when the queue drains
        double s = Math.min(t, empty);
        return q * s + slope * s * s / 2;
    }
}
