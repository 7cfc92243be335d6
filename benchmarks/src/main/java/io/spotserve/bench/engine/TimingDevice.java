package io.spotserve.bench.engine;

import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.spi.ArenaDevice;
import io.spotserve.plan.DeviceId;

/**
 * A device arena that only counts bytes: the storage a real executor would allocate for a weight unit or a KV
 * cache is charged here with the same sizes, and nothing is allocated. All-or-nothing like every arena: a request
 * that does not fit throws {@link io.spotserve.exec.DeviceMemoryException} and changes nothing.
 */
final class TimingDevice extends ArenaDevice {
    TimingDevice(TimingExecutor owner, DeviceId id, long capacity) {
        super(owner, id, capacity);
    }

    /**
     * Charges {@code bytes} for {@code what}.
     *
     * @throws io.spotserve.exec.DeviceMemoryException if they do not fit; nothing changes then
     */
    synchronized void allocate(String what, long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("cannot allocate " + bytes + " bytes for " + what);
        }
        checkFits(what, bytes);
        account(bytes);
    }

    /**
     * Charges {@code bytes} if they fit (the KV reservation of a sequence opening: no message is built unless it
     * fails, see {@link #outOfMemory}).
     *
     * @return whether they were charged; nothing changes otherwise
     */
    synchronized boolean tryAllocate(long bytes) {
        if (bytes < 0 || bytes > capacityBytes() - usedBytes()) {
            return false;
        }
        account(bytes);
        return true;
    }

    /** The exception a failed {@link #tryAllocate} of {@code bytes} for {@code what} stands for. */
    synchronized DeviceMemoryException outOfMemory(String what, long bytes) {
        return new DeviceMemoryException(id(), what, bytes, usedBytes(), capacityBytes());
    }

    /** Returns {@code bytes} charged earlier to the arena. */
    synchronized void free(long bytes) {
        if (bytes < 0 || bytes > usedBytes()) {
            throw new IllegalStateException("device " + id() + ": cannot free " + bytes + " bytes, " + usedBytes()
                    + " in use");
        }
        account(-bytes);
    }

    @Override
    public String toString() {
        return "TimingDevice[" + id() + " " + usedBytes() + "/" + capacityBytes() + " bytes]";
    }
}
