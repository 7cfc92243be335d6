package io.spotserve.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.spotserve.testing.NodeReference;
import io.spotserve.testing.SharedData;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The GGUF files our {@link GgufWriter} produces, parsed by an independent implementation ({@code @huggingface/gguf}
 * from npm): every metadata key, value type and value, every tensor's name, shape, type and offset, and the data
 * section's start must be what our reader sees.
 */
class GgufCrossCheckTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0"})
    void huggingFaceParserReadsWhatWeWrote(TensorType type) throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        Tokenizer tok = Tokenizer.load(SharedData.tok512(), ckpt.config().vocabSize());
        Path file = dir.resolve("m.gguf");
        GgufWriter.write(file, ckpt, tok, type);
        JsonObject ref = JsonParser.parseString(NodeReference.node("gguf-header.mjs", file.toAbsolutePath().toString()))
                .getAsJsonObject();
        GgufFile ours = GgufFile.read(file);

        JsonObject meta = ref.getAsJsonObject("meta");
        assertEquals(3, meta.getAsJsonObject("version").get("value").getAsInt());
        assertEquals(ours.tensors().size(), meta.getAsJsonObject("tensor_count").get("value").getAsInt());
        assertEquals(ours.metadata().size(), meta.getAsJsonObject("kv_count").get("value").getAsInt());
        for (Map.Entry<String, Object> e : ours.metadata().entrySet()) {
            JsonObject r = meta.getAsJsonObject(e.getKey());
            assertEquals(true, r != null, "reference lacks key " + e.getKey());
            if (e.getValue() instanceof List<?> list) {
                assertEquals(list.size(), r.get("length").getAsInt(), e.getKey());
                var values = r.getAsJsonArray("values");
                for (int i = 0; i < list.size(); i++) {
                    assertScalar(list.get(i), values.get(i), e.getKey() + "[" + i + "]");
                }
            } else {
                assertScalar(e.getValue(), r.get("value"), e.getKey());
            }
        }
        var tensors = ref.getAsJsonArray("tensors");
        assertEquals(ours.tensors().size(), tensors.size());
        int i = 0;
        for (GgufFile.TensorInfo t : ours.tensors().values()) {
            JsonObject r = tensors.get(i++).getAsJsonObject();
            assertEquals(t.name(), r.get("name").getAsString());
            assertEquals(t.ggmlType(), r.get("dtype").getAsInt(), t.name());
            assertEquals(t.offset(), r.get("offset").getAsLong(), t.name());
            var shape = r.getAsJsonArray("shape");
            assertEquals(t.dims().length, shape.size(), t.name());
            for (int d = 0; d < t.dims().length; d++) {
                assertEquals(t.dims()[d], shape.get(d).getAsLong(), t.name() + " dim " + d);
            }
        }
        long refStart = ref.get("tensorDataOffset").getAsLong();
        if (refStart >= 0) {
            assertEquals(ours.dataStart(), refStart);
        }
    }

    private static void assertScalar(Object ours, JsonElement ref, String what) {
        if (ours instanceof String s) {
            assertEquals(s, ref.getAsString(), what);
        } else if (ours instanceof Long l) {
            assertEquals((long) l, ref.getAsLong(), what);
        } else if (ours instanceof Double d) {
            assertEquals(d, ref.getAsDouble(), 0.0, what);
        } else {
            assertEquals(ours, ref.getAsBoolean(), what);
        }
    }
}
