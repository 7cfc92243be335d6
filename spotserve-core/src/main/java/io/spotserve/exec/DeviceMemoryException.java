package io.spotserve.exec;

import io.spotserve.plan.DeviceId;

/**
 * An allocation did not fit a device's memory arena. The arena is unchanged when this is thrown, so the
 * caller (typically the migration planner or the engine admitting a request) can free something and retry,
 * or choose another configuration.
 */
public final class DeviceMemoryException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final transient DeviceId device;
    private final long requested;
    private final long used;
    private final long capacity;

    public DeviceMemoryException(DeviceId device, String what, long requested, long used, long capacity) {
        super("device " + device + ": cannot allocate " + requested + " bytes for " + what + "; " + used + " of "
                + capacity + " bytes in use (" + (capacity - used) + " free)");
        this.device = device;
        this.requested = requested;
        this.used = used;
        this.capacity = capacity;
    }

    /** The device that ran out of memory. */
    public DeviceId device() {
        return device;
    }

    /** Bytes the failed allocation asked for. */
    public long requested() {
        return requested;
    }

    /** Bytes in use when it failed. */
    public long used() {
        return used;
    }

    /** The device's capacity. */
    public long capacity() {
        return capacity;
    }
}
