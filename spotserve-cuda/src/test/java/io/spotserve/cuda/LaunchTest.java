package io.spotserve.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Launch shapes cover every row / element exactly as the kernels' indexing assumes. */
class LaunchTest {
    @Test
    void gemvCoversEveryRowWithOneWarpEach() {
        for (int rows : new int[] {1, 7, 8, 9, 512, 4096, 32000}) {
            Launch.Config cfg = Launch.gemv(rows);
            int warps = cfg.gridX() * cfg.blockX() / 32;
            assertTrue(warps >= rows && warps - rows < Launch.GEMV_ROWS_PER_BLOCK, rows + " rows -> " + cfg);
            assertEquals(256, cfg.blockX());
        }
    }

    @Test
    void attentionSharedMemoryHoldsTheLongestSequenceInAPowerOfTwoBucketOrIsRejected() {
        Launch.Config cfg = Launch.attention(3, 4, 257);
        assertEquals(3, cfg.gridX());
        assertEquals(4, cfg.gridY());
        assertEquals(512 * 4, cfg.sharedBytes());
        for (int longest = 1; longest <= 12288; longest++) {
            int bytes = Launch.attention(1, 1, longest).sharedBytes();
            assertTrue(bytes >= longest * 4 && bytes <= 48 * 1024, longest + " -> " + bytes);
            assertTrue(bytes == 48 * 1024 || Integer.bitCount(bytes) == 1, longest + " -> " + bytes);
            assertTrue(bytes <= Math.max(256 * 4, 2 * longest * 4), longest + " -> " + bytes + " wastes too much");
        }
        assertEquals(256 * 4, Launch.attention(1, 1, 1).sharedBytes());
        assertEquals(256 * 4, Launch.attention(1, 1, 256).sharedBytes());
        assertEquals(48 * 1024, Launch.attention(1, 1, 12288).sharedBytes());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Launch.attention(1, 1, 12289));
        assertTrue(e.getMessage().contains("12289 positions needs 49156 bytes"), e.getMessage());
        // an opted-in limit (e.g. 227 KiB on an H100) lets longer contexts through
        assertEquals(65536 * 4 > 227 * 1024 ? 227 * 1024 : 65536 * 4, Launch.attention(1, 1, 40000, 227 * 1024)
                .sharedBytes());
        assertThrows(IllegalArgumentException.class, () -> Launch.attention(1, 1, 60000, 227 * 1024));
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
