package io.spotserve.engine;

import java.time.Duration;

/** Real time: {@link System#nanoTime()} since construction; waits park the thread on the monitor. */
public final class SystemEngineClock implements EngineClock {
    private final long origin = System.nanoTime();

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
        long nanos = deadline.minus(now()).toNanos();
        if (nanos > 0) {
            long ms = nanos / 1_000_000L;
            monitor.wait(ms, (int) (nanos % 1_000_000L));
        }
    }
}
