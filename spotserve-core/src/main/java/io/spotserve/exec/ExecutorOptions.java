package io.spotserve.exec;

/**
 * Tuning knobs of an executor, independent of the implementation.
 *
 * @param threads   worker threads for one pipeline's kernels (CPU: matrix rows are split across them)
 * @param useVector whether a SIMD fast path may be used (CPU: the JDK Vector API); scalar otherwise
 */
public record ExecutorOptions(int threads, boolean useVector) {
    /** System property that disables the Vector API fast path when set to {@code false}. */
    public static final String VECTOR_PROPERTY = "spotserve.vector";

    public ExecutorOptions {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, was " + threads);
        }
    }

    /** All available processors; the vector path unless {@code -Dspotserve.vector=false}. */
    public static ExecutorOptions defaults() {
        return new ExecutorOptions(Runtime.getRuntime().availableProcessors(),
                !"false".equalsIgnoreCase(System.getProperty(VECTOR_PROPERTY)));
    }

    /** A copy with another thread count. */
    public ExecutorOptions withThreads(int threads) {
        return new ExecutorOptions(threads, useVector);
    }

    /** A copy with the SIMD path allowed or forbidden. */
    public ExecutorOptions withVector(boolean useVector) {
        return new ExecutorOptions(threads, useVector);
    }
}
