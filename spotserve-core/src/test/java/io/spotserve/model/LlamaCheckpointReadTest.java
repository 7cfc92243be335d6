package io.spotserve.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.spotserve.model.LlamaCheckpoint.Tensor;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link LlamaCheckpoint#read} goes through positional file reads in chunks, not through the mapping: every tensor,
 * every layer, ranges that start mid-row and that span several chunks, must equal the mapped views element for
 * element, and ranges outside a tensor (or a layer) must be refused as before.
 */
class LlamaCheckpointReadTest {
    @TempDir
    Path dir;

    /** dim 256, hidden 320: a layer's w1 is 81,920 floats (more than one 64K-float read chunk). */
    private static final LlamaConfig C = new LlamaConfig(256, 320, 2, 4, 2, 300, 16, false);

    @Test
    void readsEqualTheMappedViewsForEveryTensorAndLayer() throws IOException {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("m.bin"), C, 7));
        assertEquals(true, (long) C.hiddenDim() * C.dim() * Float.BYTES > FileReads.CHUNK_BYTES);
        for (Tensor t : Tensor.values()) {
            boolean perLayer = switch (t) {
                case RMS_ATT, WQ, WK, WV, WO, RMS_FFN, W1, W2, W3 -> true;
                default -> false;
            };
            for (int l = 0; l < (perLayer ? C.layers() : 1); l++) {
                FloatBuffer view = perLayer ? ckpt.layer(t, l) : ckpt.tensor(t);
                float[] expected = new float[view.remaining()];
                view.get(expected);
                float[] all = new float[expected.length + 3];
                ckpt.read(t, l, 0, all, 3, expected.length);
                assertArrayEquals(expected, java.util.Arrays.copyOfRange(all, 3, all.length), 0f, t + " layer " + l);
                int from = expected.length / 3 + 1;
                float[] part = new float[expected.length - from - 1];
                ckpt.read(t, l, from, part, 0, part.length);
                assertArrayEquals(java.util.Arrays.copyOfRange(expected, from, from + part.length), part, 0f,
                        t + " layer " + l + " from " + from);
            }
        }
    }

    @Test
    void rangesOutsideATensorOrLayerAreRefused() throws IOException {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("m.bin"), C, 7));
        float[] dst = new float[C.dim() * C.dim() + 1];
        assertThrows(IndexOutOfBoundsException.class, () -> ckpt.read(Tensor.WQ, 0, 1, dst, 0, C.dim() * C.dim()));
        assertThrows(IndexOutOfBoundsException.class, () -> ckpt.read(Tensor.WQ, 0, -1, dst, 0, 4));
        assertThrows(IndexOutOfBoundsException.class, () -> ckpt.read(Tensor.WQ, 2, 0, dst, 0, 4));
        assertThrows(IndexOutOfBoundsException.class, () -> ckpt.read(Tensor.RMS_FINAL, 0, 0, dst, 0, C.dim() + 1));
        assertThrows(IndexOutOfBoundsException.class, () -> ckpt.read(Tensor.RMS_FINAL, 0, 0, dst, dst.length - 2, 4));
    }

    /** As with the mapping it replaced, a loaded checkpoint stays readable after its file is deleted. */
    @Test
    void aLoadedCheckpointStaysReadableAfterItsFileIsDeleted() throws IOException {
        Path f = LlamaCheckpointWriter.writeRandom(dir.resolve("gone.bin"), C, 9);
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(f);
        float[] expected = new float[C.dim()];
        ckpt.layer(Tensor.WQ, 1).get(expected);
        java.nio.file.Files.delete(f);
        float[] got = new float[C.dim()];
        ckpt.read(Tensor.WQ, 1, 0, got, 0, got.length);
        assertArrayEquals(expected, got, 0f);
    }
}
