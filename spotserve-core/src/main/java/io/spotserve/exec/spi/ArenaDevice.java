package io.spotserve.exec.spi;

import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.plan.DeviceId;

/**
 * The byte accounting of a {@link Device} arena, for executor implementors: a fixed capacity (SpotServe
 * §3.4's per-device memory bound U_max), the bytes in use, and the all-or-nothing check that turns an
 * over-capacity request into {@link DeviceMemoryException} before anything is allocated. The backend
 * allocates the actual buffers; it calls {@link #bytesFor} and {@link #checkFits} first, then
 * {@link #account} with the bytes it really took, so a failed request leaves the arena unchanged.
 */
public abstract class ArenaDevice implements Device {
    private final Object owner;
    private final DeviceId id;
    private final long capacity;
    private long used;

    /** An empty arena of {@code capacity} bytes for {@code id}, created by executor {@code owner}. */
    protected ArenaDevice(Object owner, DeviceId id, long capacity) {
        this.owner = owner;
        this.id = id;
        this.capacity = capacity;
    }

    /** Whether {@code executor} created this device. */
    public final boolean ownedBy(Object executor) {
        return owner == executor;
    }

    @Override
    public final DeviceId id() {
        return id;
    }

    @Override
    public final long capacityBytes() {
        return capacity;
    }

    @Override
    public final synchronized long usedBytes() {
        return used;
    }

    /**
     * Bytes of buffers of {@code floats} floats each.
     *
     * @throws IllegalArgumentException if a count is negative
     */
    protected static long bytesFor(String what, long... floats) {
        long bytes = 0;
        for (long f : floats) {
            if (f < 0) {
                throw new IllegalArgumentException("cannot allocate " + f + " floats for " + what);
            }
            bytes += f * Float.BYTES;
        }
        return bytes;
    }

    /** @throws DeviceMemoryException if {@code bytes} more do not fit the arena; nothing changes */
    protected final synchronized void checkFits(String what, long bytes) {
        if (bytes > capacity - used) {
            throw new DeviceMemoryException(id, what, bytes, used, capacity);
        }
    }

    /** Adds {@code bytes} (negative: frees) to the bytes in use. */
    protected final synchronized void account(long bytes) {
        used += bytes;
    }
}
