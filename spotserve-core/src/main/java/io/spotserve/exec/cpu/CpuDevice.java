package io.spotserve.exec.cpu;

import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.plan.DeviceId;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * A CPU stand-in for one accelerator: a byte budget from which every weight and KV-cache buffer of the
 * positions placed on it is allocated (as Java float arrays). Allocation is all-or-nothing, so a failed
 * request leaves the arena exactly as it was.
 */
final class CpuDevice implements Device {
    private final CpuExecutor owner;
    private final DeviceId id;
    private final long capacity;
    private final Set<float[]> live = Collections.newSetFromMap(new IdentityHashMap<>());
    private long used;

    CpuDevice(CpuExecutor owner, DeviceId id, long capacity) {
        this.owner = owner;
        this.id = id;
        this.capacity = capacity;
    }

    CpuExecutor owner() {
        return owner;
    }

    @Override
    public DeviceId id() {
        return id;
    }

    @Override
    public long capacityBytes() {
        return capacity;
    }

    @Override
    public synchronized long usedBytes() {
        return used;
    }

    /**
     * Allocates one zeroed buffer per entry of {@code floats}, all or none.
     *
     * @throws DeviceMemoryException if they do not fit together; nothing is allocated then
     */
    synchronized float[][] allocate(String what, int... floats) {
        long bytes = 0;
        for (int f : floats) {
            if (f < 0) {
                throw new IllegalArgumentException("cannot allocate " + f + " floats for " + what);
            }
            bytes += (long) f * Float.BYTES;
        }
        if (bytes > capacity - used) {
            throw new DeviceMemoryException(id, what, bytes, used, capacity);
        }
        float[][] out = new float[floats.length][];
        for (int i = 0; i < floats.length; i++) {
            out[i] = new float[floats[i]];
        }
        for (float[] a : out) {
            live.add(a);
        }
        used += bytes;
        return out;
    }

    /** Allocates one zeroed buffer. */
    float[] allocate(String what, int floats) {
        return allocate(what, new int[] {floats})[0];
    }

    /** Returns a buffer's bytes to the arena; null is ignored. */
    synchronized void free(float[] buffer) {
        if (buffer == null) {
            return;
        }
        if (!live.remove(buffer)) {
            throw new IllegalStateException("device " + id + ": buffer of " + buffer.length
                    + " floats was not allocated here or was already freed");
        }
        used -= (long) buffer.length * Float.BYTES;
    }

    @Override
    public String toString() {
        return "CpuDevice[" + id + " " + usedBytes() + "/" + capacity + " bytes]";
    }
}
