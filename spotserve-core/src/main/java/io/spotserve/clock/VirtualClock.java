package io.spotserve.clock;

import java.time.Duration;
import java.util.Objects;

/**
 * Simulated time for tests and trace replay (DESIGN.md §4): it starts at zero, advances by a modeled cost
 * after every forward step ({@code perStep + perPosition × positions}), and a wait for a timer jumps straight
 * to it. Only a wait without a timer blocks for real (until the engine is notified of new work).
 *
 * <p>Thread-safe; tests may also {@link #advance} it by hand.
 */
public final class VirtualClock implements EngineClock {
    private final Duration perStep;
    private final Duration perPosition;
    private final long migrationBytesPerSecond;
    private Duration now = Duration.ZERO;

    /**
     * A clock that charges {@code perStep} for each forward step plus {@code perPosition} for each token
     * position it carries.
     *
     * @throws IllegalArgumentException if a cost is negative
     */
    public VirtualClock(Duration perStep, Duration perPosition) {
        this(perStep, perPosition, 0);
    }

    /**
     * A clock that also charges migrated bytes at {@code migrationBytesPerSecond} (0: migrations take no time).
     *
     * @throws IllegalArgumentException if a cost or the bandwidth is negative
     */
    public VirtualClock(Duration perStep, Duration perPosition, long migrationBytesPerSecond) {
        this.perStep = requireNonNegative("perStep", perStep);
        this.perPosition = requireNonNegative("perPosition", perPosition);
        if (migrationBytesPerSecond < 0) {
            throw new IllegalArgumentException("migrationBytesPerSecond must be >= 0, was " + migrationBytesPerSecond);
        }
        this.migrationBytesPerSecond = migrationBytesPerSecond;
    }

    /** A clock that charges {@code perStep} per forward step, whatever its size. */
    public VirtualClock(Duration perStep) {
        this(perStep, Duration.ZERO);
    }

    private static Duration requireNonNegative(String name, Duration d) {
        Objects.requireNonNull(d, name);
        if (d.isNegative()) {
            throw new IllegalArgumentException(name + " must be >= 0, was " + d);
        }
        return d;
    }

    @Override
    public synchronized Duration now() {
        return now;
    }

    /** Moves time forward by {@code d}. */
    public synchronized void advance(Duration d) {
        now = now.plus(requireNonNegative("advance", d));
    }

    /** Moves time forward to {@code t}; earlier times leave it unchanged. */
    public synchronized void advanceTo(Duration t) {
        if (t.compareTo(now) > 0) {
            now = t;
        }
    }

    @Override
    public void awaitUntil(Duration deadline, Object monitor) throws InterruptedException {
        if (deadline == null) {
            monitor.wait();
        } else {
            advanceTo(deadline);
        }
    }

    @Override
    public void computed(int positions) {
        advance(perStep.plus(perPosition.multipliedBy(positions)));
    }

    @Override
    public void migrated(long bytes) {
        if (migrationBytesPerSecond > 0 && bytes > 0) {
            advance(Duration.ofNanos((long) Math.ceil(bytes * 1e9 / migrationBytesPerSecond)));
        }
    }
}
