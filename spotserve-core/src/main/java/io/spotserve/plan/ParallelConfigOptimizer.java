package io.spotserve.plan;

import java.util.Objects;

/**
 * The parallelization controller of SpotServe (§3.2, Algorithm 1): given the available instances N_t and the
 * arrival rate α_t, choose C_{t+1} = (D, P, M, B) — the lowest-latency configuration whose throughput reaches
 * α_t, otherwise the highest-throughput one on N_t — and the number of instances to add or release.
 *
 * <p>Two policies: {@link Policy#PAPER} (default) follows the paper's text — l_req includes a queueing term
 * and among configurations of similar latency the fewest instances win; {@link Policy#ARTIFACT} reproduces
 * what the authors' code did. Implementations are pure: same inputs, same decision; no threads, no clock.
 */
public interface ParallelConfigOptimizer {

    /** Which reading of Algorithm 1 to follow. */
    enum Policy {
        /**
         * The paper's text: enumerate (P, M, B, M1, M2) and D up to N_t + acquirable instances; l_req = l_sch +
         * l_exe with l_sch from a G/D/c queue of D·B slots (see {@code QueueingDelay}); among configurations with
         * φ &gt; α and l_req within the latency tolerance of the best, take the fewest instances (then the
         * lowest l_req). If none reaches α: maximum φ on N_t.
         */
        PAPER,
        /**
         * The artifact ({@code StrategyOptimizer.solve}): D = floor(GPUs / (P·M)) on N_t, minimum l_exe among
         * φ &gt;= α in enumeration order (M, B, M1, M2, P ascending; first wins ties), no queueing term, no
         * tie-break to fewer instances; else maximum φ.
         */
        ARTIFACT
    }

    /**
     * Decides C_{t+1}.
     *
     * @param availableInstances N_t: instances usable now (those under preemption notice excluded, those
     *                           still initializing included)
     * @param onDemandInstances  how many of them are on-demand (released first)
     * @param arrivalRate        α_t in requests per second (0: latency only)
     * @throws IllegalArgumentException for negative counts, more on-demand than available instances, or a
     *                                  negative or non-finite rate
     */
    Decision decide(int availableInstances, int onDemandInstances, double arrivalRate);

    /** {@link #decide(int, int, double)} with no on-demand instances. */
    default Decision decide(int availableInstances, double arrivalRate) {
        return decide(availableInstances, 0, arrivalRate);
    }

    /** A builder for the default implementation over {@code costModel}. */
    static Builder builder(CostModel costModel) {
        return new Builder(costModel);
    }

    /** Configuration of the default optimizer. Defaults follow the paper's evaluation and the artifact scripts. */
    final class Builder {
        final CostModel costModel;
        Policy policy = Policy.PAPER;
        MemoryRule memoryRule = MemoryRule.ARTIFACT_MIN_GPUS;
        LayerSplit layerSplit = LayerSplit.PADDED_DIVISIBLE;
        int maxBatch = 4;
        int promptTokens = 512;
        int outputTokens = 128;
        int maxTensorParallel;
        double latencyTolerance = 0.05;
        double arrivalCv = 1.0;
        int spareInstances;
        int acquirableInstances;

        Builder(CostModel costModel) {
            this.costModel = Objects.requireNonNull(costModel, "costModel");
            this.maxTensorParallel = costModel.profile().maxTensorParallel();
        }

        /** Policy; default {@link Policy#PAPER}. */
        public Builder policy(Policy policy) {
            this.policy = Objects.requireNonNull(policy, "policy");
            return this;
        }

        /** Memory-feasibility rule; default {@link MemoryRule#ARTIFACT_MIN_GPUS} (the paper's Table 1 minimums). */
        public Builder memoryRule(MemoryRule rule) {
            this.memoryRule = Objects.requireNonNull(rule, "memoryRule");
            return this;
        }

        /** Allowed pipeline degrees; default {@link LayerSplit#PADDED_DIVISIBLE}. */
        public Builder layerSplit(LayerSplit split) {
            this.layerSplit = Objects.requireNonNull(split, "layerSplit");
            return this;
        }

