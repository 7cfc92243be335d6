package io.spotserve.worker;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedDeque;

/**
 * Direct buffers of finished bulk transfers, kept for the next ones (at most {@link #POOL_BYTES} in all), so that
 * transfers of slices of one size stop allocating direct memory (which only a collection frees).
 */
final class BulkBuffers {
    /** Bytes of direct buffers kept between transfers (two 25M-model layer slices each way). */
    static final long POOL_BYTES = 64L << 20;
    /** Asks an export for a new direct buffer (it is never big enough to be written into). */
    static final ByteBuffer DIRECT = ByteBuffer.allocateDirect(0);

    private final ConcurrentLinkedDeque<ByteBuffer> pool = new ConcurrentLinkedDeque<>();

    /** A pooled direct buffer, or null. */
    ByteBuffer take() {
        return pool.pollFirst();
    }

    /** A pooled direct buffer of at least {@code size} bytes, else a new one from {@code conn}. */
    ByteBuffer take(int size, BulkConnection conn) {
        for (ByteBuffer b : pool) {
            if (b.capacity() >= size && pool.remove(b)) {
                return b;
            }
        }
        return conn.allocate(size);
    }

    /** Keeps a direct buffer for a later transfer while the pool has room; drops it otherwise. */
    void give(ByteBuffer b) {
        if (b == null || !b.isDirect() || b.capacity() == 0) {
            return;
        }
        long held = b.capacity();
        for (ByteBuffer x : pool) {
            held += x.capacity();
        }
        if (held <= POOL_BYTES) {
            pool.offerFirst(b);
        }
    }
}
