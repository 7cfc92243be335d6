package io.spotserve.exec.cpu;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Q8Blocks#matmul} with the integer block sums on the Vector API, in 256-bit vectors (AVX2): the two halves of
 * a block's 32 weight bytes and 32 activation bytes are widened to 16 shorts each and multiplied (|q| ≤ 127, so each
 * product fits a short, and so does the sum of the two halves' products, ≤ 32,258); the 16 short sums, read as 8
 * ints, are split into their low and high shorts by shifts and added, giving 8 exact int lanes
 * {@code p[2l] + p[2l+1] + p[2l+16] + p[2l+17]}; those are converted to float and fused-multiply-added into 8 float
 * accumulators with the block's scale. No reduction per block. The lane order is {@link Q8Blocks#matmul}'s, so the
 * results are bit-identical to the scalar kernel. Loaded only when the {@code jdk.incubator.vector} module is present.
 */
final class Q8VectorKernel {
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;    // half a block: 16 quants
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;  // 16 shorts
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;  // 8 float accumulators

    private Q8VectorKernel() {
    }

    static void matmul(byte[] w, int wOff, int n, int r0, int r1, byte[] qx, float[] dx, int batch, float[] out,
                       int outOff, int outStride) {
        int blocks = n / Q8Blocks.BLOCK;
        int rb = Q8Blocks.rowBytes(n);
        // One row at a time. A two-row variant that shared each activation block's widening between the rows ran
        // 3x slower per weight on matrices beyond the L2 cache (0.23-0.26 vs 0.07-0.09 ns per weight, 24 MB of Q8_0
        // rows, AMD EPYC, JDK 17 C2): it made the 25M model's Q8_0 decode slower than fp32 on a quiet machine.
        for (int r = r0; r < r1; r++) {
            int row = wOff + r * rb;
            for (int b = 0; b < batch; b++) {
                int xq = b * n;
                int xd = b * blocks;
                FloatVector sum = FloatVector.zero(F);
                for (int k = 0; k < blocks; k++) {
                    int at = row + k * Q8Blocks.BLOCK_BYTES;
                    int xa = xq + k * Q8Blocks.BLOCK;
                    FloatVector f = lanes(widen(w, at + 2), widen(w, at + 18), widen(qx, xa), widen(qx, xa + 16));
                    sum = f.fma(FloatVector.broadcast(F, Q8Blocks.scale(w, at) * dx[xd + k]), sum);
                }
                out[outOff + b * outStride + r] = sumLanes(sum);
            }
        }
    }

    /**
     * The lanes summed in lane order, as {@link Q8Blocks#sumLanes}. Lane by lane rather than {@code intoArray} into a
     * scratch array: in the executor's compilation context (this kernel inlined into the FFN task) C2 failed to
     * intrinsify that store ("failed to inline (intrinsic)" in {@code -XX:+PrintInlining}), so the accumulator was
     * boxed: the Q8_0 decode step allocated 52.6 MB per step and ran slower than fp32.
     */
    private static float sumLanes(FloatVector v) {
        float s = 0f;
        for (int l = 0; l < Q8Blocks.LANES; l++) {
            s += v.lane(l);
        }
        return s;
    }

    /** 16 signed bytes at {@code a[at]} widened to 16 shorts. */
    private static ShortVector widen(byte[] a, int at) {
        return (ShortVector) ByteVector.fromArray(B, a, at).convertShape(VectorOperators.B2S, S, 0);
    }

    /**
     * The 8 exact int lanes of one block, as floats: {@code p[2l] + p[2l+1] + p[2l+16] + p[2l+17]} from the short
     * products of the weight halves {@code w0, w1} and the activation halves {@code x0, x1}.
     */
    private static FloatVector lanes(ShortVector w0, ShortVector w1, ShortVector x0, ShortVector x1) {
        IntVector pairs = w0.mul(x0).add(w1.mul(x1)).reinterpretAsInts();
        IntVector sums = pairs.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                .add(pairs.lanewise(VectorOperators.ASHR, 16));
        return (FloatVector) sums.convert(VectorOperators.I2F, 0);
    }
}
