package io.spotserve.plan;

import java.io.Serializable;
import java.util.Objects;

/**
 * One point-to-point context transfer of a migration (SpotServe §3.4): {@code slice} goes from
 * {@code source} to {@code target}. A null source means no live device holds the slice any more (every
 * replica was lost): the target must reload it from the checkpoint (§4.2 fault tolerance).
 *
 * @param slice  what moves
 * @param source the sending device, or null for a reload from the checkpoint
 * @param target the receiving device
 */
public record Transfer(PlannedSlice slice, DeviceId source, DeviceId target) implements Serializable {
    public Transfer {
        Objects.requireNonNull(slice, "slice");
        Objects.requireNonNull(target, "target");
        if (target.equals(source)) {
            throw new IllegalArgumentException("transfer of " + slice + " from " + source + " to itself");
        }
    }

    /** Whether the slice comes from the checkpoint rather than from a device. */
    public boolean isReload() {
        return source == null;
    }

    /** Bytes moved. */
    public long bytes() {
        return slice.bytes();
    }

    /** Whether source and target are GPUs of the same instance (no network traffic). */
    public boolean intraInstance() {
        return source != null && source.instance().equals(target.instance());
    }

    @Override
    public String toString() {
        return slice + " " + (source == null ? "checkpoint" : source) + "->" + target;
    }
}
