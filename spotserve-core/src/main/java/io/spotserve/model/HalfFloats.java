package io.spotserve.model;

/**
 * IEEE 754 binary16 conversions, for F16 tensors in model files and executors that store fp16 weights (Java 17 has no
 * {@code Float.floatToFloat16}). Rounding is to nearest, ties to even, with overflow to infinity, gradual
 * underflow to subnormals, as CUDA's {@code __float2half_rn} does for every value but NaN (kept a quiet NaN
 * here); so a weight rounded here and one converted on a GPU are the same half.
 */
public final class HalfFloats {
    private HalfFloats() {
    }

    /** The binary16 bits nearest to {@code f} (round to nearest even). */
    public static short toHalf(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int abs = bits & 0x7fffffff;
        if (abs >= 0x7f800000) { // infinity or NaN
            return (short) (sign | 0x7c00 | (abs > 0x7f800000 ? 0x0200 | ((abs >>> 13) & 0x03ff) : 0));
        }
        if (abs >= 0x477ff000) { // rounds to >= 65520: beyond the largest half
            return (short) (sign | 0x7c00);
        }
        if (abs >= 0x38800000) { // normal half: exponent >= -14
            int mant = abs & 0x007fffff;
            int exp = (abs >>> 23) - 127 + 15;
            int h = (exp << 10) | (mant >>> 13);
            int rest = mant & 0x1fff;
            if (rest > 0x1000 || (rest == 0x1000 && (h & 1) != 0)) {
                h++; // may carry into the exponent, which is still the right rounding
            }
            return (short) (sign | h);
        }
        if (abs < 0x33000000) { // below half of the smallest subnormal (2^-25): rounds to zero
            return (short) sign;
        }
        // subnormal half: value = m * 2^-24
        int exp = abs >>> 23;
        int mant = (abs & 0x007fffff) | 0x00800000;
        int shift = 126 - exp; // 14 - (exp - 127) + 23 - 24 + ... : bits to drop so the unit is 2^-24
        int h = mant >>> shift;
        int rest = mant & ((1 << shift) - 1);
        int halfway = 1 << (shift - 1);
        if (rest > halfway || (rest == halfway && (h & 1) != 0)) {
            h++;
        }
        return (short) (sign | h);
    }

    /** The float value of binary16 bits {@code h} (exact). */
    public static float toFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x03ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        if (exp == 0) {
            float v = mant * 0x1p-24f; // exact: at most 10 significant bits
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    /** {@code f} rounded to the nearest fp16 value, as a float. */
    public static float round(float f) {
        return toFloat(toHalf(f));
    }

    /** Rounds every value of {@code a} to the nearest fp16 value, in place. */
    public static void round(float[] a) {
        for (int i = 0; i < a.length; i++) {
            a[i] = round(a[i]);
        }
    }

    /** The halves of all of {@code a}. */
    public static short[] toHalves(float[] a) {
        short[] h = new short[a.length];
        for (int i = 0; i < a.length; i++) {
            h[i] = toHalf(a[i]);
        }
        return h;
    }

    /** Writes the float value of every half of {@code h} into {@code out} (same length). */
    public static void toFloats(short[] h, float[] out) {
        if (out.length != h.length) {
            throw new IllegalArgumentException("cannot convert " + h.length + " halves into " + out.length + " floats");
        }
        for (int i = 0; i < h.length; i++) {
            out[i] = toFloat(h[i]);
        }
    }
}
