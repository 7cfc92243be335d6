package io.spotserve.plan;

import java.util.Objects;

/**
 * The SpotServe cost model (paper §2.2 Eq. 1–2 and §5): execution latency, throughput, per-device memory and
 * migration time of a parallel configuration, estimated offline from a {@link LatencyProfile} instead of being
 * measured online. Pure and immutable; all times in seconds.
 *
 * <p>Latency follows the authors' artifact ({@code solver.py::get_approx_latency}), which reproduces the
 * paper's Table 1 exactly. With L layers, Lp = ceil(L / P) layers per stage, micro-batch counts M1 (prompt)
 * and M2 (decode) dividing B, per-layer times {@code init[M][B/M1]} and {@code incr[M][B/M2]}:
 * <pre>
 *   t1    = init·Lp·(P + M1 − 1)/M1 + pp_init_comm·(P − 1)/M1       (prompt phase, ms)
 *   t2    = incr·Lp·(P + M2 − 1)    + pp_incr_comm·(P − 1)/M2       (one decode step, ms; not divided by M2, as in [A])
 *   l_exe = fix · (t1 · S_in/S_prof + S_out · t2 + 2 · embed[log2 B])
 *   φ(C)  = D · B / l_exe
 * </pre>
 * S_prof is the prompt length the profile was taken at (512); scaling the prompt phase linearly in S_in is our
 * assumption (the paper's cost model is piecewise-linear in tokens, the profiles hold one point) and is exact at
 * S_in = S_prof.
 */
public final class CostModel {
    private final LatencyProfile profile;
    private final ModelShape shape;
    private final Hardware hardware;
    private final int minWorldSize;
    // [log2 tp][log2 micro-batch] in ms; NaN where the profile has no entry
    private final double[][] initMs;
    private final double[][] incrMs;
    private final double[] embedMs;

    private CostModel(LatencyProfile profile, ModelShape shape, Hardware hardware, int minWorldSize) {
        this.profile = Objects.requireNonNull(profile, "profile");
        this.shape = Objects.requireNonNull(shape, "shape");
        this.hardware = Objects.requireNonNull(hardware, "hardware");
        if (minWorldSize < 1) {
            throw new IllegalArgumentException("minWorldSize must be >= 1, was " + minWorldSize);
        }
        this.minWorldSize = minWorldSize;
        if (profile.layerNum() != shape.layers() || profile.hiddenSize() != shape.hidden()) {
            throw new IllegalArgumentException("profile '" + profile.name() + "' is for " + profile.layerNum()
                    + " layers of width " + profile.hiddenSize() + " but model '" + shape.name() + "' has "
                    + shape.layers() + " layers of width " + shape.hidden());
        }
        int tpSlots = log2(profile.layerTimes().lastKey()) + 1;
        int bSlots = 0;
        for (var row : profile.layerTimes().values()) {
            bSlots = Math.max(bSlots, log2(row.lastKey()) + 1);
        }
        initMs = new double[tpSlots][bSlots];
        incrMs = new double[tpSlots][bSlots];
        for (int i = 0; i < tpSlots; i++) {
            java.util.Arrays.fill(initMs[i], Double.NaN);
            java.util.Arrays.fill(incrMs[i], Double.NaN);
        }
        profile.layerTimes().forEach((tp, row) -> row.forEach((b, t) -> {
            initMs[log2(tp)][log2(b)] = t.initMs();
            incrMs[log2(tp)][log2(b)] = t.incrMs();
        }));
        embedMs = profile.embedMs().stream().mapToDouble(Double::doubleValue).toArray();
    }

    /**
     * A cost model.
     *
     * @param minWorldSize the artifact's minimum GPU count (1 if unknown), used by {@link MemoryRule#ARTIFACT_MIN_GPUS}
     * @throws IllegalArgumentException if the profile's layer count or width differs from the shape's
     */
    public static CostModel of(LatencyProfile profile, ModelShape shape, Hardware hardware, int minWorldSize) {
        return new CostModel(profile, shape, hardware, minWorldSize);
    }

