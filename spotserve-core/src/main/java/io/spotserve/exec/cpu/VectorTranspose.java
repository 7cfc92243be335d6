package io.spotserve.exec.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The 4 × 4 squares of {@link CanonFloats#transpose} with 128-bit vectors (JDK Vector API): four loads of 4 floats,
 * two rounds of one-input rearranges and blends with constant masks, four stores (scratch measurements, 64-row
 * blocks: 17-19 GB/s against 8-10 for the scalar squares, whose every float is a load and a store of its own; wider
 * species with 8 × 8 or 16 × 16 shuffles ran at under 1 GB/s on JDK 17). Loaded only when the Vector API module is
 * present ({@link CanonFloats} checks before its first call), so the scalar path never touches the incubator module.
 */
final class VectorTranspose {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_128;
    /** Lanes 2, 3, 0, 1: swaps the halves (the first round moves 2 × 2 blocks). */
    private static final VectorShuffle<Float> HALVES = VectorShuffle.fromValues(S, 2, 3, 0, 1);
    private static final VectorMask<Float> HIGH_HALF = VectorMask.fromValues(S, false, false, true, true);
    /** Rotations by one lane up and down (the second round moves single floats). */
    private static final VectorShuffle<Float> UP = VectorShuffle.fromValues(S, 3, 0, 1, 2);
    private static final VectorShuffle<Float> DOWN = VectorShuffle.fromValues(S, 1, 2, 3, 0);
    private static final VectorMask<Float> ODD = VectorMask.fromValues(S, false, true, false, true);

    private VectorTranspose() {
    }

    /**
     * {@code d[dOff + i·dStride + k] = s[sOff + i + k·g]} for i in [0, rows4), k in [0, cols4) (export), or the
     * reverse assignment (import), both multiples of 4; {@code t} columns of every row at a time.
     */
    static void squares(float[] s, int sOff, int g, int rows4, int cols4, float[] d, int dOff, int dStride,
                        boolean importing, int t) {
        for (int k0 = 0; k0 < cols4; k0 += t) {
            int k1 = Math.min(cols4, k0 + t);
            for (int i = 0; i < rows4; i += 4) {
                int di = dOff + i * dStride;
                int si = sOff + i;
                if (importing) {
                    for (int k = k0; k < k1; k += 4) {
                        square(d, di + k, dStride, s, si + k * g, g);
                    }
                } else {
                    for (int k = k0; k < k1; k += 4) {
                        square(s, si + k * g, g, d, di + k, dStride);
                    }
                }
            }
        }
    }

    /** {@code b[bo + c·bs + r] = a[ao + r·as + c]} for r, c in [0, 4). */
    private static void square(float[] a, int ao, int as, float[] b, int bo, int bs) {
        FloatVector v0 = FloatVector.fromArray(S, a, ao);
        FloatVector v1 = FloatVector.fromArray(S, a, ao + as);
        FloatVector v2 = FloatVector.fromArray(S, a, ao + 2 * as);
        FloatVector v3 = FloatVector.fromArray(S, a, ao + 3 * as);
        // round 1: x0 = v0[0,1] v2[0,1], x2 = v0[2,3] v2[2,3], x1 = v1[0,1] v3[0,1], x3 = v1[2,3] v3[2,3]
        FloatVector x0 = v0.blend(v2.rearrange(HALVES), HIGH_HALF);
        FloatVector x2 = v0.rearrange(HALVES).blend(v2, HIGH_HALF);
        FloatVector x1 = v1.blend(v3.rearrange(HALVES), HIGH_HALF);
        FloatVector x3 = v1.rearrange(HALVES).blend(v3, HIGH_HALF);
        // round 2: lane c of v0..v3 side by side
        x0.blend(x1.rearrange(UP), ODD).intoArray(b, bo);
        x0.rearrange(DOWN).blend(x1, ODD).intoArray(b, bo + bs);
        x2.blend(x3.rearrange(UP), ODD).intoArray(b, bo + 2 * bs);
        x2.rearrange(DOWN).blend(x3, ODD).intoArray(b, bo + 3 * bs);
    }
}
