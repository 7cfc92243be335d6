package io.spotserve.bench.eval;

import io.spotserve.plan.CostModel;
import io.spotserve.plan.ModelContext;
import io.spotserve.plan.PaperModel;
import io.spotserve.plan.ParallelConfigOptimizer;
import io.spotserve.trace.TraceEvent;

import java.util.List;
import java.util.Objects;

/**
 * One evaluation cell: a model, a spot availability history, the request arrivals and the timing assumptions
 * (paper §6.1). Every system of a cell sees exactly the same inputs.
 *
 * @param model          the paper's model
 * @param costModel      its cost model on the measured T4 profile
 * @param traceName      label written to the CSV files (A_S, B_S, A_S+O, B_S+O, MAF)
 * @param spotEvents     spot adds and removes (times from the trace; RATE/END events are ignored)
 * @param endSeconds     end of the trace (its DONE marker)
 * @param onDemandMixing "+O": the instance manager requests / releases on-demand instances from Algorithm 1's decision
 * @param arrivals       request arrival times, seconds, ascending
 * @param nominalRate    the workload's mean rate (req/s): α for the baselines and the instance manager, and the floor
 *                       of SpotServe's online estimate (the artifact's fixed "required throughput")
 * @param fluctuating    the rate changes over time (MAF): the baselines and the instance manager also follow the
 *                       online estimate max(nominal, 30-s window)
 * @param optimizerCv    arrival CV the PAPER policy's queueing term assumes
 * @param params         timing and size assumptions
 */
