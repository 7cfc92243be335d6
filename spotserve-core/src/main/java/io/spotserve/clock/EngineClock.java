package io.spotserve.clock;

import java.time.Duration;

/**
 * The only source of time for the serving engine (DESIGN.md §4): the engine never reads the wall clock or
 * sleeps directly. With {@link SystemEngineClock} it serves real requests; with {@link VirtualClock} time moves
 * only when the engine computes (a modeled cost per forward step) or waits for its next timer, so preemption
 * scenarios replay deterministically and in milliseconds.
 *
 * <p>Times are offsets from the clock's own origin; instance events and request deadlines use the same scale.
 */
public interface EngineClock {
    /** The current time, as an offset from this clock's origin. */
    Duration now();

    /**
     * Blocks the calling thread, which holds {@code monitor}'s lock, until {@link #now()} reaches
     * {@code deadline} or someone calls {@code monitor.notifyAll()}; may return early. A {@code null}
     * deadline waits for a notification only.
     *
     * @throws InterruptedException if the thread is interrupted while waiting
     */
    void awaitUntil(Duration deadline, Object monitor) throws InterruptedException;

    /**
     * Tells the clock that the engine just computed one forward step over {@code positions} token positions.
     * A real clock ignores it (the time really passed); a virtual clock advances by its modeled step cost.
     */
    default void computed(int positions) {
    }

    /**
     * Tells the clock that a reconfiguration just copied {@code bytes} between devices. A real clock ignores it;
     * a virtual clock may charge bytes / bandwidth, so preemptions can land in the middle of a migration.
     */
    default void migrated(long bytes) {
    }

    /**
     * Tells the clock that one forward step of a pipeline was just computed, and asks how long that pipeline is busy
     * with it from now. A real clock (the time really passed) and {@link VirtualClock} (which advances itself) return
     * zero; a simulated clock returns the modeled step time and leaves {@link #now()} alone, so each pipeline keeps
     * its own pace and the engine waits for a pipeline's step to end before its next one. The default charges
     * {@link #computed(int)}.
     */
    default java.time.Duration computed(ForwardStep step) {
        computed(step.positions());
        return java.time.Duration.ZERO;
    }

    /**
     * Whether pipelines a reconfiguration leaves as they are keep decoding while it copies context: true for a clock
     * that prices steps and copies on their own resources ({@link SimulatedClock}: GPUs compute while the network
     * copies), false (default) where the engine thread would have to do both in turn.
     */
    default boolean stepsDuringMigration() {
        return false;
    }

    /**
     * How long one instance takes to read {@code bytes} of weights from the model's weight source (storage), for a
     * pipeline that waits for its own load instead of pausing the engine
     * ({@code ServingEngine.Builder#pipelineStartup}). Zero by default (a real clock: the read really takes its
     * time); a simulated clock prices it at its storage bandwidth.
     */
    default Duration loadTime(long bytes) {
        return Duration.ZERO;
    }

    /**
     * Whether time passes on its own (the wall clock): then the engine lets each pipeline's forward step complete on
     * its own thread while it serves the others. Otherwise (default; simulated and virtual clocks, whose time moves
     * only when the engine says so) the engine still computes the pipelines' steps side by side, but waits for them in
     * dispatch order before it moves on, so a run is deterministic.
     */
    default boolean isRealTime() {
        return false;
    }

    /**
     * Tells the clock that a reconfiguration starts copying context; the {@link #migrated(java.util.List) units} that
     * follow belong to it until the next call. A simulated clock lets the instances of one reconfiguration copy side
     * by side; the default does nothing.
     */
    default void migrationStarted() {
    }

    /**
     * Tells the clock what one unit of a reconfiguration copied, move by move (between devices of one instance,
     * across instances, from storage). The default charges {@link #migrated(long)} with the bytes that left a
     * device of another or the same instance (not storage reads).
     */
    default void migrated(java.util.List<DataMove> moves) {
        long bytes = 0;
        for (DataMove m : moves) {
            if (!m.fromStorage()) {
                bytes += m.bytes();
            }
        }
        migrated(bytes);
    }
}
