package io.spotserve.plan;

import java.util.Objects;

/**
 * A parallel configuration with its micro-batching and the cost model's estimates — one row of the search of
 * Algorithm 1 (SpotServe §2.3): l_exe, the scheduling (queueing) delay l_sch, l_req = l_sch + l_exe, φ(C).
 *
 * @param config                 C = (D, P, M, B)
 * @param prefillMicroBatches    M1, micro-batches of the prompt phase (divides B)
 * @param decodeMicroBatches     M2, micro-batches of the decode phase (divides B)
 * @param executionSeconds       l_exe(C) for the optimizer's S_in, S_out
 * @param schedulingSeconds      l_sch: estimated queueing delay at the decision's arrival rate (0 for the
 *                               artifact policy, which ignores it; +∞ when φ(C) does not exceed the rate)
 * @param requestLatencySeconds  l_req = l_sch + l_exe
 * @param throughputRps          φ(C) = D·B / l_exe, requests per second
 * @param deviceMemoryBytes      bytes on the fullest GPU (weights + KV cache), see {@link CostModel#deviceMemoryBytes}
 */
public record ConfigEstimate(ParallelConfig config, int prefillMicroBatches, int decodeMicroBatches,
                             double executionSeconds, double schedulingSeconds, double requestLatencySeconds,
                             double throughputRps, long deviceMemoryBytes) {
    public ConfigEstimate {
        Objects.requireNonNull(config, "config");
    }

    /** GPUs used: D·P·M. */
    public int gpus() {
        return config.gpus();
    }
}