    /**
     * The cost model of a llama2.c model served by our own executors, from a profile of that executor
     * ({@code io.spotserve.exec.ExecutorProfiler}). Memory is the exact byte count of {@link ModelShape#of(String,
     * LlamaConfig)}; plan with {@link MemoryRule#DEVICE_MEMORY} (the artifact's minimum GPU count is a property
     * of the paper's models and is 1 here).
     *
     * @throws IllegalArgumentException if the profile's layer count or width differs from the model's
     */
    public static CostModel of(LatencyProfile profile, String name, io.spotserve.model.LlamaConfig config,
                               Hardware hardware) {
        return new CostModel(profile, ModelShape.of(name, config), hardware, 1);
    }

    /** The cost model of one of the paper's models on g4dn.12xlarge with its artifact profile. */
    public static CostModel of(PaperModel model, LatencyProfile profile) {
        return new CostModel(profile, model.shape(), Hardware.G4DN_12XLARGE, model.artifactMinGpus());
    }

    /** The latency profile the times come from. */
    public LatencyProfile profile() {
        return profile;
    }

    /** The model's sizes (memory and migration volumes). */
    public ModelShape shape() {
        return shape;
    }

    /** The instance type (GPUs per instance, memory, bandwidth, prices). */
    public Hardware hardware() {
        return hardware;
    }

    /** The artifact's {@code min_world_size} for this model. */
    public int minWorldSize() {
        return minWorldSize;
    }

    /** Layers of the busiest pipeline stage: ceil(L / P). */
    public int layersPerStage(int stages) {
        requireAtLeast("P (pipeline stages)", stages, 1);
        return (profile.layerNum() + stages - 1) / stages;
    }

    /** Prompt-phase time of one batch of B requests with S_in prompt tokens (fix factor included). */
    public double prefillSeconds(int stages, int shards, int batch, int prefillMicroBatches, int promptTokens) {
        check(stages, shards, batch, prefillMicroBatches, "prefill");
        requireAtLeast("S_in (prompt tokens)", promptTokens, 1);
        return prefillMs(stages, shards, batch, prefillMicroBatches) * promptTokens / profile.promptTokens()
                * profile.finalFixFactor() / 1000.0;
    }

    /** Time of one incremental decoding step of a batch of B requests (fix factor included). */
    public double decodeStepSeconds(int stages, int shards, int batch, int decodeMicroBatches) {
        check(stages, shards, batch, decodeMicroBatches, "decode");
        return decodeMs(stages, shards, batch, decodeMicroBatches) * profile.finalFixFactor() / 1000.0;
    }

    /** l_exe(S | C): time to decode {@code steps} more tokens of a running batch (prefill already done). */
    public double decodeSeconds(int stages, int shards, int batch, int decodeMicroBatches, int steps) {
        requireAtLeast("decode steps", steps, 0);
        return steps * decodeStepSeconds(stages, shards, batch, decodeMicroBatches);
    }

    /** Embedding and classifier time of one request batch: 2·embed[log2 B] (fix factor included). */
    public double embedSeconds(int batch) {
        checkBatch(batch);
        return 2 * embedMs[log2(batch)] * profile.finalFixFactor() / 1000.0;
    }

    /** l_exe(C, S_in, S_out): end-to-end execution time of one batch (Eq. 2 with the artifact's terms). */
    public double executionSeconds(int stages, int shards, int batch, int prefillMicroBatches,
                                   int decodeMicroBatches, int promptTokens, int outputTokens) {
        check(stages, shards, batch, prefillMicroBatches, "prefill");
        check(stages, shards, batch, decodeMicroBatches, "decode");
        requireAtLeast("S_in (prompt tokens)", promptTokens, 1);
        requireAtLeast("S_out (output tokens)", outputTokens, 0);
        return executionMs(stages, shards, batch, prefillMicroBatches, decodeMicroBatches, promptTokens,
                outputTokens) / 1000.0;
    }

