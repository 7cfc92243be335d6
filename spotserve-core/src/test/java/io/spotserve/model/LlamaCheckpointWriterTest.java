package io.spotserve.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.model.LlamaCheckpoint.Tensor;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaCheckpointWriterTest {
    @TempDir
    Path dir;

    private static float[] all(FloatBuffer b) {
        float[] a = new float[b.remaining()];
        b.get(a);
        return a;
    }

    @Test
    void rewritingTheRealModelReproducesItsBytes() throws IOException {
        LlamaCheckpoint real = LlamaCheckpoint.load(SharedData.stories260K());
        Map<Tensor, float[]> tensors = new EnumMap<>(Tensor.class);
        for (Tensor t : Tensor.values()) {
            if (t != Tensor.CLASSIFIER) {
                tensors.put(t, all(real.tensor(t)));
            }
        }
        Path copy = LlamaCheckpointWriter.write(dir.resolve("copy.bin"), real.config(), tensors);
        assertArrayEquals(Files.readAllBytes(SharedData.stories260K()), Files.readAllBytes(copy));
        // and without FREQ_CIS the writer computes tables close to the exported ones
        tensors.remove(Tensor.FREQ_CIS);
        LlamaCheckpoint again = LlamaCheckpoint.load(LlamaCheckpointWriter.write(dir.resolve("c2.bin"), real.config(), tensors));
        assertArrayEquals(all(real.tensor(Tensor.FREQ_CIS)), all(again.tensor(Tensor.FREQ_CIS)), 1e-4f);
    }

    @Test
    void randomCheckpointsAreReproducibleAndLoadable() throws IOException {
        LlamaConfig c = new LlamaConfig(32, 48, 2, 4, 2, 100, 16, false);
        LlamaCheckpoint a = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("a.bin"), c, 7));
        LlamaCheckpoint b = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("b.bin"), c, 7));
        LlamaCheckpoint other = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("o.bin"), c, 8));
        assertEquals(c, a.config());
        assertArrayEquals(Files.readAllBytes(a.file()), Files.readAllBytes(b.file()));
        assertFalse(java.util.Arrays.equals(all(a.tensor(Tensor.WQ)), all(other.tensor(Tensor.WQ))));
        float[] wq = all(a.tensor(Tensor.WQ));
        double sq = 0;
        for (float v : wq) {
            sq += v * v;
        }
        double std = Math.sqrt(sq / wq.length);
        assertTrue(std > 0.015 && std < 0.025, "std " + std);
        assertFalse(java.util.Arrays.equals(all(a.tensor(Tensor.CLASSIFIER)), all(a.tensor(Tensor.TOKEN_EMBEDDING))));
    }

    @Test
    void wrongTensorsAreRejectedBeforeWriting() {
        LlamaConfig c = new LlamaConfig(8, 16, 1, 2, 2, 10, 4, true);
        Map<Tensor, float[]> tensors = new EnumMap<>(Tensor.class);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LlamaCheckpointWriter.write(dir.resolve("x.bin"), c, tensors));
        assertTrue(e.getMessage().contains("tensor TOKEN_EMBEDDING missing; expected 80 floats"), e.getMessage());
        tensors.put(Tensor.TOKEN_EMBEDDING, new float[79]);
        e = assertThrows(IllegalArgumentException.class, () -> LlamaCheckpointWriter.write(dir.resolve("x.bin"), c, tensors));
        assertTrue(e.getMessage().contains("has 79 floats, expected 80"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("x.bin")));
    }
}
