package io.spotserve.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Launch shapes cover every row / element exactly as the kernels' indexing assumes. */
class LaunchTest {
    @Test
    void gemvCoversEveryRowWithOneWarpEach() {
        for (int rows : new int[] {1, 3, 4, 5, 7, 8, 9, 512, 2560, 11264, 32000}) {
            Launch.Config cfg = Launch.gemv(rows);
            int warps = cfg.gridX() * cfg.blockX() / 32;
            assertTrue(warps >= rows && warps - rows < Launch.GEMV_ROWS_PER_BLOCK, rows + " rows -> " + cfg);
            assertEquals(Launch.GEMV_ROWS_PER_BLOCK * 32, cfg.blockX());
            assertEquals(1, cfg.gridY());
            assertEquals(0, cfg.sharedBytes());
        }
    }

    @Test
    void attentionSharedMemoryHoldsTheLongestSequenceInAPowerOfTwoBucketOrIsRejected() {
        Launch.Config cfg = Launch.attention(3, 4, 257);
        assertEquals(3, cfg.gridX());
        assertEquals(4, cfg.gridY());
        assertEquals(512 * 4, cfg.sharedBytes());
        int limit = 48 * 1024 - Launch.ATTENTION_STATIC_SHARED_BYTES; // 48512: attention's 640 static bytes
        for (int longest = 1; longest <= 12128; longest++) {
            int bytes = Launch.attention(1, 1, longest).sharedBytes();
            assertTrue(bytes >= longest * 4 && bytes <= limit, longest + " -> " + bytes);
            assertTrue(bytes == limit || Integer.bitCount(bytes) == 1, longest + " -> " + bytes);
            assertTrue(bytes <= Math.max(256 * 4, 2 * longest * 4), longest + " -> " + bytes + " wastes too much");
        }
        assertEquals(256 * 4, Launch.attention(1, 1, 1).sharedBytes());
        assertEquals(256 * 4, Launch.attention(1, 1, 256).sharedBytes());
        assertEquals(limit, Launch.attention(1, 1, 12128).sharedBytes());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Launch.attention(1, 1, 12129));
        assertTrue(e.getMessage().contains("12129 positions needs 48516 bytes of shared memory, more than the 48512"),
                e.getMessage());
        // an opted-in limit (e.g. 227 KiB less 640 static bytes on an H100) lets longer contexts through
        int optIn = 227 * 1024 - 640;
        assertEquals(optIn, Launch.attention(1, 1, 40000, optIn).sharedBytes());
        assertEquals(32768 * 4, Launch.attention(1, 1, 20000, optIn).sharedBytes());
        assertThrows(IllegalArgumentException.class, () -> Launch.attention(1, 1, 60000, optIn));
    }

    @Test
    void elementwiseGridsStrideAndStayBounded() {
        assertEquals(1, Launch.elementwise(0).gridX());
        assertEquals(1, Launch.elementwise(256).gridX());
        assertEquals(2, Launch.elementwise(257).gridX());
        assertEquals(Launch.MAX_GRID, Launch.elementwise(1L << 40).gridX());
        assertThrows(IllegalArgumentException.class, () -> new Launch.Config(0, 1, 32, 0));
        assertThrows(IllegalArgumentException.class, () -> new Launch.Config(1, 1, 2048, 0));
    }
}
