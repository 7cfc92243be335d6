package io.spotserve.exec.cpu;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import io.spotserve.model.HalfFloats;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Q8Blocks#matmul} with the integer block sums on the Vector API. Per block, the 32 weight bytes are widened
 * to shorts and multiplied by the 32 activation quants (already shorts, |q| ≤ 127, so each product fits a short);
 * the products, read as ints, are split into their low and high shorts and added ({@code (p << 16) + p}, shifted
 * back arithmetically: the pair sum ≤ 32,512 fits the high short), giving 16 exact int lanes
 * {@code p[2l] + p[2l+1]}; those are converted to float and fused-multiply-added into 16 float accumulators with the
 * block's scale (a table load, {@link Q8Blocks#scale}). No reduction per block; at the end of a row the 16 lanes
 * are summed as a shuffle-and-add halving tree. The lane order and the tree are {@link Q8Blocks#matmul}'s, so the
 * results are bit-identical to the scalar kernel.
 *
 * <p>Two shapes of the same arithmetic: {@link #matmulWide} holds a whole block in one 512-bit vector of shorts and
 * the accumulators in one 512-bit vector of floats (AVX-512); {@link #matmulNarrow} splits both into two 256-bit
 * halves (AVX2), whose first tree level is the sum of the two half accumulators. {@link #matmul} picks the one that
 * fits the machine's preferred vector size (on AVX2, 512-bit vectors are not intrinsified and would run boxed).
 * <p>{@link #quantizeActivations} is {@link Q8Blocks#quantizeActivations} on vectors, with the same bits.
 *
 * Loaded only when the {@code jdk.incubator.vector} module is present.
 */
final class Q8VectorKernel {
    private static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Short> S512 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    private static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    private static final VectorSpecies<Float> F256 = FloatVector.SPECIES_256;
    private static final VectorShuffle<Float> SWAP8 = VectorShuffle.fromOp(F512, i -> i ^ 8);
    private static final VectorShuffle<Float> SWAP4W = VectorShuffle.fromOp(F512, i -> i ^ 4);
    private static final VectorShuffle<Float> SWAP2W = VectorShuffle.fromOp(F512, i -> i ^ 2);
    private static final VectorShuffle<Float> SWAP1W = VectorShuffle.fromOp(F512, i -> i ^ 1);
    private static final VectorShuffle<Float> SWAP4 = VectorShuffle.fromOp(F256, i -> i ^ 4);
    private static final VectorShuffle<Float> SWAP2 = VectorShuffle.fromOp(F256, i -> i ^ 2);
    private static final VectorShuffle<Float> SWAP1 = VectorShuffle.fromOp(F256, i -> i ^ 1);
    /** Whether this machine's vectors are 512 bits for floats and shorts (AVX-512 with BW). */
    static final boolean WIDE = FloatVector.SPECIES_PREFERRED.length() >= 16
            && ShortVector.SPECIES_PREFERRED.length() >= 32;

    /** Floats per vector of the activation quantizer (the machine's preferred size; 32 must be a multiple). */
    private static final VectorSpecies<Float> FQ = FloatVector.SPECIES_PREFERRED;
    /** Shorts in as many lanes as {@link #FQ}: the quants' store shape. */
    private static final VectorSpecies<Short> SQ = FQ.vectorBitSize() >= 128
            ? VectorSpecies.of(short.class, VectorShape.forBitSize(FQ.vectorBitSize() / 2)) : null;
    private static final boolean QUANTIZE_VECTOR = SQ != null && Q8Blocks.BLOCK % FQ.length() == 0;

    private Q8VectorKernel() {
    }

    /** 1.5 · 2^23: {@code v + ROUND} rounds |v| < 2^22 to an integer (ties to even) held in the low mantissa bits. */
    private static final float ROUND = 12582912f;
    private static final int ROUND_BITS = 0x4B400000;
    /** The float just below 1/2, and 2^25 = 1 / (1/2 − BELOW_HALF). */
    private static final float BELOW_HALF = Math.nextDown(0.5f);
    private static final float TWO_25 = 0x1p25f;

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
                    m = m.max(FloatVector.fromArray(FQ, x, base + j).abs());
                }
                float amax = m.reduceLanes(VectorOperators.MAX);
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

    static void matmul(byte[] w, int wOff, int n, int r0, int r1, short[] qx, float[] dx, int batch, float[] out,
                       int outOff, int outStride) {
        if (WIDE) {
            matmulWide(w, wOff, n, r0, r1, qx, dx, batch, out, outOff, outStride);
        } else {
            matmulNarrow(w, wOff, n, r0, r1, qx, dx, batch, out, outOff, outStride);
        }
    }

    /** One row at a time, a block per 512-bit vector (see the class comment). */
    static void matmulWide(byte[] w, int wOff, int n, int r0, int r1, short[] qx, float[] dx, int batch,
                           float[] out, int outOff, int outStride) {
        int blocks = n / Q8Blocks.BLOCK;
        int rb = Q8Blocks.rowBytes(n);
        // One row at a time: two-row variants that share each activation block between the rows ran 2.5-3x slower
        // per weight on this JDK (AMD EPYC, C2), both here and in the earlier 256-bit kernel.
        for (int r = r0; r < r1; r++) {
            int row = wOff + r * rb;
            for (int b = 0; b < batch; b++) {
                int xq = b * n;
                int xd = b * blocks;
                FloatVector sum = FloatVector.zero(F512);
                for (int k = 0; k < blocks; k++) {
                    int at = row + k * Q8Blocks.BLOCK_BYTES;
                    ShortVector wv = (ShortVector) ByteVector.fromArray(B256, w, at + 2)
                            .convertShape(VectorOperators.B2S, S512, 0);
                    IntVector p = wv.mul(ShortVector.fromArray(S512, qx, xq + k * Q8Blocks.BLOCK)).reinterpretAsInts();
                    FloatVector f = (FloatVector) pairSums(p).convert(VectorOperators.I2F, 0);
                    sum = f.fma(FloatVector.broadcast(F512, Q8Blocks.scale(w, at) * dx[xd + k]), sum);
                }
                sum = sum.add(sum.rearrange(SWAP8));
                sum = sum.add(sum.rearrange(SWAP4W));
                sum = sum.add(sum.rearrange(SWAP2W));
                sum = sum.add(sum.rearrange(SWAP1W));
                out[outOff + b * outStride + r] = sum.lane(0);
            }
        }
    }

    /** One row at a time, each block as two 256-bit halves into two half accumulators (see the class comment). */
    static void matmulNarrow(byte[] w, int wOff, int n, int r0, int r1, short[] qx, float[] dx, int batch,
                             float[] out, int outOff, int outStride) {
        int blocks = n / Q8Blocks.BLOCK;
        int rb = Q8Blocks.rowBytes(n);
        for (int r = r0; r < r1; r++) {
            int row = wOff + r * rb;
            for (int b = 0; b < batch; b++) {
                int xq = b * n;
                int xd = b * blocks;
                FloatVector lo = FloatVector.zero(F256);
                FloatVector hi = FloatVector.zero(F256);
                for (int k = 0; k < blocks; k++) {
                    int at = row + k * Q8Blocks.BLOCK_BYTES;
                    int xa = xq + k * Q8Blocks.BLOCK;
                    FloatVector s = FloatVector.broadcast(F256, Q8Blocks.scale(w, at) * dx[xd + k]);
                    ShortVector w0 = (ShortVector) ByteVector.fromArray(B128, w, at + 2)
                            .convertShape(VectorOperators.B2S, S256, 0);
                    ShortVector w1 = (ShortVector) ByteVector.fromArray(B128, w, at + 18)
                            .convertShape(VectorOperators.B2S, S256, 0);
                    IntVector p0 = w0.mul(ShortVector.fromArray(S256, qx, xa)).reinterpretAsInts();
                    IntVector p1 = w1.mul(ShortVector.fromArray(S256, qx, xa + 16)).reinterpretAsInts();
                    lo = ((FloatVector) pairSums(p0).convert(VectorOperators.I2F, 0)).fma(s, lo);
                    hi = ((FloatVector) pairSums(p1).convert(VectorOperators.I2F, 0)).fma(s, hi);
                }
                FloatVector sum = lo.add(hi);
                sum = sum.add(sum.rearrange(SWAP4));
                sum = sum.add(sum.rearrange(SWAP2));
                sum = sum.add(sum.rearrange(SWAP1));
                out[outOff + b * outStride + r] = sum.lane(0);
            }
        }
    }

    /**
     * Each int lane of {@code p} holds two short products (low: the even one); the lane becomes their exact sum:
     * {@code (p << 16) + p} has {@code lo + hi} in its high short (no carry reaches it from the zero low half), and
     * the arithmetic shift brings it back signed. Exact while the sum fits a short, as it does for |qx| ≤ 127.
     */
    private static IntVector pairSums(IntVector p) {
        return p.lanewise(VectorOperators.LSHL, 16).add(p).lanewise(VectorOperators.ASHR, 16);
    }
}
