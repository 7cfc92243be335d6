package io.spotserve.exec.spi;

import java.lang.ref.SoftReference;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The float buffer a pipeline's array-path exports and imports reuse: the one the previous call gave back when its
 * length matches (a position's layer slices all have one length), else a new one. Every float of it is overwritten
 * before use (the slice's transfer or decode writes them all). Saves allocating and zeroing a slice-sized array per
 * call (8.6 MB per layer slice of the 25M model: in a worker JVM, a humongous allocation and a young collection every
 * few slices). Held softly: the collector may take it back under pressure.
 */
final class FloatScratch {
    private final AtomicReference<SoftReference<float[]>> held = new AtomicReference<>();

    /** A buffer of exactly {@code n} floats; one caller at a time holds the kept one. */
    float[] take(int n) {
        SoftReference<float[]> r = held.getAndSet(null);
        float[] a = r == null ? null : r.get();
        return a != null && a.length == n ? a : new float[n];
    }

    /** Keeps {@code a} for the next call. */
    void give(float[] a) {
        held.set(new SoftReference<>(a));
    }

    /** Drops the kept buffer. */
    void clear() {
        held.set(null);
    }
}
