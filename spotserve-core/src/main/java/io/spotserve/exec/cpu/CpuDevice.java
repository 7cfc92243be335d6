package io.spotserve.exec.cpu;

import io.spotserve.exec.spi.ArenaDevice;
import io.spotserve.plan.DeviceId;
import java.lang.ref.SoftReference;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.Set;

/**
 * A CPU stand-in for one accelerator: a byte budget from which every weight and KV-cache buffer of the
 * positions placed on it is allocated (as Java float arrays). Allocation is all-or-nothing, so a failed
 * request leaves the arena exactly as it was.
 *
 * <p>Layer blocks ({@link #allocateLayer} / {@link #freeLayer}) are kept when freed, as spares, and handed to the
 * next layer allocation of the same length without zeroing them again (a migration releases and imports layers of
 * one size over and over; a fresh 8.6 MB array costs a zeroing pass and a humongous allocation). A spare's bytes count
 * as free in the arena, and the device never keeps more heap than its capacity: spares are dropped (oldest first)
 * before a fresh allocation would take the bytes in use plus the spares' over it, all of them when a layer of another
 * length is asked for (the layout changed), and when the device is destroyed. Spares are held softly: a JVM whose heap
 * is smaller than its devices' capacities collects them before it would run out of memory. A spare belongs to no
 * pipeline: its owner dropped its reference when it freed it, and it goes to exactly one new owner.
 */
final class CpuDevice extends ArenaDevice {
    private final Set<Object> live = Collections.newSetFromMap(new IdentityHashMap<>());
    /** Freed layer blocks, oldest first; not zeroed. */
    private final ArrayDeque<Spare> spares = new ArrayDeque<>();
    /** Bytes of the spares (those the collector cleared included, until they are looked at). */
    private long spareBytes;
    /** Layer blocks handed out from the spares so far. */
    private long reused;

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
        trimSpares(bytes);
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
        trimSpares(bytes);
        byte[] out = new byte[bytes];
        live.add(out);
        account(bytes);
        return out;
    }

    /**
     * Allocates one layer block of {@code floats} floats: a spare of that length when there is one (its contents are an
     * earlier layer's: the caller writes every float before it reads one), else a new zeroed array.
     *
     * @throws io.spotserve.exec.DeviceMemoryException if it does not fit; nothing is allocated then
     */
    synchronized float[] allocateLayer(String what, int floats) {
        long bytes = bytesFor(what, floats);
        checkFits(what, bytes);
        float[] out = null;
        for (Iterator<Spare> it = spares.iterator(); it.hasNext() && out == null; ) {
            Spare s = it.next();
            float[] block = s.block.get();
            if (block == null || s.length == floats) { // collected (forgotten), or the one taken
                it.remove();
                spareBytes -= (long) s.length * Float.BYTES;
                out = block;
            }
        }
        if (out != null) {
            reused++;
        } else {
            dropSpares(); // none of this length: the layout changed, the spares would only hold heap
            out = new float[floats];
        }
        live.add(out);
        account(bytes);
        return out;
    }

    /** Returns a layer block's bytes to the arena and keeps the block as a spare for the next layer; null is ignored. */
    synchronized void freeLayer(float[] block) {
        free(block);
        if (block != null) {
            spares.addLast(new Spare(new SoftReference<>(block), block.length));
            spareBytes += (long) block.length * Float.BYTES;
        }
    }

    /** A freed layer block of {@code length} floats, held softly. */
    private record Spare(SoftReference<float[]> block, int length) {
    }

    /** Drops the oldest spares until {@code bytes} more in use leave the bytes in use plus the spares' within capacity. */
    private void trimSpares(long bytes) {
        while (!spares.isEmpty() && usedBytes() + bytes + spareBytes > capacityBytes()) {
            spareBytes -= (long) spares.removeFirst().length() * Float.BYTES;
        }
    }

    /** Drops every spare layer block (their heap goes to the collector). */
    synchronized void dropSpares() {
        spares.clear();
        spareBytes = 0;
    }

    /** Clears the spares' references as a collector short of heap does (for tests); their bytes go at the next look. */
    synchronized void clearSpareReferences() {
        for (Spare s : spares) {
            s.block.clear();
        }
    }

    /** How many layer blocks were handed out from the spares. */
    synchronized long reusedLayers() {
        return reused;
    }

    /** Bytes of the spare layer blocks kept. */
    synchronized long spareBytes() {
        return spareBytes;
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
