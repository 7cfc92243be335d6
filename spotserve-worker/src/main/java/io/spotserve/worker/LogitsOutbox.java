package io.spotserve.worker;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.spotserve.worker.proto.StepReply;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The logits a last stage kept for the controller ({@code StepRequest.logits_direct}): the stage's worker puts them
 * here under (pipeline, step id) and answers the previous stage with the counts only; the controller's collect on
 * this worker's step socket takes them. Whichever comes first waits for the other: a collect for at most its
 * timeout, kept logits for at most {@link #MAX_AGE_MS} (a controller that gave up on the step never collects them).
 * At most {@link #MAX_KEPT} entries and {@link #MAX_BYTES} of logits are held; the oldest go first. A step id is used once per pipeline, so a late
 * delivery can only ever meet the collect of its own step.
 */
final class LogitsOutbox {
    /** Entries held at once (kept logits and waiting collects together). */
    static final int MAX_KEPT = 64;
    /** How long kept logits nobody collects stay. */
    static final long MAX_AGE_MS = 60_000;
    /** Bytes of kept logits held at once; the oldest go first (a controller collects each step's at once). */
    static final long MAX_BYTES = 64L << 20;

    private record Key(long pipeline, long step) {
    }

    /** One step's entry: its logits or its failure once known, and whether a collect waits for it. */
    private static final class Slot {
        final long created = System.nanoTime();
        StepReply logits;
        RuntimeException failure;
        boolean collecting;
    }

    private final Map<Key, Slot> slots = new LinkedHashMap<>(); // insertion order: oldest first
    private long collected;
    private long bytes;

    /** Keeps {@code logits} (a reply carrying only them) for the collect of {@code step} of {@code pipeline}. */
    synchronized void deliver(long pipeline, long step, StepReply logits) {
        Slot s = slot(new Key(pipeline, step));
        if (s.logits != null) {
            throw new IllegalStateException("step " + step + " of pipeline " + pipeline + " delivered its logits twice");
        }
        s.logits = logits;
        bytes += logits.getLogits().size();
        for (Iterator<Slot> it = slots.values().iterator(); it.hasNext() && bytes > MAX_BYTES; ) {
            Slot old = it.next();
            if (old != s && old.logits != null) { // kept logits nobody collected yet: only they hold bytes
                it.remove();
                forget(old);
            }
        }
        notifyAll();
    }

    /** Stops counting the bytes of a slot that left the map. */
    private void forget(Slot s) {
        if (s.logits != null) {
            bytes -= s.logits.getLogits().size();
        }
    }

    /** Records that {@code step} failed here: its collect fails with {@code failure} instead of waiting. */
    synchronized void fail(long pipeline, long step, RuntimeException failure) {
        slot(new Key(pipeline, step)).failure = failure;
        notifyAll();
    }

    /** Fails the collects waiting for steps of {@code pipeline} and drops its kept logits (the pipeline closed). */
    synchronized void close(long pipeline) {
        for (Iterator<Map.Entry<Key, Slot>> it = slots.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Key, Slot> e = it.next();
            if (e.getKey().pipeline() == pipeline) {
                e.getValue().failure = Status.CANCELLED.withDescription("pipeline " + pipeline + " was closed")
                        .asRuntimeException();
                it.remove();
                forget(e.getValue());
            }
        }
        notifyAll();
    }

    /**
     * Waits up to {@code timeoutMillis} for the logits of {@code step} of {@code pipeline} and takes them.
     *
     * @throws StatusRuntimeException DEADLINE_EXCEEDED when none came in time, or the step's own failure
     */
    StepReply collect(long pipeline, long step, long timeoutMillis) {
        Key key = new Key(pipeline, step);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        synchronized (this) {
            Slot s = slot(key);
            if (s.collecting) {
                throw new IllegalArgumentException("step " + step + " of pipeline " + pipeline
                        + " is being collected already");
            }
            s.collecting = true;
            try {
                while (s.logits == null && s.failure == null) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        throw Status.DEADLINE_EXCEEDED.withDescription("no logits for step " + step + " of pipeline "
                                + pipeline + " within " + timeoutMillis + " ms").asRuntimeException();
                    }
                    try {
                        TimeUnit.NANOSECONDS.timedWait(this, left);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw Status.CANCELLED.withDescription("interrupted").asRuntimeException();
                    }
                }
                if (s.failure != null) {
                    throw s.failure;
                }
                collected++;
                return s.logits;
            } finally {
                if (slots.remove(key, s)) {
                    forget(s);
                }
            }
        }
    }

    /** Logits collected so far. */
    synchronized long collected() {
        return collected;
    }

    /** Bytes of kept logits held now. */
    synchronized long bytes() {
        return bytes;
    }

    /** Entries held now. */
    synchronized int size() {
        return slots.size();
    }

    /** The entry of {@code key}, a new one if there is none; drops expired entries and the oldest beyond the bound. */
    private Slot slot(Key key) {
        Slot s = slots.get(key);
        if (s != null) {
            return s;
        }
        long now = System.nanoTime();
        for (Iterator<Slot> it = slots.values().iterator(); it.hasNext(); ) {
            Slot old = it.next();
            if (slots.size() >= MAX_KEPT || now - old.created > TimeUnit.MILLISECONDS.toNanos(MAX_AGE_MS)) {
                it.remove(); // a collect waiting on it times out
                forget(old);
            } else {
                break;
            }
        }
        s = new Slot();
        slots.put(key, s);
        return s;
    }
}
