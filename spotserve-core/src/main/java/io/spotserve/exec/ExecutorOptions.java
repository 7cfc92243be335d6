package io.spotserve.exec;

import java.util.Objects;

/**
 * Tuning knobs of an executor, independent of the implementation.
 *
 * @param threads   worker threads for one pipeline's kernels (CPU: matrix rows are split across them)
 * @param useVector whether a SIMD fast path may be used (CPU: the JDK Vector API); scalar otherwise
 * @param weights   how weights are kept ({@link WeightPrecision}); KV caches are fp32 either way
 */
public record ExecutorOptions(int threads, boolean useVector, WeightPrecision weights) {
    /** System property that disables the Vector API fast path when set to {@code false}. */
    public static final String VECTOR_PROPERTY = "spotserve.vector";
    /** System property naming the default weight precision ({@code fp32}, {@code fp16} or {@code q8_0}). */
    public static final String WEIGHTS_PROPERTY = "spotserve.weights";

    public ExecutorOptions {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, was " + threads);
        }
        Objects.requireNonNull(weights, "weights");
    }

    /** Options with fp32 weights. */
    public ExecutorOptions(int threads, boolean useVector) {
        this(threads, useVector, WeightPrecision.FP32);
    }

    /**
     * All available processors; the vector path unless {@code -Dspotserve.vector=false}; fp32 weights unless
     * {@code -Dspotserve.weights=fp16}.
     *
     * @throws IllegalArgumentException if {@code spotserve.weights} names no {@link WeightPrecision}
     */
    public static ExecutorOptions defaults() {
        String w = System.getProperty(WEIGHTS_PROPERTY);
        return new ExecutorOptions(Runtime.getRuntime().availableProcessors(),
                !"false".equalsIgnoreCase(System.getProperty(VECTOR_PROPERTY)),
                w == null ? WeightPrecision.FP32 : WeightPrecision.parse(w));
    }

    /** A copy with another thread count. */
    public ExecutorOptions withThreads(int threads) {
        return new ExecutorOptions(threads, useVector, weights);
    }

    /** A copy with the SIMD path allowed or forbidden. */
    public ExecutorOptions withVector(boolean useVector) {
        return new ExecutorOptions(threads, useVector, weights);
    }

    /**
     * The options to serve {@code model} with: this, except that where {@link #weights()} is the default
     * {@link WeightPrecision#FP32} and the model's layer matrices are stored as Q8_0 (a Q8_0 GGUF file), weights are
     * kept as {@link WeightPrecision#Q8_0} blocks: int8 stays int8 unless fp16 was asked for, or
     * {@code -Dspotserve.q8=false} (the {@link #KEEP_Q8_PROPERTY}) turns this off.
     */
    public ExecutorOptions forModel(io.spotserve.model.ModelWeights model) {
        Objects.requireNonNull(model, "model");
        if (weights == WeightPrecision.FP32 && !"false".equalsIgnoreCase(System.getProperty(KEEP_Q8_PROPERTY))
                && storedAsQ8(model)) {
            return withWeights(WeightPrecision.Q8_0);
        }
        return this;
    }

    /** System property that, set to {@code false}, makes {@link #forModel} dequantize Q8_0 files to fp32. */
    public static final String KEEP_Q8_PROPERTY = "spotserve.q8";

    /** Whether the model's attention and FFN matrices of layer 0 are stored as Q8_0 (what a Q8_0 GGUF file holds). */
    public static boolean storedAsQ8(io.spotserve.model.ModelWeights model) {
        io.spotserve.model.LlamaCheckpoint.Tensor[] matrices = {io.spotserve.model.LlamaCheckpoint.Tensor.WQ,
                io.spotserve.model.LlamaCheckpoint.Tensor.WK, io.spotserve.model.LlamaCheckpoint.Tensor.WV,
                io.spotserve.model.LlamaCheckpoint.Tensor.WO, io.spotserve.model.LlamaCheckpoint.Tensor.W1,
                io.spotserve.model.LlamaCheckpoint.Tensor.W3};
        for (io.spotserve.model.LlamaCheckpoint.Tensor t : matrices) {
            if (model.storedType(t, 0) != io.spotserve.model.TensorType.Q8_0) {
                return false;
            }
        }
        return true;
    }

    /** A copy keeping weights in {@code weights} precision. */
    public ExecutorOptions withWeights(WeightPrecision weights) {
        return new ExecutorOptions(threads, useVector, weights);
    }
}
