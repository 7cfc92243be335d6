package io.spotserve.plan;

/**
 * A parallel configuration C = (D, P, M, B) of SpotServe §2: D independent inference pipelines, each of
 * P pipeline stages, each stage split into M tensor shards, serving up to B requests at a time. It occupies
 * D·P·M GPUs.
 *
 * @param dataParallel   D, number of pipelines (replicas)
 * @param pipelineStages P, stages per pipeline
 * @param tensorShards   M, tensor-parallel shards per stage
 * @param maxBatch       B, maximum concurrent requests per pipeline
 */
public record ParallelConfig(int dataParallel, int pipelineStages, int tensorShards, int maxBatch)
        implements java.io.Serializable {

    public ParallelConfig {
        require("D (data parallel degree)", dataParallel);
        require("P (pipeline stages)", pipelineStages);
        require("M (tensor shards)", tensorShards);
        require("B (max batch)", maxBatch);
    }

    private static void require(String name, int value) {
        if (value < 1) {
            throw new IllegalArgumentException(name + " must be >= 1, was " + value);
        }
    }

    /** Shorthand in the paper's order. */
    public static ParallelConfig of(int d, int p, int m, int b) {
        return new ParallelConfig(d, p, m, b);
    }

    /** GPUs this configuration occupies: D·P·M. */
    public int gpus() {
        return dataParallel * pipelineStages * tensorShards;
    }

    /** Requests it can hold at once: D·B. */
    public int concurrentRequests() {
        return dataParallel * maxBatch;
    }

    @Override
    public String toString() {
        return "(D=" + dataParallel + ", P=" + pipelineStages + ", M=" + tensorShards + ", B=" + maxBatch + ")";
    }
}