        /**
         * Largest B searched (B runs over powers of two up to it, and up to the largest batch the profile's
         * {@code embed} covers); default 4 as in the artifact's scripts.
         */
        public Builder maxBatch(int maxBatch) {
            if (maxBatch < 1) {
                throw new IllegalArgumentException("maxBatch must be >= 1, was " + maxBatch);
            }
            this.maxBatch = maxBatch;
            return this;
        }

        /** S_in of the workload; default 512. */
        public Builder promptTokens(int tokens) {
            if (tokens < 1) {
                throw new IllegalArgumentException("promptTokens must be >= 1, was " + tokens);
            }
            this.promptTokens = tokens;
            return this;
        }

        /** S_out of the workload; default 128. */
        public Builder outputTokens(int tokens) {
            if (tokens < 0) {
                throw new IllegalArgumentException("outputTokens must be >= 0, was " + tokens);
            }
            this.outputTokens = tokens;
            return this;
        }

        /** Largest tensor degree M searched; default the profile's {@code max_tp}. */
        public Builder maxTensorParallel(int maxTp) {
            if (maxTp < 1) {
                throw new IllegalArgumentException("maxTensorParallel must be >= 1, was " + maxTp);
            }
            this.maxTensorParallel = maxTp;
            return this;
        }

        /** The largest tensor degree M searched (the profile's {@code max_tp} unless set). */
        public int maxTensorParallel() {
            return maxTensorParallel;
        }

        /**
         * PAPER policy: configurations whose l_req is within {@code (1 + tolerance)} of the best count as
         * "similar" and the fewest instances among them wins; default 0.05 (the paper leaves it open).
         */
        public Builder latencyTolerance(double tolerance) {
            if (!(tolerance >= 0) || Double.isInfinite(tolerance)) {
                throw new IllegalArgumentException("latencyTolerance must be finite and >= 0, was " + tolerance);
            }
            this.latencyTolerance = tolerance;
            return this;
        }

        /** PAPER policy: coefficient of variation of inter-arrival times for l_sch; default 1 (Poisson). */
        public Builder arrivalCv(double cv) {
            if (!(cv >= 0) || Double.isInfinite(cv)) {
                throw new IllegalArgumentException("arrivalCv must be finite and >= 0, was " + cv);
            }
            this.arrivalCv = cv;
            return this;
        }

        /** Spare instances kept on top of what C needs (the paper keeps 2); default 0. */
        public Builder spareInstances(int spare) {
            if (spare < 0) {
                throw new IllegalArgumentException("spareInstances must be >= 0, was " + spare);
            }
            this.spareInstances = spare;
            return this;
        }

        /**
         * PAPER policy: how many instances beyond N_t the cloud can still provide (spot + on-demand), so that a
         * configuration needing more than N_t may be chosen (Alg. 1 line 2); default 0.
         */
        public Builder acquirableInstances(int extra) {
            if (extra < 0) {
                throw new IllegalArgumentException("acquirableInstances must be >= 0, was " + extra);
            }
            this.acquirableInstances = extra;
            return this;
        }

        /** An independent builder with the same settings (so one configuration can yield differently-scoped optimizers). */
        public Builder copy() {
            Builder b = new Builder(costModel);
            b.policy = policy;
            b.memoryRule = memoryRule;
            b.layerSplit = layerSplit;
            b.maxBatch = maxBatch;
            b.promptTokens = promptTokens;
            b.outputTokens = outputTokens;
            b.maxTensorParallel = maxTensorParallel;
            b.latencyTolerance = latencyTolerance;
            b.arrivalCv = arrivalCv;
            b.spareInstances = spareInstances;
            b.acquirableInstances = acquirableInstances;
            return b;
        }

        /**
         * The optimizer.
         *
         * @throws IllegalStateException when ARTIFACT is combined with acquirable instances (the artifact only
         *                               searches the instances it has)
         */
        public ParallelConfigOptimizer build() {
            if (policy == Policy.ARTIFACT && acquirableInstances > 0) {
                throw new IllegalStateException("the ARTIFACT policy searches only N_t; acquirableInstances was "
                        + acquirableInstances + ", expected 0");
            }
            return new Algorithm1(this);
        }
    }
}
