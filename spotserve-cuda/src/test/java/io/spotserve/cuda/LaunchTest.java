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
    void attentionSharedMemoryHoldsTheLongestSequenceOrIsRejected() {
        Launch.Config cfg = Launch.attention(3, 4, 257);
        assertEquals(3, cfg.gridX());
        assertEquals(4, cfg.gridY());
        assertEquals(257 * 4, cfg.sharedBytes());
        // 48 KiB less attention's 640 static bytes: 12128 positions
        assertEquals(12128 * 4, Launch.attention(1, 1, 12128).sharedBytes());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Launch.attention(1, 1, 12129));
        assertTrue(e.getMessage().contains("12129 positions needs 48516 bytes of shared memory, more than the 48512"),
                e.getMessage());
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
