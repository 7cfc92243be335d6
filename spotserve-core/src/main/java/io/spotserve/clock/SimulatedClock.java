package io.spotserve.clock;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Simulated time in which the engine's pipelines run side by side (DESIGN.md §4): a forward step does not move the
 * clock, it keeps its pipeline busy for a modeled {@link StepTime} (e.g. a cost model on measured GPU profiles), and
 * time jumps to whatever comes next — a step ending, a dated instance event, a dated request. A reconfiguration
 * pauses everything for its modeled copy time: per instance, network bytes at {@code networkBytesPerSecond} (the
 * larger of sent and received), copies between its own GPUs at {@code localBytesPerSecond} and weights read from
 * storage at {@code storageBytesPerSecond}. The instances copy side by side, each working through its own share of
 * the units in the migration plan's order: after each unit the clock stands at the busiest instance's cumulative
 * copy time since {@link #migrationStarted()}, so a whole reconfiguration takes its busiest instance's time and an
 * event can still land between two units.
 *
 * <p>{@link #hold()} freezes time until {@link #release()}, so a harness can hand over a whole workload with
 * {@link io.spotserve.engine.ServingEngine#submit(io.spotserve.engine.GenerationRequest, Duration)} before anything happens: the run is then deterministic.
 * What the engine copies while the clock is held is its set-up before the run (the initial fleet loading its
 * weights, which a real deployment does before it takes traffic) and costs no time. Thread-safe.
 */
public final class SimulatedClock implements EngineClock {
    /** Prices one forward step of one pipeline. */
    @FunctionalInterface
    public interface StepTime {
        /** How long the pipeline is busy with {@code step}; never negative. */
        Duration of(ForwardStep step);
    }

    private final StepTime stepTime;
    private final double networkBytesPerSecond;
    private final double localBytesPerSecond;
    private final double storageBytesPerSecond;
    private Duration now = Duration.ZERO;
    private boolean held;
    /** Per instance, cumulative {sent, received, local, loaded} bytes of the current reconfiguration. */
    private final Map<String, double[]> copied = new HashMap<>();
    /** Copy seconds of the current reconfiguration already charged. */
    private double charged;
    private Object engineMonitor;

    private SimulatedClock(Builder b) {
        this.stepTime = b.stepTime;
        this.networkBytesPerSecond = b.networkBytesPerSecond;
        this.localBytesPerSecond = b.localBytesPerSecond;
        this.storageBytesPerSecond = b.storageBytesPerSecond;
    }

    /** A builder pricing steps with {@code stepTime}; copies are free until bandwidths are given. */
    public static Builder builder(StepTime stepTime) {
        return new Builder(Objects.requireNonNull(stepTime, "stepTime"));
    }

    @Override
    public synchronized Duration now() {
        return now;
    }

    /** Moves time forward to {@code t} (never back); blocks while the clock is held. */
    public void advanceTo(Duration t) {
        Objects.requireNonNull(t, "t");
        synchronized (this) {
            awaitRelease();
            if (t.compareTo(now) > 0) {
                now = t;
            }
        }
    }

    /** Freezes time until {@link #release()}: waits block, copies are free (set-up). */
    public synchronized void hold() {
        held = true;
    }

    /** Lets time move again and wakes the engine. */
    public void release() {
        Object monitor;
        synchronized (this) {
            held = false;
            notifyAll();
            monitor = engineMonitor;
        }
        if (monitor != null) {
            synchronized (monitor) {
                monitor.notifyAll();
            }
        }
    }

    private void awaitRelease() {
        boolean interrupted = false;
        while (held) {
            try {
                wait();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void awaitUntil(Duration deadline, Object monitor) throws InterruptedException {
        boolean frozen;
        synchronized (this) {
            engineMonitor = monitor;
            frozen = held;
        }
        if (frozen || deadline == null) {
            monitor.wait(); // released by release() or by new work (the caller loops)
            return;
        }
        synchronized (this) {
            if (!held && deadline.compareTo(now) > 0) {
                now = deadline;
            }
        }
    }

    @Override
    public Duration computed(ForwardStep step) {
        Duration d = stepTime.of(step);
        if (d == null || d.isNegative()) {
            throw new IllegalStateException("step time model returned " + d + " for " + step + "; expected >= 0");
        }
        return d;
    }

    @Override
    public void migrated(long bytes) {
        if (bytes > 0 && networkBytesPerSecond > 0) {
            advanceBy(bytes / networkBytesPerSecond);
        }
    }

    /** {@code bytes} at the storage bandwidth (zero when storage reads are free). */
    @Override
    public Duration loadTime(long bytes) {
        double s = time(bytes, storageBytesPerSecond);
        return s <= 0 ? Duration.ZERO : Duration.ofNanos((long) Math.ceil(s * 1e9));
    }

    /** True: the GPUs of untouched pipelines compute while the instances copy. */
    @Override
    public boolean stepsDuringMigration() {
        return true;
    }

    @Override
    public synchronized void migrationStarted() {
        copied.clear();
        charged = 0;
    }

    @Override
    public void migrated(List<DataMove> moves) {
        double seconds;
        synchronized (this) {
            seconds = accumulate(moves);
        }
        advanceBy(seconds);
    }

    /** Adds the moves to this reconfiguration's per-instance totals; returns the growth of the busiest instance's time. */
    private double accumulate(List<DataMove> moves) {
        Map<String, double[]> perInstance = copied;
        for (DataMove m : moves) {
            if (m.bytes() == 0) {
                continue;
            }
            double[] to = perInstance.computeIfAbsent(m.toInstance(), k -> new double[4]);
            if (m.fromStorage()) {
                to[3] += m.bytes();
            } else if (m.network()) {
                to[1] += m.bytes();
                perInstance.computeIfAbsent(m.fromInstance(), k -> new double[4])[0] += m.bytes();
            } else {
                to[2] += m.bytes();
            }
        }
        double busiest = 0;
        for (double[] t : perInstance.values()) {
            busiest = Math.max(busiest, time(Math.max(t[0], t[1]), networkBytesPerSecond)
                    + time(t[2], localBytesPerSecond) + time(t[3], storageBytesPerSecond));
        }
        double grown = busiest - charged;
        charged = busiest;
        return grown;
    }

    /** Seconds to copy the bytes at the bandwidth; 0 bandwidth means free. */
    private static double time(double bytes, double bytesPerSecond) {
        return bytesPerSecond > 0 ? bytes / bytesPerSecond : 0;
    }

    private void advanceBy(double seconds) {
        if (seconds <= 0) {
            return;
        }
        synchronized (this) {
            if (!held) { // copies made while held are the set-up before the run: free
                now = now.plusNanos((long) Math.ceil(seconds * 1e9));
            }
        }
    }

    /** Configures a {@link SimulatedClock}. */
    public static final class Builder {
        private final StepTime stepTime;
        private double networkBytesPerSecond;
        private double localBytesPerSecond;
        private double storageBytesPerSecond;

        private Builder(StepTime stepTime) {
            this.stepTime = stepTime;
        }

        /** Bandwidth of each instance's network link (each direction); 0 (default): network copies are free. */
        public Builder networkBytesPerSecond(double bytesPerSecond) {
            this.networkBytesPerSecond = check("networkBytesPerSecond", bytesPerSecond);
            return this;
        }

        /** Bandwidth between the GPUs of one instance; 0 (default): free. */
        public Builder localBytesPerSecond(double bytesPerSecond) {
            this.localBytesPerSecond = check("localBytesPerSecond", bytesPerSecond);
            return this;
        }

        /** Bandwidth at which an instance reads weights from storage; 0 (default): free. */
        public Builder storageBytesPerSecond(double bytesPerSecond) {
            this.storageBytesPerSecond = check("storageBytesPerSecond", bytesPerSecond);
            return this;
        }

        private static double check(String name, double v) {
            if (!(v >= 0) || Double.isInfinite(v)) {
                throw new IllegalArgumentException(name + " must be a finite number >= 0, was " + v);
            }
            return v;
        }

        public SimulatedClock build() {
            return new SimulatedClock(this);
        }
    }
}