    /** φ(C) = D·B / l_exe in requests per second. */
    public double throughput(ParallelConfig c, int prefillMicroBatches, int decodeMicroBatches, int promptTokens,
                             int outputTokens) {
        double l = executionSeconds(c.pipelineStages(), c.tensorShards(), c.maxBatch(), prefillMicroBatches,
                decodeMicroBatches, promptTokens, outputTokens);
        return c.dataParallel() * c.maxBatch() / l;
    }

    /**
     * Bytes one GPU holds for (P, M, B): the busiest stage's ceil(L/P) layers plus the tied embedding and
     * position tables (held by the first and last stage; counted for every stage, a safe upper bound), and the
     * KV cache of B requests of S_in + S_out tokens for those layers, all divided over M shards — except, for
     * {@link ModelShape.Family#LLAMA} shapes, the RMSNorm vectors our executors replicate on every shard and the
     * extra vocabulary row of an uneven split, so that the count bounds what a device of our executors holds.
     */
    public long deviceMemoryBytes(int stages, int shards, int batch, int promptTokens, int outputTokens) {
        requireAtLeast("P (pipeline stages)", stages, 1);
        requireAtLeast("M (tensor shards)", shards, 1);
        requireAtLeast("B (batch)", batch, 1);
        requireAtLeast("S_in (prompt tokens)", promptTokens, 1);
        requireAtLeast("S_out (output tokens)", outputTokens, 0);
        return memoryBytes(stages, shards, batch, promptTokens, outputTokens);
    }

    /** Whether (P, M, B) fits under {@code rule}. */
    public boolean fits(MemoryRule rule, int stages, int shards, int batch, int promptTokens, int outputTokens) {
        Objects.requireNonNull(rule, "rule");
        requireAtLeast("P (pipeline stages)", stages, 1);
        requireAtLeast("M (tensor shards)", shards, 1);
        requireAtLeast("B (batch)", batch, 1);
        requireAtLeast("S_in (prompt tokens)", promptTokens, 1);
        requireAtLeast("S_out (output tokens)", outputTokens, 0);
        return fitsUnchecked(rule, stages, shards, batch, promptTokens, outputTokens);
    }

    /**
     * Migration time T_mig for a plan whose busiest instance sends or receives {@code maxBytesPerInstance}
     * bytes: bytes·8 / bandwidth + the fixed overhead (the artifact's estimate, §4 of the digest).
     */
    public double migrationSeconds(long maxBytesPerInstance) {
        if (maxBytesPerInstance < 0) {
            throw new IllegalArgumentException("bytes per instance must be >= 0, was " + maxBytesPerInstance);
        }
        return maxBytesPerInstance * 8.0 / (hardware.networkGbps() * 1e9) + hardware.migrationOverheadSeconds();
    }

    // ---- unchecked fast paths for the optimizer (arguments already validated) ----

    boolean hasTimes(int shards, int microBatch) {
        int t = log2(shards);
        int b = log2(microBatch);
        return t < initMs.length && b < initMs[t].length && !Double.isNaN(initMs[t][b]);
    }

    boolean hasEmbed(int batch) {
        return log2(batch) < embedMs.length;
    }

    double prefillMs(int stages, int shards, int batch, int m1) {
        int lp = (profile.layerNum() + stages - 1) / stages;
        double init = initMs[log2(shards)][log2(batch / m1)];
        return init * lp * (stages + m1 - 1) / m1 + profile.ppInitCommMs() / m1 * (stages - 1);
    }

    double decodeMs(int stages, int shards, int batch, int m2) {
        int lp = (profile.layerNum() + stages - 1) / stages;
        double incr = incrMs[log2(shards)][log2(batch / m2)];
        return incr * lp * (stages + m2 - 1) + profile.ppIncrCommMs() / m2 * (stages - 1);
    }

