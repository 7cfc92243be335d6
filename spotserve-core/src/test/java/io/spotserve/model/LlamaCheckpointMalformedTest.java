package io.spotserve.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every way a checkpoint can be broken, each made from the real stories260K.bin (1,056,540 bytes; header
 * dim 64, hidden_dim 172, n_layers 5, n_heads 8, n_kv_heads 4, vocab_size 512, seq_len 512).
 */
class LlamaCheckpointMalformedTest {
    private static final int REAL_SIZE = 1_056_540;
    private static final String REAL_HEADER = "(dim 64, hidden_dim 172, n_layers 5, n_heads 8, n_kv_heads 4, "
            + "vocab_size 512, seq_len 512)";

    @TempDir
    Path dir;

    @Test
    void truncatedInsideTheHeader() throws IOException {
        Path f = write(Arrays.copyOf(real(), 10));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f));
        assertEquals("header", e.field());
        assertEquals(f, e.file());
        assertEquals(f + ": field 'header' is 10 bytes long, expected at least 28 bytes (7 int32 header fields)",
                e.getMessage());
    }

    @Test
    void emptyFile() throws IOException {
        Path f = write(new byte[0]);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f));
        assertEquals("header", e.field());
        assertTrue(e.getMessage().contains("is 0 bytes long"), e.getMessage());
    }

    @Test
    void truncatedWeights() throws IOException {
        Path f = write(Arrays.copyOf(real(), REAL_SIZE - 1000));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f));
        assertEquals("file size", e.field());
        assertEquals(f + ": field 'file size' is 1055540 bytes (truncated: 1000 bytes missing), expected 1056540 "
                + "bytes for header " + REAL_HEADER, e.getMessage());
    }

    @Test
    void onlyTheHeader() throws IOException {
        Path f = write(Arrays.copyOf(real(), 28));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f));
        assertEquals("file size", e.field());
        assertTrue(e.getMessage().contains("is 28 bytes (truncated: 1056512 bytes missing)"), e.getMessage());
    }

    @Test
    void extraTrailingBytes() throws IOException {
        Path f = write(Arrays.copyOf(real(), REAL_SIZE + 4));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f));
        assertEquals("file size", e.field());
        assertEquals(f + ": field 'file size' is 1056544 bytes (4 unexpected trailing bytes), expected 1056540 "
                + "bytes for header " + REAL_HEADER, e.getMessage());
    }

    @Test
    void negativeZeroAndAbsurdHeaderFields() throws IOException {
        String[] names = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
        for (int field = 0; field < names.length; field++) {
            for (int value : new int[] {-1, 0, Integer.MIN_VALUE, 1 << 30}) {
                if (names[field].equals("vocab_size") && value == -1) {
                    continue; // -1 is legal there (separate classifier of one token); covered below
                }
                Path f = write(withHeader(field, value));
                ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f),
                        names[field] + " = " + value);
                assertEquals(names[field], e.field(), names[field] + " = " + value);
                String expected = names[field].equals("vocab_size")
                        ? "a non-zero value with |vocab_size| <= 1048576 (negative = separate classifier)"
                        : "a value in [1, 1048576]";
                assertEquals(f + ": field '" + names[field] + "' is " + value + ", expected " + expected,
                        e.getMessage());
            }
        }
    }

    @Test
    void headCountsThatDoNotDivide() throws IOException {
        Path f1 = write(withHeader(3, 7)); // n_heads 7 does not divide dim 64
        ModelFormatException e1 = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f1));
        assertEquals("n_heads", e1.field());
        assertEquals(f1 + ": field 'n_heads' is 7, expected a divisor of dim 64", e1.getMessage());

        Path f2 = write(withHeader(4, 3)); // n_kv_heads 3 does not divide n_heads 8
        ModelFormatException e2 = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f2));
        assertEquals("n_kv_heads", e2.field());
        assertEquals(f2 + ": field 'n_kv_heads' is 3, expected a divisor of n_heads 8", e2.getMessage());

        Path f3 = write(withHeader(4, 16)); // more kv heads than heads
        assertEquals("n_kv_heads", assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f3)).field());

        byte[] oddHead = withHeader(3, 64); // head_size 1: rotary pairs impossible
        ByteBuffer.wrap(oddHead).order(ByteOrder.LITTLE_ENDIAN).putInt(16, 64);
        Path f4 = write(oddHead);
        ModelFormatException e4 = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f4));
        assertEquals("n_heads", e4.field());
        assertTrue(e4.getMessage().contains("an even head_size (dim 64 / n_heads is 1)"), e4.getMessage());
    }

    @Test
    void headerWhoseSizeOverflowsALong() throws IOException {
        byte[] bytes = real();
        ByteBuffer header = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int field : new int[] {0, 1, 2}) { // dim, hidden_dim, n_layers all 2^20
            header.putInt(field * 4, 1 << 20);
        }
        Path f = write(bytes);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f));
        assertEquals("header", e.field());
        assertTrue(e.getMessage().contains("expected dimensions whose weights fit in 9223372036854775807 bytes"),
                e.getMessage());
    }

    @Test
    void headerThatDescribesADifferentModel() throws IOException {
        Path f = write(withHeader(6, 256)); // seq_len 256: the RoPE tables would be shorter
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f));
        assertEquals("file size", e.field());
        // seq_len * head_size floats fewer: 256 * 8 * 4 bytes
        assertTrue(e.getMessage().contains("is 1056540 bytes (8192 unexpected trailing bytes), expected 1048348"),
                e.getMessage());
    }

    @Test
    void separateClassifierIsReadFromTheEndOfTheFile() throws IOException {
        byte[] base = real();
        int embeddingBytes = 512 * 64 * Float.BYTES;
        // vocab_size negated, the embedding appended once as-is and once scaled by 2 (to see which one is read)
        for (float scale : new float[] {1f, 2f}) {
            ByteBuffer out = ByteBuffer.allocate(base.length + embeddingBytes).order(ByteOrder.LITTLE_ENDIAN);
            out.put(base);
            out.putInt(20, -512);
            ByteBuffer embedding = ByteBuffer.wrap(base, 28, embeddingBytes).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < 512 * 64; i++) {
                out.putFloat(embedding.getFloat() * scale);
            }
            Path f = Files.write(dir.resolve("separate-" + scale + ".bin"), out.array());
            LlamaCheckpoint ckpt = LlamaCheckpoint.load(f);
            assertFalse(ckpt.config().sharedClassifier());
            assertEquals(512, ckpt.config().vocabSize());
            FloatBuffer emb = ckpt.tensor(LlamaCheckpoint.Tensor.TOKEN_EMBEDDING);
            FloatBuffer cls = ckpt.tensor(LlamaCheckpoint.Tensor.CLASSIFIER);
            assertEquals(512 * 64, cls.remaining());
            assertNotSame(emb, cls);
            for (int i = 0; i < 512 * 64; i++) {
                assertEquals(emb.get(i) * scale, cls.get(i), "classifier float " + i);
            }
            assertTrue(ckpt.toString().contains("vocab_size -512"), ckpt.toString());
            assertEquals(ckpt.config().parameterCount(), (f.toFile().length() - 28) / 4 - 512 * 8);
        }
        // and the shared-classifier original aliases the embedding
        LlamaCheckpoint shared = LlamaCheckpoint.load(SharedData.stories260K());
        assertEquals(shared.tensor(LlamaCheckpoint.Tensor.TOKEN_EMBEDDING), shared.tensor(LlamaCheckpoint.Tensor.CLASSIFIER));
    }

    @Test
    void negativeVocabWithoutTheClassifierIsTruncated() throws IOException {
        byte[] bytes = real();
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(20, -512);
        Path f = write(bytes);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaCheckpoint.load(f));
        assertEquals("file size", e.field());
        assertTrue(e.getMessage().contains("(truncated: 131072 bytes missing)")
                && e.getMessage().contains("vocab_size -512"), e.getMessage());
    }

    private byte[] withHeader(int field, int value) throws IOException {
        byte[] bytes = real();
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(field * 4, value);
        return bytes;
    }

    private Path write(byte[] bytes) throws IOException {
        return Files.write(Files.createTempFile(dir, "ckpt", ".bin"), bytes);
    }

    private static byte[] real() throws IOException {
        byte[] bytes = Files.readAllBytes(SharedData.stories260K());
        assertEquals(REAL_SIZE, bytes.length);
        return bytes;
    }
}
