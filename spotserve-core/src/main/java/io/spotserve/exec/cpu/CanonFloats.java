package io.spotserve.exec.cpu;

import java.nio.FloatBuffer;

/**
 * The canonical floats of a slice ({@link io.spotserve.exec.ContextSlice} javadoc) that a position copies its storage
 * to or from: a float array (checkpoint loads, the array path of export and import), or a float view of the
 * SliceFormat bytes that travel (export into, import from a caller's byte buffer, with no float copy of the slice).
 * Copies address the canonical floats by absolute index. Not thread-safe: one transfer at a time uses one instance.
 */
final class CanonFloats {
    private final float[] array;
    private final FloatBuffer buffer;
    /** The window of canonical floats a buffer holds: float {@code lo + i} at index i, up to {@code hi} (exclusive). */
    private final int lo;
    private final int hi;
    /** Where a strided segment of a buffer is gathered before one bulk copy (a row, so it stays in cache). */
    private float[] row = new float[0];

    private CanonFloats(float[] array, FloatBuffer buffer, int lo, int hi) {
        this.array = array;
        this.buffer = buffer;
        this.lo = lo;
        this.hi = hi;
    }

    static CanonFloats of(float[] array) {
        return new CanonFloats(array, null, 0, Integer.MAX_VALUE);
    }

    static CanonFloats of(FloatBuffer buffer) {
        return new CanonFloats(null, buffer, 0, Integer.MAX_VALUE);
    }

    /**
     * A window of the canonical floats: {@code buffer} holds floats {@code [from, from + buffer.limit())} (float
     * {@code from + i} at index i); copies touch only the part of each run inside the window, so walking a slice's whole
     * layout with it copies exactly that range (a piece of a slice exported or imported on its own).
     */
    static CanonFloats window(FloatBuffer buffer, int from) {
        if (from < 0) {
            throw new IllegalArgumentException("a window of canonical floats starts at " + from);
        }
        return new CanonFloats(null, buffer, from, Math.addExact(from, buffer.limit()));
    }

    /**
     * The first of {@code count} runs of {@code n} canonical floats each, from float {@code o} on, that reaches into the
     * window (0 when this is not a window): callers walk only the runs a piece of a slice touches.
     */
    int firstRun(int o, int n, int count) {
        if (lo <= o || n <= 0) {
            return 0;
        }
        return (int) Math.min(count, ((long) lo - o) / n);
    }

    /** One past the last of those runs that reaches into the window ({@code count} when this is not a window). */
    int endRun(int o, int n, int count) {
        if (hi == Integer.MAX_VALUE || n <= 0) {
            return count;
        }
        return (int) Math.max(0, Math.min(count, ((long) hi - o + n - 1) / n));
    }

    /** Copies {@code store[storeOff ..+len)} to canonical floats {@code [canonOff ..+len)}, or back when importing. */
    void copy(float[] store, int storeOff, int canonOff, int len, boolean importing) {
        if (lo > 0 || hi != Integer.MAX_VALUE) { // a window: only the part of the run inside it, at its index
            int a = Math.max(canonOff, lo);
            int b = Math.min(canonOff + len, hi);
            if (a >= b) {
                return;
            }
            storeOff += a - canonOff;
            canonOff = a - lo;
            len = b - a;
        }
        if (array != null) {
            if (importing) {
                System.arraycopy(array, canonOff, store, storeOff, len);
            } else {
                System.arraycopy(store, storeOff, array, canonOff, len);
            }
        } else if (importing) {
            buffer.get(canonOff, store, storeOff, len);
        } else {
            buffer.put(canonOff, store, storeOff, len);
        }
    }

    /**
     * Copies {@code store[at + k·stride]} to canonical float {@code canonOff + k} for k in [0, len), or back when
     * importing. A buffer's floats go through one row-sized array and one bulk copy: the strided loop then runs on
     * arrays only, whatever kind of buffer (heap, direct) this JVM has seen.
     */
    void strided(float[] store, int at, int stride, int canonOff, int len, boolean importing) {
        if (lo > 0 || hi != Integer.MAX_VALUE) { // a window: only the part of the run inside it, at its index
            int from = Math.max(canonOff, lo);
            int to = Math.min(canonOff + len, hi);
            if (from >= to) {
                return;
            }
            at += (from - canonOff) * stride;
            canonOff = from - lo;
            len = to - from;
        }
        float[] a = array;
        int o = canonOff;
        if (a == null) {
            if (row.length < len) {
                row = new float[len];
            }
            a = row;
            o = 0;
            if (importing) {
                buffer.get(canonOff, a, 0, len);
            }
        }
        if (importing) {
            for (int k = 0; k < len; k++, at += stride) {
                store[at] = a[o + k];
            }
        } else {
            for (int k = 0; k < len; k++, at += stride) {
                a[o + k] = store[at];
            }
            if (array == null) {
                buffer.put(canonOff, a, 0, len);
            }
        }
    }

    /**
     * The canonical floats as an array, for the Q8_0 block paths (they quantize from and dequantize into arrays).
     *
     * @throws IllegalStateException for a buffer: Q8_0 storage is never given one (its pipeline takes the array path)
     */
    float[] array() {
        if (array == null) {
            throw new IllegalStateException("Q8_0 storage copies canonical floats through an array, not a buffer");
        }
        return array;
    }
}
