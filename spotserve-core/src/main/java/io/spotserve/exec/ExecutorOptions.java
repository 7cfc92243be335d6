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
    /** System property naming the default weight precision ({@code fp32} or {@code fp16}). */
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

    /** A copy keeping weights in {@code weights} precision. */
    public ExecutorOptions withWeights(WeightPrecision weights) {
        return new ExecutorOptions(threads, useVector, weights);
    }
}
