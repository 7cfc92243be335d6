package io.spotserve.examples;

import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.ServingEngine;
import io.spotserve.trace.AvailabilityTrace;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * {@code replay}'s waiting: until a trace time, or until a closed-loop client is idle, refreshing the live progress
 * line on stderr (at most every 100 ms) meanwhile. The trace clock is the engine clock less the trace's start.
 */
final class ReplayProgress {
    private static final long REFRESH_NANOS = 100_000_000L;
    private final Supplier<Duration> traceClock;
    private final ServingEngine engine;
    private final List<CompletableFuture<Completion>> futures;
    private final AvailabilityTrace trace;
    private final double speed;

    /**
     * @param traceClock engine-clock time since the trace started
     * @param futures    the submitted requests (read for the count only)
     * @param trace      the trace being played, or null ({@code --workers}: the instance count is the engine's)
     * @param speed      trace seconds per wall second
     */
    ReplayProgress(Supplier<Duration> traceClock, ServingEngine engine, List<CompletableFuture<Completion>> futures,
                   AvailabilityTrace trace, double speed) {
        this.traceClock = traceClock;
        this.engine = engine;
        this.futures = futures;
        this.trace = trace;
        this.speed = speed;
    }

    /** Engine-clock time since the trace started. */
    Duration now() {
        return traceClock.get();
    }

    /** Sleeps until the trace clock reaches {@code at}. */
    void awaitTime(Duration at) throws InterruptedException {
        long lastProgress = 0;
        while (true) {
            long left = at.minus(traceClock.get()).toNanos();
            if (left <= 0) {
                return;
            }
            if (System.nanoTime() - lastProgress > REFRESH_NANOS) {
                show();
                lastProgress = System.nanoTime();
            }
            long ms = Math.min(100, left / 1_000_000L);
            Thread.sleep(ms, (int) (ms == 100 ? 0 : left % 1_000_000L));
        }
    }

    /**
     * Closed loop: waits until one of the clients is idle (a permit of {@code idle}: its last request completed) and
     * returns true holding that permit, or returns false once the trace clock reaches {@code end} (no more requests).
     */
    boolean awaitClient(Semaphore idle, Duration end) throws InterruptedException {
        long lastProgress = 0;
        while (traceClock.get().compareTo(end) < 0) {
            if (idle.tryAcquire(20, TimeUnit.MILLISECONDS)) {
                if (traceClock.get().compareTo(end) < 0) {
                    return true;
                }
                idle.release(); // the trace ended while we waited: the client stays idle
                return false;
            }
            if (System.nanoTime() - lastProgress > REFRESH_NANOS) {
                show();
                lastProgress = System.nanoTime();
            }
        }
        return false;
    }

    /** Rewrites the progress line. */
    void show() {
        EngineMetrics m = engine.metrics();
        double t = traceClock.get().toNanos() / 1e9 * speed;
        long instances = trace != null ? trace.instanceCountAt(Duration.ofNanos(Math.round(t * 1e9)))
                : m.instances().stream().filter(i -> i.state() == EngineMetrics.InstanceUsage.State.RUNNING).count();
        System.err.printf("\r[trace %6.0f / %.0f s] instances=%2d submitted=%d completed=%d running=%d queued=%d "
                        + "reconfigurations=%d   ", t, trace != null ? trace.endTime().toNanos() / 1e9 : 0.0,
                instances, futures.size(), m.completed(), m.running(), m.queued(), m.reconfigurations().size());
    }
}
