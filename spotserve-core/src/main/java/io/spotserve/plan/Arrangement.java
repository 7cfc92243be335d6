package io.spotserve.plan;

import java.util.Objects;

/**
 * What a pipeline does with its running batch when an interruption is announced — the just-in-time
 * arrangement of SpotServe §4.1, computed by {@link InterruptionArranger}.
 *
 * @param steps         S_t: decoding iterations to run before stopping
 * @param action        what happens to the batch after those steps
 * @param decodeSeconds l_exe(S_t | C_t), the time those steps take
 * @param reason        one line saying why
 */
public record Arrangement(int steps, Action action, double decodeSeconds, String reason) {

    /** The batch's fate after S_t steps. */
    public enum Action {
        /** Stop after S_t steps and migrate the KV cache with the new configuration (token-level commit). */
        MIGRATE,
        /** Stop now (S_t = 0) and hand the requests to other pipelines without their cache. */
        REROUTE,
        /** The batch finishes its remaining tokens within the window; nothing is interrupted. */
        FINISH
    }

    public Arrangement {
        Objects.requireNonNull(action, "action");
        Objects.requireNonNull(reason, "reason");
        if (steps < 0) {
            throw new IllegalArgumentException("steps must be >= 0, was " + steps);
        }
    }
}
