package io.spotserve.plan;

import java.util.Locale;
import java.util.Objects;

/**
 * The interruption arranger of SpotServe (§4.1, just-in-time arrangement): when a preemption or acquisition
 * notice arrives, decides how many more decoding iterations S_t a running batch executes before the engine
 * stops, and whether its context is then migrated or the requests are rerouted.
 *
 * <pre>
 *   preemption:  S_t = max { S in [0, R] : l_exe(S | C_t) &lt; T⁻ − T_mig }
 *   acquisition: S_t = min { S in [0, R] : l_exe(S | C_t) &gt;= T⁺ }      (R if no S qualifies)
 *   migrate only if T_mig &lt; l_exe(S_t | C_t), otherwise reroute now
 * </pre>
 * R is the batch's remaining output tokens; l_exe(S | C_t) = S decode steps of the batch under C_t (the prompt
 * phase is already done), from the {@link CostModel}. If S_t = R the batch simply finishes. The guard is applied
 * literally to both events, so a zero acquisition grace (S_t = 0, l_exe = 0) reroutes; a REROUTE always stops now
 * (S_t = 0) because the cache is not carried over. Pure and stateless.
 */
public final class InterruptionArranger {
    private final CostModel model;

    /** An arranger that prices decode steps with {@code model}. */
    public InterruptionArranger(CostModel model) {
        this.model = Objects.requireNonNull(model, "model");
    }

    /**
     * Arrangement after a preemption notice.
     *
     * @param config             C_t of the running batch (P, M, B are used)
     * @param decodeMicroBatches M2 of C_t
     * @param remainingTokens    R, output tokens the batch still has to generate
     * @param graceSeconds       T⁻, time left until the instance is taken away
     * @param migrationSeconds   T_mig, estimated migration time of the reparallelization
     * @throws IllegalArgumentException for negative R or times, or a (P, M, B, M2) the profile lacks
     */
    public Arrangement onPreemption(ParallelConfig config, int decodeMicroBatches, int remainingTokens,
                                    double graceSeconds, double migrationSeconds) {
        double step = stepSeconds(config, decodeMicroBatches, remainingTokens);
        requireTime("T⁻ (grace period)", graceSeconds);
        requireTime("T_mig (migration time)", migrationSeconds);
        double window = graceSeconds - migrationSeconds;
        if (!(window > 0)) {
            return new Arrangement(0, Arrangement.Action.REROUTE, 0, "grace " + fmt(graceSeconds)
                    + " s leaves no time after migration " + fmt(migrationSeconds) + " s; reroute now");
        }
        int s;
        if (remainingTokens * step < window) {
            s = remainingTokens;
        } else {
            s = (int) Math.min(remainingTokens, Math.max(0, Math.ceil(window / step) - 1));
            while (s < remainingTokens && (s + 1) * step < window) {
                s++;
            }
            while (s > 0 && s * step >= window) {
                s--;
            }
        }
        return guard(s, remainingTokens, step, migrationSeconds,
                "largest S with " + fmt(s * step) + " s < T⁻ − T_mig = " + fmt(window) + " s");
    }

    /**
     * Arrangement after an acquisition notice: keep decoding while the new instance initializes.
     *
     * @param initSeconds T⁺, remaining initialization time of the acquired instance
     * @throws IllegalArgumentException for negative R or times, or a (P, M, B, M2) the profile lacks
     */
    public Arrangement onAcquisition(ParallelConfig config, int decodeMicroBatches, int remainingTokens,
                                     double initSeconds, double migrationSeconds) {
        double step = stepSeconds(config, decodeMicroBatches, remainingTokens);
        requireTime("T⁺ (acquisition grace)", initSeconds);
        requireTime("T_mig (migration time)", migrationSeconds);
        int s;
        if (remainingTokens * step < initSeconds) {
            s = remainingTokens;
        } else {
            s = (int) Math.min(remainingTokens, Math.max(0, Math.ceil(initSeconds / step)));
            while (s > 0 && (s - 1) * step >= initSeconds) {
                s--;
            }
            while (s < remainingTokens && s * step < initSeconds) {
                s++;
            }
        }
        return guard(s, remainingTokens, step, migrationSeconds,
                "smallest S with " + fmt(s * step) + " s >= T⁺ = " + fmt(initSeconds) + " s");
    }

    private static Arrangement guard(int s, int remaining, double step, double migration, String why) {
        double l = s * step;
        if (s == remaining) {
            return new Arrangement(s, Arrangement.Action.FINISH, l,
                    "the batch finishes its " + remaining + " remaining tokens in " + fmt(l) + " s");
        }
        if (migration < l) {
            return new Arrangement(s, Arrangement.Action.MIGRATE, l, why + "; T_mig " + fmt(migration) + " s < "
                    + fmt(l) + " s, so migrate the cache");
        }
        return new Arrangement(0, Arrangement.Action.REROUTE, 0, why + "; but T_mig " + fmt(migration)
                + " s >= l_exe(S) " + fmt(l) + " s, so reroute now");
    }

    private double stepSeconds(ParallelConfig config, int decodeMicroBatches, int remainingTokens) {
        Objects.requireNonNull(config, "config");
        if (remainingTokens < 0) {
            throw new IllegalArgumentException("remaining tokens must be >= 0, was " + remainingTokens);
        }
        return model.decodeStepSeconds(config.pipelineStages(), config.tensorShards(), config.maxBatch(),
                decodeMicroBatches);
    }

    private static void requireTime(String what, double v) {
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException(what + " must be finite and >= 0 s, was " + v);
        }
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.3f", v);
    }
}
