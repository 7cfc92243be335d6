package io.spotserve.exec.cpu;

import io.spotserve.exec.spi.ArenaDevice;
import io.spotserve.plan.DeviceId;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * A CPU stand-in for one accelerator: a byte budget from which every weight and KV-cache buffer of the
 * positions placed on it is allocated (as Java float arrays). Allocation is all-or-nothing, so a failed
 * request leaves the arena exactly as it was.
 */
final class CpuDevice extends ArenaDevice {
    private final Set<Object> live = Collections.newSetFromMap(new IdentityHashMap<>());

    CpuDevice(CpuExecutor owner, DeviceId id, long capacity) {
        super(owner, id, capacity);
    }

    /**
     * Allocates one zeroed buffer per entry of {@code floats}, all or none.
     *
     * @throws io.spotserve.exec.DeviceMemoryException if they do not fit together; nothing is allocated then
     */
    synchronized float[][] allocate(String what, int... floats) {
        long bytes = bytesFor(what, Arrays.stream(floats).asLongStream().toArray());
        checkFits(what, bytes);
        float[][] out = new float[floats.length][];
        for (int i = 0; i < floats.length; i++) {
            out[i] = new float[floats[i]];
        }
        for (float[] a : out) {
            live.add(a);
        }
        account(bytes);
        return out;
    }

    /** Allocates one zeroed buffer. */
    float[] allocate(String what, int floats) {
        return allocate(what, new int[] {floats})[0];
    }

    /**
     * Allocates one zeroed byte buffer (Q8_0 weight blocks), counted at its length.
     *
     * @throws io.spotserve.exec.DeviceMemoryException if it does not fit; nothing is allocated then
     */
    synchronized byte[] allocateBytes(String what, int bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("cannot allocate " + bytes + " bytes for " + what);
        }
        checkFits(what, bytes);
        byte[] out = new byte[bytes];
        live.add(out);
        account(bytes);
        return out;
    }

    /** Returns a byte buffer's bytes to the arena; null is ignored. */
    synchronized void free(byte[] buffer) {
        if (buffer == null) {
            return;
        }
        if (!live.remove(buffer)) {
            throw new IllegalStateException("device " + id() + ": buffer of " + buffer.length
                    + " bytes was not allocated here or was already freed");
        }
        account(-(long) buffer.length);
    }

    /** Returns a buffer's bytes to the arena; null is ignored. */
    synchronized void free(float[] buffer) {
        if (buffer == null) {
            return;
        }
        if (!live.remove(buffer)) {
            throw new IllegalStateException("device " + id() + ": buffer of " + buffer.length
                    + " floats was not allocated here or was already freed");
        }
        account(-(long) buffer.length * Float.BYTES);
    }

    @Override
    public String toString() {
        return "CpuDevice[" + id() + " " + usedBytes() + "/" + capacityBytes() + " bytes]";
    }
}
