package io.spotserve.bench.gpu;

import io.spotserve.exec.WeightPrecision;
import io.spotserve.model.LlamaConfig;
import java.util.Objects;

/**
 * The memory-bandwidth bound of one decode step (issue 6's goal: batch-1 decode at >= 60% of it). Decode of a
 * batch reads every weight the step multiplies with once at the least, so no step can take less than
 * {@code weight bytes / bandwidth}: the weights counted are all layer matrices (wq, wk, wv, wo, w1, w2, w3) and
 * every classifier row at {@link WeightPrecision#bytes()} each, plus the RMSNorm vectors (attention, FFN,
 * final) counted at 4 bytes; the token-embedding table is not counted (a step gathers one row per entry).
 * KV-cache reads are left out of the bound (it is a bound on weights alone), and reported apart by
 * {@link #kvBytesPerStep}.
 */
public final class DecodeBound {
    private DecodeBound() {
    }

    /** Weight bytes one decode step reads: layer matrices and classifier rows in {@code weights}, norms fp32. */
    public static long weightBytesPerStep(LlamaConfig c, WeightPrecision weights) {
        Objects.requireNonNull(c, "config");
        Objects.requireNonNull(weights, "weights");
        long d = c.dim();
        long perLayerMatrices = 2 * d * d + 2L * c.kvDim() * d + 3L * c.hiddenDim() * d;
        long matrices = c.layers() * perLayerMatrices + c.vocabSize() * d;
        long norms = (2L * c.layers() + 1) * d;
        return matrices * weights.bytes() + norms * Float.BYTES;
    }

    /** Bytes of fp32 KV cache a step reads for {@code batch} sequences at context {@code positions} each. */
    public static long kvBytesPerStep(LlamaConfig c, int batch, int positions) {
        return c.kvBytesPerPosition() * batch * (long) positions;
    }

    /**
     * The least time of one step, in milliseconds, when {@code bytes} are read at {@code bytesPerSecond}.
     *
     * @throws IllegalArgumentException if the bandwidth is not positive
     */
    public static double boundMs(long bytes, double bytesPerSecond) {
        if (!(bytesPerSecond > 0)) {
            throw new IllegalArgumentException("bandwidth must be > 0 bytes/s, was " + bytesPerSecond);
        }
        return bytes / bytesPerSecond * 1e3;
    }

    /** The most tokens per second {@code batch} sequences can decode at: batch / bound step time. */
    public static double boundTokensPerSecond(int batch, long bytes, double bytesPerSecond) {
        return batch * 1e3 / boundMs(bytes, bytesPerSecond);
    }
}
