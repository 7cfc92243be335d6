package io.spotserve.clock;

import java.time.Duration;

/** Real time: {@link System#nanoTime()} since construction; waits park the thread on the monitor. */
public final class SystemEngineClock implements EngineClock {
    /** The longest single wait; callers loop until their deadline. */
    private static final Duration MAX_WAIT = Duration.ofHours(1);
    private final long origin = System.nanoTime();

    @Override
    public boolean isRealTime() {
        return true;
    }

    @Override
    public Duration now() {
        return Duration.ofNanos(System.nanoTime() - origin);
    }

    @Override
    public void awaitUntil(Duration deadline, Object monitor) throws InterruptedException {
        if (deadline == null) {
            monitor.wait();
            return;
        }
        Duration left = deadline.minus(now());
        // a deadline centuries ahead (a request's far-future timeout or arrival) waits in bounded slices: the caller
        // loops, and no conversion overflows
        long nanos = left.compareTo(MAX_WAIT) > 0 ? MAX_WAIT.toNanos() : left.toNanos();
        if (nanos > 0) {
            long ms = nanos / 1_000_000L;
            monitor.wait(ms, (int) (nanos % 1_000_000L));
        }
    }
}
