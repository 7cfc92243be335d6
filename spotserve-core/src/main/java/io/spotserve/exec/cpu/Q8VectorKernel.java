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
        float[] acc = new float[Q8Blocks.LANES];
        for (int r = r0; r < r1; r++) {
            int row = wOff + r * rb;
            for (int b = 0; b < batch; b++) {
                int xq = b * n;
                int xd = b * blocks;
                FloatVector sum = FloatVector.zero(F);
                for (int k = 0; k < blocks; k++) {
                    int at = row + k * Q8Blocks.BLOCK_BYTES;
                    int xa = xq + k * Q8Blocks.BLOCK;
                    ShortVector w0 = (ShortVector) ByteVector.fromArray(B, w, at + 2).convertShape(VectorOperators.B2S, S, 0);
                    ShortVector w1 = (ShortVector) ByteVector.fromArray(B, w, at + 18).convertShape(VectorOperators.B2S, S, 0);
                    ShortVector x0 = (ShortVector) ByteVector.fromArray(B, qx, xa).convertShape(VectorOperators.B2S, S, 0);
                    ShortVector x1 = (ShortVector) ByteVector.fromArray(B, qx, xa + 16).convertShape(VectorOperators.B2S, S, 0);
                    IntVector pairs = w0.mul(x0).add(w1.mul(x1)).reinterpretAsInts();
                    IntVector lanes = pairs.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                            .add(pairs.lanewise(VectorOperators.ASHR, 16));
                    FloatVector f = (FloatVector) lanes.convert(VectorOperators.I2F, 0);
                    float s = Q8Blocks.scale(w, at) * dx[xd + k];
                    sum = f.fma(FloatVector.broadcast(F, s), sum);
                }
                sum.intoArray(acc, 0);
                out[outOff + b * outStride + r] = Q8Blocks.sumLanes(acc);
            }
        }
    }
}
