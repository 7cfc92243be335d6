package io.spotserve.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad GGUF files and Hugging Face folders each fail with one clear {@link ModelFormatException} naming the file,
 * the field and what was expected: truncation, a wrong magic, an unknown tensor type, a tensor outside the file, a
 * missing tokenizer, an unsupported architecture, config/tensor shape mismatches, a missing weights file.
 */
class ModelFilesMalformedTest {
    @TempDir
    static Path dir;
    static byte[] gguf;
    static LlamaCheckpoint ckpt;

    @BeforeAll
    static void write() throws IOException {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        Tokenizer tok = Tokenizer.load(SharedData.tok512(), ckpt.config().vocabSize());
        Path f = dir.resolve("good.gguf");
        GgufWriter.write(f, ckpt, tok, TensorType.F32);
        gguf = Files.readAllBytes(f);
        GgufModel.load(f); // the unmodified file loads
    }

    private static ModelFormatException ggufFails(byte[] bytes) throws IOException {
        Path f = Files.createTempFile(dir, "bad", ".gguf");
        Files.write(f, bytes);
        return assertThrows(ModelFormatException.class, () -> ModelSource.open(f).tokenizer());
    }

    /** Offset of the first occurrence of {@code needle} in the GGUF bytes. */
    private static int find(String needle) {
        byte[] n = needle.getBytes(StandardCharsets.UTF_8);
        outer:
        for (int i = 0; i + n.length <= gguf.length; i++) {
            for (int j = 0; j < n.length; j++) {
                if (gguf[i + j] != n[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError(needle + " not in the file");
    }

    @Test
    void wrongMagic() throws IOException {
        byte[] b = gguf.clone();
        b[0] = 'X';
        // a wrong magic is not GGUF: detected as llama2.c, whose header then fails; GgufModel names the magic
        Path f = dir.resolve("magic.gguf");
        Files.write(f, b);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufModel.load(f));
        assertEquals("magic", e.field());
        assertTrue(e.getMessage().contains("not a GGUF file"), e.getMessage());
    }

    @Test
    void unsupportedVersion() throws IOException {
        byte[] b = gguf.clone();
        b[4] = 7;
        assertEquals("version", ggufFails(b).field());
    }

    @Test
    void truncatedInTheHeader() throws IOException {
        ModelFormatException e = ggufFails(Arrays.copyOf(gguf, find("tokenizer.ggml.scores") + 10));
        assertEquals("header", e.field());
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void truncatedInTheTensorData() throws IOException {
        ModelFormatException e = ggufFails(Arrays.copyOf(gguf, gguf.length - 100));
        assertTrue(e.field().startsWith("tensor ") && e.getMessage().contains("truncated"), e.getMessage());
    }

    /** Byte offset of the uint32 type of the tensor info named {@code name} (a 2-D tensor). */
    private static int typeOffset(String name) {
        int at = find(name);
        // the name is preceded by its uint64 length; after it: uint32 n_dims, n_dims uint64, uint32 type
        int nd = ByteBuffer.wrap(gguf, at + name.length(), 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
        return at + name.length() + 4 + 8 * nd;
    }

    @Test
    void unknownTensorTypeIsNamed() throws IOException {
        byte[] b = gguf.clone();
        int at = typeOffset("blk.0.attn_q.weight");
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at, 12); // Q4_K
        ModelFormatException e = ggufFails(b);
        assertEquals("tensor blk.0.attn_q.weight type", e.field());
        assertTrue(e.getMessage().contains("Q4_K"), e.getMessage());
    }

    @Test
    void tensorOutsideTheFile() throws IOException {
        byte[] b = gguf.clone();
        int at = typeOffset("blk.2.ffn_up.weight") + 4;
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at, 1L << 40);
        ModelFormatException e = ggufFails(b);
        assertEquals("tensor blk.2.ffn_up.weight data", e.field());
    }

    @Test
    void unsupportedArchitecture() throws IOException {
        byte[] b = gguf.clone();
        // the key, its uint32 value type and the value's uint64 length precede the value "llama"
        int at = find("general.architecture") + "general.architecture".length() + 4 + 8;
        System.arraycopy("mamba".getBytes(StandardCharsets.UTF_8), 0, b, at, 5);
        ModelFormatException e = ggufFails(b);
        assertEquals("general.architecture", e.field());
        assertTrue(e.getMessage().contains("\"mamba\""), e.getMessage());
    }

    @Test
    void missingTokenizer() throws IOException {
        Path f = dir.resolve("notok.gguf");
        GgufWriter.write(f, ckpt, null, TensorType.F16);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelSource.open(f).tokenizer());
        assertEquals("tokenizer.ggml.model", e.field());
        assertTrue(e.getMessage().contains("missing"), e.getMessage());
    }

    @Test
    void configTensorShapeMismatchInAFolder() throws IOException {
        Path folder = dir.resolve("hf-shape");
        HfWriter.write(folder, ckpt, TensorType.F32, 1, null);
        Path cfg = folder.resolve("config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"intermediate_size\": 172", "\"intermediate_size\": 176"));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelSource.open(folder));
        assertEquals("tensor model.layers.0.mlp.gate_proj.weight", e.field());
        assertTrue(e.getMessage().contains("[172, 64]") && e.getMessage().contains("[176, 64]"), e.getMessage());
    }

    @Test
    void folderProblems() throws IOException {
        Path folder = dir.resolve("hf-bad");
        HfWriter.write(folder, ckpt, TensorType.F16, 1, null);
        // no tokenizer.json beside the weights
        assertEquals("tokenizer.json",
                assertThrows(ModelFormatException.class, () -> ModelSource.open(folder).tokenizer()).field());
        // an unsupported dtype
        Path st = folder.resolve("model.safetensors");
        byte[] b = Files.readAllBytes(st);
        String header = new String(b, 8, 200, StandardCharsets.ISO_8859_1);
        int at = 8 + header.indexOf("\"F16\"") + 1;
        b[at] = 'I';
        Files.write(st, b);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelSource.open(folder));
        assertTrue(e.field().endsWith("dtype") && e.getMessage().contains("I16"), e.getMessage());
        // truncated weights
        b[at] = 'F';
        Files.write(st, Arrays.copyOf(b, b.length - 10));
        e = assertThrows(ModelFormatException.class, () -> ModelSource.open(folder));
        assertTrue(e.field().endsWith("data_offsets") && e.getMessage().contains("truncated"), e.getMessage());
        // no weights at all
        Files.delete(st);
        assertEquals("weights", assertThrows(ModelFormatException.class, () -> ModelSource.open(folder)).field());
        // not a llama
        Files.writeString(folder.resolve("config.json"), "{\"architectures\": [\"GPT2LMHeadModel\"]}");
        e = assertThrows(ModelFormatException.class, () -> ModelSource.open(folder));
        assertEquals("architectures", e.field());
        // a directory that is no model folder
        assertEquals(ModelSource.Format.LLAMA2C, ModelSource.detect(SharedData.stories260K()));
        Path empty = Files.createDirectories(dir.resolve("not-a-model"));
        assertEquals("model folder", assertThrows(ModelFormatException.class, () -> ModelSource.detect(empty)).field());
    }
}
