package io.spotserve.model;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One {@code .safetensors} file, memory-mapped: a little-endian uint64 header length {@code N}, a JSON header of
 * {@code N} bytes mapping tensor names to {@code dtype}, {@code shape} and {@code data_offsets} (relative to the
 * byte after the header), then the data. F32, F16 and BF16 tensors of one or two dimensions are supported.
 */
final class SafetensorsFile {
    /** Largest header we accept (the format's own limit is 100 MB). */
    static final long MAX_HEADER = 100L << 20;

    private SafetensorsFile() {
    }

    /**
     * Maps every tensor of {@code file} into {@code into}.
     *
     * @throws ModelFormatException for a truncated file, a header that is not JSON, an unsupported dtype, or data
     *                              offsets outside the file
     */
    static void read(Path file, Map<String, MappedTensor> into) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            FileReads reads = new FileReads(file); // opened now: the model stays readable if the file goes away
            long size = ch.size();
            if (size < 8) {
                throw new ModelFormatException(file, "header length", "missing (file is " + size + " bytes)",
                        "a uint64 at offset 0");
            }
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            while (len.hasRemaining() && ch.read(len, len.position()) >= 0) {
                // read fully
            }
            long n = len.flip().getLong();
            if (n <= 0 || n > MAX_HEADER || 8 + n > size) {
                throw new ModelFormatException(file, "header length", String.valueOf(n),
                        "a JSON header length within the file's " + size + " bytes (at most " + MAX_HEADER + ")");
            }
            ByteBuffer json = ch.map(FileChannel.MapMode.READ_ONLY, 8, n);
            byte[] bytes = new byte[(int) n];
            json.get(bytes);
            JsonObject header;
            try {
                header = JsonParser.parseString(new String(bytes, StandardCharsets.UTF_8).trim()).getAsJsonObject();
            } catch (RuntimeException e) {
                throw new ModelFormatException(file, "header", "not a JSON object (" + e.getMessage() + ")",
                        "the safetensors JSON header");
            }
            long dataStart = 8 + n;
            for (Map.Entry<String, JsonElement> e : header.entrySet()) {
                if (e.getKey().equals("__metadata__")) {
                    continue;
                }
                String name = e.getKey();
                JsonObject t = e.getValue().getAsJsonObject();
                String dtype = t.get("dtype").getAsString();
                TensorType type = switch (dtype) {
                    case "F32" -> TensorType.F32;
                    case "F16" -> TensorType.F16;
                    case "BF16" -> TensorType.BF16;
                    default -> throw new ModelFormatException(file, "tensor " + name + " dtype", dtype,
                            "F32, F16 or BF16");
                };
                var shape = t.getAsJsonArray("shape");
                if (shape.size() < 1 || shape.size() > 2) {
                    throw new ModelFormatException(file, "tensor " + name + " shape", shape.toString(),
                            "one or two dimensions");
                }
                long rows = shape.size() == 2 ? shape.get(0).getAsLong() : 1;
                long cols = shape.get(shape.size() - 1).getAsLong();
                var offsets = t.getAsJsonArray("data_offsets");
                long begin = offsets.get(0).getAsLong();
                long end = offsets.get(1).getAsLong();
                if (rows <= 0 || cols <= 0 || cols > Integer.MAX_VALUE) {
                    throw new ModelFormatException(file, "tensor " + name + " shape", shape.toString(),
                            "positive dimensions");
                }
                long bytesWanted = MappedTensor.bytes(type, rows, (int) cols);
                if (begin < 0 || end - begin != bytesWanted || dataStart + end > size) {
                    throw new ModelFormatException(file, "tensor " + name + " data_offsets", "[" + begin + ", " + end
                            + "] (file data section is " + (size - dataStart) + " bytes)", bytesWanted
                            + " bytes for " + dtype + " " + shape + " inside the file (truncated or corrupt file)");
                }
                into.put(name, MappedTensor.map(ch, name, type, rows, (int) cols, dataStart + begin, reads));
            }
        }
    }
}
