package io.spotserve.plan;

/**
 * When a workload-triggered re-plan is worth its pause (SpotServe+ of this project, beyond the paper): a
 * reconfiguration stops the pipelines it touches, so a change of configuration for the arrival rate is made only if
 * it pays that pause back while the present work lasts. Over the horizon H = max(window, work / φ_now) the current
 * configuration serves φ_now · H requests; the new one φ_next · (H − pause). Membership changes (preemptions,
 * acquisitions) are not gated: they must re-plan. Pure; used by the engine and by the evaluation's simulator, so
 * both apply the same rule.
 */
public final class ReplanGate {
    private ReplanGate() {
    }

    /**
     * Whether re-planning from throughput {@code phiNow} to {@code phiNext} (requests per second) repays a pause of
     * {@code pauseSeconds}, with {@code work} requests queued or running and a rate window of {@code windowSeconds}.
     * When nothing is served now ({@code phiNow} = 0) any configuration that serves is worth it.
     */
    public static boolean repaysPause(double phiNow, double phiNext, int work, double windowSeconds,
                                      double pauseSeconds) {
        double horizon = Math.max(windowSeconds, phiNow > 0 ? work / phiNow : Double.POSITIVE_INFINITY);
        if (Double.isInfinite(horizon)) {
            return phiNext > 0;
        }
        return phiNext * (horizon - pauseSeconds) > phiNow * horizon;
    }
}