public record Scenario(PaperModel model, CostModel costModel, String traceName, List<TraceEvent> spotEvents,
                       double endSeconds, boolean onDemandMixing, double[] arrivals, double nominalRate,
                       boolean fluctuating, double optimizerCv, Params params) {

    public Scenario {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(costModel, "costModel");
        Objects.requireNonNull(traceName, "traceName");
        spotEvents = List.copyOf(spotEvents);
        Objects.requireNonNull(arrivals, "arrivals");
        Objects.requireNonNull(params, "params");
        if (!(nominalRate >= 0) || Double.isInfinite(nominalRate)) {
            throw new IllegalArgumentException("nominal rate must be finite and >= 0 req/s, was " + nominalRate);
        }
        if (!(endSeconds > 0)) {
            throw new IllegalArgumentException("trace end must be > 0 s, was " + endSeconds);
        }
        for (int i = 1; i < arrivals.length; i++) {
            if (arrivals[i] < arrivals[i - 1]) {
                throw new IllegalArgumentException("arrivals must be ascending; arrival " + i + " = " + arrivals[i]
                        + " < " + arrivals[i - 1]);
            }
        }
    }

    /** The model's byte model (weights, KV cache) for the device mapper. */
    public ModelContext context() {
        return ModelContext.of(model.shape());
    }

    /**
     * Timing and size assumptions.
     *
     * @param promptTokens        S_in (512)
     * @param outputTokens        S_out (128)
     * @param maxBatch            largest B Algorithm 1 may pick (8: B in {1, 2, 4, 8})
     * @param graceSeconds        preemption notice (30 s on AWS)
     * @param launchSeconds       launch + engine init of an acquired instance (about 2 min)
     * @param spareInstances      spare pool the instance manager keeps in +O cells (2)
     * @param maxInstances        the instance manager requests no instance beyond this many (10: the peak of the
     *                            replayed segments and of the artifact's *_ondemand files)
     * @param reloadBytesPerSecond weight loading from local disk / object storage, per instance
     * @param engineRestartSeconds restarting an inference engine (process, NCCL group) for a new configuration
     * @param drainSeconds        after the trace ends, how long unfinished requests may still complete
     * @param rateWindowSeconds   window of the online arrival-rate estimate α_t (and the re-check period)
     * @param spotServePolicy     Algorithm 1's reading used by the SpotServe family (spotserve, its ablations,
     *                            spotserve+) to choose their configuration; the baselines, on-demand fleets and the
     *                            "+O" instance manager always use {@link ParallelConfigOptimizer.Policy#PAPER}
     *                            (PAPER by default; ARTIFACT only in the sensitivity study)
     */
    public record Params(int promptTokens, int outputTokens, int maxBatch, double graceSeconds, double launchSeconds,
                         int spareInstances, int maxInstances, double reloadBytesPerSecond,
                         double engineRestartSeconds, double drainSeconds, double rateWindowSeconds,
                         ParallelConfigOptimizer.Policy spotServePolicy) {
        public Params {
            Objects.requireNonNull(spotServePolicy, "spotServePolicy");
            if (promptTokens < 1 || outputTokens < 1 || maxBatch < 1 || spareInstances < 0 || maxInstances < 1) {
                throw new IllegalArgumentException("token counts, batch and instance limits must be >= 1 (spare >= 0); were "
                        + promptTokens + ", " + outputTokens + ", " + maxBatch + ", " + spareInstances + ", " + maxInstances);
            }
            if (!(graceSeconds >= 0) || !(launchSeconds >= 0) || !(reloadBytesPerSecond > 0)
                    || !(engineRestartSeconds >= 0) || !(drainSeconds >= 0) || !(rateWindowSeconds > 0)) {
                throw new IllegalArgumentException("times must be >= 0 and rates > 0");
            }
        }

        /** The assumptions with the SpotServe family on Algorithm 1's PAPER policy (the default run). */
        public Params(int promptTokens, int outputTokens, int maxBatch, double graceSeconds, double launchSeconds,
                      int spareInstances, int maxInstances, double reloadBytesPerSecond, double engineRestartSeconds,
                      double drainSeconds, double rateWindowSeconds) {
            this(promptTokens, outputTokens, maxBatch, graceSeconds, launchSeconds, spareInstances, maxInstances,
                    reloadBytesPerSecond, engineRestartSeconds, drainSeconds, rateWindowSeconds,
                    ParallelConfigOptimizer.Policy.PAPER);
        }

        /** The paper's setup (§6.1) plus our stated assumptions for what it leaves open. */
        public static Params paper() {
            return new Params(512, 128, 8, 30, 120, 2, 10, 2e9, 5, 1800, 30);
        }

        /** A copy with another weight-loading bandwidth (bytes/s per instance). */
        public Params withReloadBytesPerSecond(double bytesPerSecond) {
            return new Params(promptTokens, outputTokens, maxBatch, graceSeconds, launchSeconds, spareInstances,
                    maxInstances, bytesPerSecond, engineRestartSeconds, drainSeconds, rateWindowSeconds, spotServePolicy);
        }

        /** A copy with another engine-restart time (seconds). */
        public Params withEngineRestartSeconds(double seconds) {
            return new Params(promptTokens, outputTokens, maxBatch, graceSeconds, launchSeconds, spareInstances,
                    maxInstances, reloadBytesPerSecond, seconds, drainSeconds, rateWindowSeconds, spotServePolicy);
        }

        /** A copy with another preemption notice (seconds before the instance is gone). */
        public Params withGraceSeconds(double seconds) {
            return new Params(promptTokens, outputTokens, maxBatch, seconds, launchSeconds, spareInstances,
                    maxInstances, reloadBytesPerSecond, engineRestartSeconds, drainSeconds, rateWindowSeconds,
                    spotServePolicy);
        }

        /** A copy with another launch + init delay of acquired instances (seconds). */
        public Params withLaunchSeconds(double seconds) {
            return new Params(promptTokens, outputTokens, maxBatch, graceSeconds, seconds, spareInstances,
                    maxInstances, reloadBytesPerSecond, engineRestartSeconds, drainSeconds, rateWindowSeconds,
                    spotServePolicy);
        }

        /** A copy whose SpotServe family uses {@code policy}. */
        public Params withSpotServePolicy(ParallelConfigOptimizer.Policy policy) {
            return new Params(promptTokens, outputTokens, maxBatch, graceSeconds, launchSeconds, spareInstances,
                    maxInstances, reloadBytesPerSecond, engineRestartSeconds, drainSeconds, rateWindowSeconds, policy);
        }
    }
}
