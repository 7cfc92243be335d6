package io.spotserve.clock;

import java.util.Objects;

/**
 * Bytes of context a reconfiguration copied to a device of {@code toInstance}: from a device of
 * {@code fromInstance} (the same instance for a copy between its GPUs), or from the model's weight source
 * ({@code fromInstance} null: storage) when no survivor held them. A simulated clock prices a migration from these
 * (network per instance, local copies, storage reads); a real clock ignores them.
 *
 * @param fromInstance the sending instance, or null for the weight source
 * @param toInstance   the receiving instance
 * @param bytes        bytes copied, {@code >= 0}
 */
public record DataMove(String fromInstance, String toInstance, long bytes) {
    public DataMove {
        Objects.requireNonNull(toInstance, "toInstance");
        if (bytes < 0) {
            throw new IllegalArgumentException("bytes must be >= 0, was " + bytes);
        }
    }

    /** Whether the bytes crossed the network between two instances. */
    public boolean network() {
        return fromInstance != null && !fromInstance.equals(toInstance);
    }

    /** Whether the bytes were read from the weight source. */
    public boolean fromStorage() {
        return fromInstance == null;
    }
}
