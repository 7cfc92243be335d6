package io.spotserve.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * binary16 conversions against a brute-force oracle: the value of every half is decoded independently (as an
 * exact BigDecimal from its fields), and the half nearest to a float is found by binary search over all finite
 * halves in value order, ties to the even mantissa, overflow past 65520 to infinity.
 */
class HalfFloatsTest {
    /** Every finite non-negative half in increasing order (bits 0x0000 .. 0x7bff are ordered by value). */
    private static final int MAX_FINITE = 0x7bff;

    /** Exact value of half bits from the IEEE fields, computed without float arithmetic. */
    private static BigDecimal exact(int bits) {
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        BigDecimal v = exp == 0
                ? new BigDecimal(mant).multiply(BigDecimal.ONE.divide(new BigDecimal(1 << 24)))
                : new BigDecimal(1024 + mant).multiply(pow2(exp - 15 - 10));
        return (bits & 0x8000) != 0 ? v.negate() : v;
    }

    private static BigDecimal pow2(int e) {
        return e >= 0 ? new BigDecimal(1L << e) : BigDecimal.ONE.divide(new BigDecimal(1L << -e));
    }

    /** The oracle: nearest half bits to a finite float. */
    private static short nearest(float f) {
        BigDecimal a = new BigDecimal(Math.abs((double) f));
        int sign = Float.floatToRawIntBits(f) < 0 ? 0x8000 : 0;
        BigDecimal max = exact(MAX_FINITE);
        BigDecimal overflow = max.add(pow2(15 - 10).divide(new BigDecimal(2))); // 65520: halfway to 2^16
        if (a.compareTo(overflow) >= 0) {
            return (short) (sign | 0x7c00);
        }
        int lo = 0;
        int hi = MAX_FINITE;
        while (lo < hi) { // smallest half >= a
            int mid = (lo + hi) >>> 1;
            if (exact(mid).compareTo(a) >= 0) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        int best = lo;
        if (lo > 0 && exact(lo).compareTo(a) != 0) {
            BigDecimal up = exact(lo).subtract(a);
            BigDecimal down = a.subtract(exact(lo - 1));
            int cmp = down.compareTo(up);
            if (cmp < 0 || (cmp == 0 && ((lo - 1) & 1) == 0)) {
                best = lo - 1;
            }
        }
        if (a.compareTo(max) > 0) {
            best = MAX_FINITE; // between 65504 and 65520: rounds down
        }
        return (short) (sign | best);
    }

    @Test
    void everyHalfDecodesExactlyAndRoundTrips() {
        for (int bits = 0; bits < 0x10000; bits++) {
            short h = (short) bits;
            float f = HalfFloats.toFloat(h);
            int exp = (bits >>> 10) & 0x1f;
            if (exp == 0x1f) {
                assertTrue((bits & 0x3ff) == 0 ? Float.isInfinite(f) : Float.isNaN(f), Integer.toHexString(bits));
                continue;
            }
            assertEquals(0, exact(bits).compareTo(new BigDecimal((double) f)), "value of 0x" + Integer.toHexString(bits));
            assertEquals(h, HalfFloats.toHalf(f), "round trip of 0x" + Integer.toHexString(bits));
        }
    }

    @Test
    void midpointsAndTheirNeighboursRoundToTheNearestEven() {
        for (int bits = 0; bits < MAX_FINITE; bits++) {
            for (int sign : new int[] {0, 0x8000}) {
                float lo = HalfFloats.toFloat((short) (sign | bits));
                float hi = HalfFloats.toFloat((short) (sign | (bits + 1)));
                float mid = (float) (((double) lo + hi) / 2); // exact: halves have 11 significant bits
                for (float f : new float[] {mid, Math.nextUp(mid), Math.nextDown(mid)}) {
                    assertEquals(nearest(f), HalfFloats.toHalf(f), "float " + f + " between halves 0x"
                            + Integer.toHexString(sign | bits) + " and the next");
                }
            }
        }
    }

    @Test
    void randomFloatsMatchTheOracle() {
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < 200_000; i++) {
            // bias towards the half range: exponents around [-30, 20]
            float f = i % 2 == 0 ? Float.intBitsToFloat(r.nextInt())
                    : (float) ((r.nextDouble() * 2 - 1) * Math.pow(2, r.nextInt(-30, 20)));
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(HalfFloats.round(f)), "NaN stays NaN");
                continue;
            }
            if (Float.isInfinite(f)) {
                assertEquals(f, HalfFloats.round(f));
                continue;
            }
            assertEquals(nearest(f), HalfFloats.toHalf(f), "float " + f + " bits 0x" + Integer.toHexString(
                    Float.floatToRawIntBits(f)));
        }
    }

    @Test
    void specialValues() {
        assertEquals((short) 0x7bff, HalfFloats.toHalf(65504f));
        assertEquals((short) 0x7bff, HalfFloats.toHalf(65519.996f));
        assertEquals((short) 0x7c00, HalfFloats.toHalf(65520f));
        assertEquals((short) 0xfc00, HalfFloats.toHalf(Float.NEGATIVE_INFINITY));
        assertEquals((short) 0x0001, HalfFloats.toHalf(0x1p-24f));
        assertEquals((short) 0x0000, HalfFloats.toHalf(0x1p-25f)); // tie to even (zero)
        assertEquals((short) 0x0001, HalfFloats.toHalf(Math.nextUp(0x1p-25f)));
        assertEquals((short) 0x8000, HalfFloats.toHalf(-0f));
        assertEquals((short) 0x3c00, HalfFloats.toHalf(1f));
        assertEquals(1f + 0x1p-10f, HalfFloats.round(1f + 0x1p-10f));
        assertEquals(1f, HalfFloats.round(1f + 0x1p-11f)); // tie to even
        assertEquals(1f + 0x1p-9f, HalfFloats.round(1f + 3 * 0x1p-11f)); // tie to even (up)
        assertTrue(Float.isNaN(HalfFloats.toFloat(HalfFloats.toHalf(Float.NaN))));
    }

    @Test
    void arrayConversions() {
        float[] a = {0.1f, -2.5f, 1e-6f, 70000f};
        short[] h = HalfFloats.toHalves(a);
        float[] back = new float[a.length];
        HalfFloats.toFloats(h, back);
        float[] rounded = a.clone();
        HalfFloats.round(rounded);
        assertArrayEquals(rounded, back);
        assertEquals(Float.POSITIVE_INFINITY, back[3]);
        assertTrue(Arrays.equals(back, new float[] {HalfFloats.round(0.1f), -2.5f, HalfFloats.round(1e-6f),
                Float.POSITIVE_INFINITY}));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> HalfFloats.toFloats(h, new float[3]));
        assertTrue(e.getMessage().contains("4 halves into 3 floats"), e.getMessage());
    }
}
