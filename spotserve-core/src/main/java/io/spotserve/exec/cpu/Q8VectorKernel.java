package io.spotserve.exec.cpu;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Q8Matrix#matmulScalar} with the integer block dot products on the Vector API: 32 weight bytes and 32
 * activation bytes are widened to shorts, multiplied (|q| ≤ 127, so each product fits a short), widened to two int
 * halves and added lane-wise (exact), converted to float, scaled and added to 16 float accumulators; no reduction per
 * block. The lane order is {@link Q8Matrix#matmulScalar}'s, so results are bit-identical to the scalar kernel. Loaded only when the {@code jdk.incubator.vector} module is present.
 */
final class Q8VectorKernel {
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_256;   // one block of 32 quants
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_512; // 32 shorts
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512; // 16 ints
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;   // 16 float accumulators

    private Q8VectorKernel() {
    }

    static void matmul(Q8Matrix w, int r0, int r1, byte[] qx, float[] dx, int batch, float[] out, int outOff,
                       int outStride) {
        int n = w.n;
        int blocks = n / Q8Matrix.BLOCK;
        byte[] q = w.q;
        float[] d = w.d;
        float[] acc = new float[Q8Matrix.LANES];
        for (int r = r0; r < r1; r++) {
            int wq = r * n;
            int wd = r * blocks;
            for (int b = 0; b < batch; b++) {
                int xq = b * n;
                int xd = b * blocks;
                FloatVector sum = FloatVector.zero(F);
                for (int k = 0; k < blocks; k++) {
                    int base = k * Q8Matrix.BLOCK;
                    ShortVector ws = (ShortVector) ByteVector.fromArray(B, q, wq + base)
                            .convertShape(VectorOperators.B2S, S, 0);
                    ShortVector xs = (ShortVector) ByteVector.fromArray(B, qx, xq + base)
                            .convertShape(VectorOperators.B2S, S, 0);
                    ShortVector p = ws.mul(xs);
                    IntVector lo = (IntVector) p.convertShape(VectorOperators.S2I, I, 0);
                    IntVector hi = (IntVector) p.convertShape(VectorOperators.S2I, I, 1);
                    FloatVector lane = (FloatVector) lo.add(hi).convertShape(VectorOperators.I2F, F, 0);
                    sum = sum.add(lane.mul(d[wd + k] * dx[xd + k]));
                }
                sum.intoArray(acc, 0);
                out[outOff + b * outStride + r] = Q8Matrix.sumLanes(acc);
            }
        }
    }
}
