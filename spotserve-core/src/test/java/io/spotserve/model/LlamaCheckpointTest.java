package io.spotserve.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import java.io.IOException;
import java.nio.FloatBuffer;
import org.junit.jupiter.api.Test;

class LlamaCheckpointTest {

    @Test
    void loadsTheRealStories260KHeader() throws IOException {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        LlamaConfig c = ckpt.config();
        assertEquals(new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true), c);
        assertEquals(8, c.headSize());
        assertEquals(32, c.kvDim());
        FloatBuffer wq1 = ckpt.layer(LlamaCheckpoint.Tensor.WQ, 1);
        assertEquals(64 * 64, wq1.remaining());
        FloatBuffer all = ckpt.tensor(LlamaCheckpoint.Tensor.WQ);
        assertEquals(all.get(64 * 64 + 5), wq1.get(5));
        assertTrue(ckpt.tensor(LlamaCheckpoint.Tensor.CLASSIFIER).isReadOnly());
    }
}
