package io.spotserve.worker;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * The slices a worker has staged for migration (exported from a position, waiting to be sent to their target):
 * bytes in this process's memory, outside the device arenas, named by handles. Bounded: at most {@code capacity}
 * bytes at once (a stage beyond it is refused with {@code RESOURCE_EXHAUSTED}, nothing staged). An entry lives until
 * it is sent or fetched-and-released, released, or {@code timeout} after it was staged (a controller that stopped
 * caring), and the whole area empties when the worker is fenced. Thread-safe.
 */
final class StagingArea {
    /** One staged slice: its SliceFormat header (for the receiver's ticket), its bytes and when it expires. */
    record Entry(ByteString header, byte[] data, long expiresAtNanos) {
    }

    private final long capacity;
    private final long timeoutNanos;
    private final LongSupplier nanoTime;
    private final Map<Long, Entry> entries = new LinkedHashMap<>();
    private long nextHandle = 1;
    private long used;

    StagingArea(long capacity, Duration timeout, LongSupplier nanoTime) {
        if (capacity < 0) {
            throw new IllegalArgumentException("staging capacity must be >= 0 bytes, was " + capacity);
        }
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("staging timeout must be positive, was " + timeout);
        }
        this.capacity = capacity;
        this.timeoutNanos = timeout.toNanos();
        this.nanoTime = nanoTime;
    }

    long capacity() {
        return capacity;
    }

    /**
     * Stages {@code data}; returns its handle.
     *
     * @throws StatusRuntimeException RESOURCE_EXHAUSTED when it does not fit beside what is staged already
     */
    synchronized long put(ByteString header, byte[] data) {
        sweep();
        if (used + data.length > capacity) {
            throw Status.RESOURCE_EXHAUSTED.withDescription("staging area full: " + data.length + " bytes asked, "
                    + used + " of " + capacity + " bytes staged in " + entries.size() + " slices (raise the worker's "
                    + "--staging-memory)").asRuntimeException();
        }
        long h = nextHandle++;
        entries.put(h, new Entry(header, data, nanoTime.getAsLong() + timeoutNanos));
        used += data.length;
        return h;
    }

    /**
     * Removes and returns entry {@code handle} (it is used up).
     *
     * @throws IllegalArgumentException if there is no such entry
     */
    synchronized Entry take(long handle) {
        Entry e = entries.remove(handle);
        if (e == null) {
            throw missing(handle);
        }
        used -= e.data().length;
        return e;
    }

    /**
     * Entry {@code handle}, left staged.
     *
     * @throws IllegalArgumentException if there is no such entry
     */
    synchronized Entry get(long handle) {
        Entry e = entries.get(handle);
        if (e == null) {
            throw missing(handle);
        }
        return e;
    }

    /** Frees entry {@code handle}; whether it was there. */
    synchronized boolean release(long handle) {
        Entry e = entries.remove(handle);
        if (e != null) {
            used -= e.data().length;
        }
        return e != null;
    }

    /** Frees the entries staged longer than the timeout; returns how many. */
    synchronized int sweep() {
        long now = nanoTime.getAsLong();
        int n = 0;
        for (Iterator<Entry> it = entries.values().iterator(); it.hasNext(); ) {
            Entry e = it.next();
            if (now - e.expiresAtNanos() >= 0) {
                it.remove();
                used -= e.data().length;
                n++;
            }
        }
        return n;
    }

    /** Frees everything (the worker was fenced). */
    synchronized void clear() {
        entries.clear();
        used = 0;
    }

    synchronized long usedBytes() {
        return used;
    }

    synchronized int size() {
        return entries.size();
    }

    private IllegalArgumentException missing(long handle) {
        return new IllegalArgumentException("staged slice " + handle + " is not on this worker: it was sent, released,"
                + " or expired " + Duration.ofNanos(timeoutNanos).toSeconds() + " s after it was staged");
    }
}