    double executionMs(int stages, int shards, int batch, int m1, int m2, int promptTokens, int outputTokens) {
        double t1 = prefillMs(stages, shards, batch, m1);
        if (promptTokens != profile.promptTokens()) {
            t1 = t1 * promptTokens / profile.promptTokens();
        }
        double t2 = decodeMs(stages, shards, batch, m2);
        return (t1 + t2 * outputTokens + 2 * embedMs[log2(batch)]) * profile.finalFixFactor();
    }

    long memoryBytes(int stages, int shards, int batch, int promptTokens, int outputTokens) {
        long lp = (shape.layers() + stages - 1) / stages;
        long bpp = shape.bytesPerParameter();
        // our executors replicate RMSNorm vectors on every shard (ShardLayout); the GPT formula splits them
        long replicated = shape.family() == ModelShape.Family.LLAMA ? lp * 2 * shape.hidden() + shape.hidden() : 0;
        long split = lp * shape.layerParameters() + shape.embeddingParameters() - replicated;
        // vocabulary rows split unevenly when M does not divide V: the largest shard holds ceil(V/M) rows
        long unevenRows = shape.family() != ModelShape.Family.LLAMA || shape.vocab() % shards == 0 ? 0
                : (shape.separateClassifier() ? 2L : 1L) * shape.hidden();
        long kv = (long) batch * (promptTokens + outputTokens) * lp * shape.kvBytesPerTokenPerLayer();
        return (split * bpp + kv + shards - 1) / shards + (replicated + unevenRows) * bpp;
    }

    boolean fitsUnchecked(MemoryRule rule, int stages, int shards, int batch, int promptTokens, int outputTokens) {
        if (rule == MemoryRule.ARTIFACT_MIN_GPUS) {
            return stages >= (minWorldSize + shards - 1) / shards;
        }
        return shape.heads() % shards == 0 && shape.kvHeads() % shards == 0
                && memoryBytes(stages, shards, batch, promptTokens, outputTokens) <= hardware.gpuMemoryBytes();
    }

    // ---- validation ----

    private void check(int stages, int shards, int batch, int microBatches, String phase) {
        requireAtLeast("P (pipeline stages)", stages, 1);
        if (shards < 1 || Integer.bitCount(shards) != 1 || !profile.layerTimes().containsKey(shards)) {
            throw new IllegalArgumentException("M (tensor shards) " + shards + " is not profiled; profile '"
                    + profile.name() + "' has tp-" + profile.layerTimes().keySet());
        }
        checkBatch(batch);
        if (microBatches < 1 || Integer.bitCount(microBatches) != 1 || microBatches > batch) {
            throw new IllegalArgumentException(phase + " micro-batches " + microBatches
                    + " must be a power of two in [1, B=" + batch + "]");
        }
        if (!hasTimes(shards, batch / microBatches)) {
            throw new IllegalArgumentException("profile '" + profile.name() + "' has no tp-" + shards + "/bsz-"
                    + batch / microBatches + " (B=" + batch + ", " + phase + " micro-batches " + microBatches + ")");
        }
    }

    private void checkBatch(int batch) {
        if (batch < 1 || Integer.bitCount(batch) != 1 || !hasEmbed(batch)) {
            throw new IllegalArgumentException("B (batch) " + batch + " must be a power of two <= "
                    + (1 << (embedMs.length - 1)) + " (profile '" + profile.name() + "' embed has "
                    + embedMs.length + " entries)");
        }
    }

    private static void requireAtLeast(String what, int v, int min) {
        if (v < min) {
            throw new IllegalArgumentException(what + " must be >= " + min + ", was " + v);
        }
    }

    static int log2(int powerOfTwo) {
        return 31 - Integer.numberOfLeadingZeros(powerOfTwo);
    }
}
