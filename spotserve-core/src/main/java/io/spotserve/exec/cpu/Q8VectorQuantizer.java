package io.spotserve.exec.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import io.spotserve.model.HalfFloats;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Q8Blocks#quantizeActivations} on the Vector API, with the same bits (the activation side of every Q8_0
 * product; the product is {@link Q8TiledKernel}). Loaded only when the {@code jdk.incubator.vector} module is present.
 */
final class Q8VectorQuantizer {
    /** Floats per vector of the activation quantizer (the machine's preferred size; 32 must be a multiple). */
    private static final VectorSpecies<Float> FQ = FloatVector.SPECIES_PREFERRED;
    /** Shorts in as many lanes as {@link #FQ}: the quants' store shape. */
    private static final VectorSpecies<Short> SQ = FQ.vectorBitSize() >= 128
            ? VectorSpecies.of(short.class, VectorShape.forBitSize(FQ.vectorBitSize() / 2)) : null;
    private static final boolean QUANTIZE_VECTOR = SQ != null && Q8Blocks.BLOCK % FQ.length() == 0;

    private Q8VectorQuantizer() {
    }

    /** 1.5 · 2^23: {@code v + ROUND} rounds |v| < 2^22 to an integer (ties to even) held in the low mantissa bits. */
    private static final float ROUND = 12582912f;
    private static final int ROUND_BITS = 0x4B400000;
    /** The float just below 1/2, and 2^25 = 1 / (1/2 − BELOW_HALF). */
    private static final float BELOW_HALF = Math.nextDown(0.5f);
    private static final float TWO_25 = 0x1p25f;
    private static final FloatVector NO_MAX = FloatVector.broadcast(FQ, Float.NEGATIVE_INFINITY);

    /**
     * {@link Q8Blocks#quantizeActivations} with vectors, giving the same bits: the block's largest magnitude as a
     * lane-wise max (exact in any order), the scale and its reciprocal computed as there, and each quant
     * {@code Math.round(v)} of {@code v = x · inv} (|v| ≤ 127.5) rebuilt exactly: {@code t = v + 1.5·2^23} rounds v
     * to the nearest integer r, ties to even, with r in t's low bits; the remainder {@code f = v − r} (in [−1/2, 1/2])
     * is exact, and where {@code f = 1/2} (a tie that went down) t is raised by one, so ties go toward +∞ as in
     * {@code Math.round}: {@code (max(f, BELOW_HALF) − BELOW_HALF) · 2^25} is exactly 1 there and 0 everywhere else
     * (no float lies between BELOW_HALF and 1/2). No float-to-int conversion (JDK 17 does not intrinsify {@code F2I};
     * it allocated ~2 KB per block) and no mask (a lane compare fell back to Java in some compilations). A block
     * holding NaN or an infinity, and machines whose vectors do not divide a block, take the scalar path.
     */
    static void quantizeActivations(float[] x, int xStride, int batch, int n, short[] qx, float[] dx) {
        if (!QUANTIZE_VECTOR) {
            Q8Blocks.quantizeActivations(x, xStride, batch, n, qx, dx);
            return;
        }
        int blocks = n / Q8Blocks.BLOCK;
        int lanes = FQ.length();
        for (int b = 0; b < batch; b++) {
            for (int k = 0; k < blocks; k++) {
                int base = b * xStride + k * Q8Blocks.BLOCK;
                FloatVector m = FloatVector.fromArray(FQ, x, base).abs();
                for (int j = lanes; j < Q8Blocks.BLOCK; j += lanes) {
                    m = FloatVector.fromArray(FQ, x, base + j).abs().max(m); // fresh receiver: VectorKernels, FRESH
                }
                float amax = NO_MAX.max(m).reduceLanes(VectorOperators.MAX); // max(-inf, m) == m
                int q = b * n + k * Q8Blocks.BLOCK;
                if (!(amax < Float.POSITIVE_INFINITY)) {
                    Q8Blocks.quantizeBlock(x, base, qx, q, dx, b * blocks + k);
                    continue;
                }
                float d = amax / 127f;
                float inv = d != 0 ? 1f / d : 0f;
                dx[b * blocks + k] = HalfFloats.round(d);
                for (int j = 0; j < Q8Blocks.BLOCK; j += lanes) {
                    FloatVector v = FloatVector.fromArray(FQ, x, base + j).mul(inv);
                    FloatVector t = v.add(ROUND);
                    FloatVector f = v.sub(t.sub(ROUND));
                    t = t.add(f.max(BELOW_HALF).sub(BELOW_HALF).mul(TWO_25));
                    ((ShortVector) t.reinterpretAsInts().sub(ROUND_BITS).convertShape(VectorOperators.I2S, SQ, 0))
                            .intoArray(qx, q + j);
                }
            }
        }
    }
}
