package io.spotserve.model;

import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A parsed GGUF file (versions 2 and 3, little-endian): its metadata key/values, its tensor infos and where the
 * tensor data starts. Parsing reads the header through a memory mapping; tensors are mapped, not read.
 *
 * <p>Layout: magic {@code "GGUF"}, uint32 version, uint64 tensor count, uint64 key/value count; the key/values
 * (string key, uint32 value type, value; strings are uint64 length + UTF-8 bytes, arrays uint32 element type +
 * uint64 count + elements); the tensor infos (name, uint32 dimension count, uint64 dimensions with the fastest
 * first, uint32 GGML type, uint64 offset relative to the data section); padding to {@code general.alignment}
 * (default 32); the data section.
 *
 * <p>Metadata values are held as {@link Long} (all integer types), {@link Double} (f32, f64), {@link Boolean},
 * {@link String} or an unmodifiable {@link List} of those.
 */
public final class GgufFile {
    /** "GGUF" read as a little-endian uint32. */
    static final int MAGIC = 0x46554747;
    static final int DEFAULT_ALIGNMENT = 32;

    /** One tensor's header entry; {@code dims[0]} is the fastest-varying (column) dimension. */
    public record TensorInfo(String name, long[] dims, int ggmlType, long offset) {
        /** Elements in the tensor. */
        public long elements() {
            long n = 1;
            for (long d : dims) {
                n = Math.multiplyExact(n, d);
            }
            return n;
        }
    }

    private final Path file;
    private final int version;
    private final Map<String, Object> metadata;
    private final Map<String, TensorInfo> tensors;
    private final long dataStart;
    private final long fileSize;

    private GgufFile(Path file, int version, Map<String, Object> metadata, Map<String, TensorInfo> tensors,
                     long dataStart, long fileSize) {
        this.file = file;
        this.version = version;
        this.metadata = metadata;
        this.tensors = tensors;
        this.dataStart = dataStart;
        this.fileSize = fileSize;
    }

    /**
     * Parses the header of a GGUF file.
     *
     * @throws ModelFormatException if the magic or version is wrong, the header is truncated or inconsistent
     *                              (a length beyond the file, an unknown value type, a bad alignment)
     */
    public static GgufFile read(Path file) throws IOException {
        Objects.requireNonNull(file, "file");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 4) {
                throw new ModelFormatException(file, "magic", "missing (file is " + size + " bytes)",
                        "\"GGUF\" at offset 0");
            }
            ByteBuffer b = ch.map(FileChannel.MapMode.READ_ONLY, 0, Math.min(size, Integer.MAX_VALUE))
                    .order(ByteOrder.LITTLE_ENDIAN);
            int magic = b.getInt();
            if (magic != MAGIC) {
                throw new ModelFormatException(file, "magic", String.format("0x%08x", magic),
                        "0x46554747 (\"GGUF\"): this is not a GGUF file");
            }
            try {
                int version = b.getInt();
                if (version != 2 && version != 3) {
                    throw new ModelFormatException(file, "version", String.valueOf(version), "2 or 3");
                }
                long tensorCount = b.getLong();
                long kvCount = b.getLong();
                if (tensorCount < 0 || kvCount < 0 || tensorCount > size || kvCount > size) {
                    throw new ModelFormatException(file, "header counts", tensorCount + " tensors, " + kvCount
                            + " key/values", "counts that fit in a " + size + "-byte file");
                }
                Map<String, Object> meta = new LinkedHashMap<>();
                for (long i = 0; i < kvCount; i++) {
                    String key = string(file, b);
                    int type = b.getInt();
                    meta.put(key, value(file, b, type, key));
                }
                Map<String, TensorInfo> infos = new LinkedHashMap<>();
                for (long i = 0; i < tensorCount; i++) {
                    String name = string(file, b);
                    int nd = b.getInt();
                    if (nd < 1 || nd > 4) {
                        throw new ModelFormatException(file, "tensor " + name + " dimension count", String.valueOf(nd),
                                "1 to 4");
                    }
                    long[] dims = new long[nd];
                    for (int d = 0; d < nd; d++) {
                        dims[d] = b.getLong();
                        if (dims[d] <= 0 || dims[d] > size * 8) {
                            throw new ModelFormatException(file, "tensor " + name + " dimension " + d,
                                    String.valueOf(dims[d]), "a positive size");
                        }
                    }
                    int type = b.getInt();
                    long offset = b.getLong();
                    infos.put(name, new TensorInfo(name, dims, type, offset));
                }
                long alignment = DEFAULT_ALIGNMENT;
                Object a = meta.get("general.alignment");
                if (a != null) {
                    if (!(a instanceof Long l) || l <= 0 || Long.bitCount(l) != 1) {
                        throw new ModelFormatException(file, "general.alignment", String.valueOf(a),
                                "a positive power of two");
                    }
                    alignment = l;
                }
                long dataStart = (b.position() + alignment - 1) / alignment * alignment;
                return new GgufFile(file, version, Collections.unmodifiableMap(meta),
                        Collections.unmodifiableMap(infos), dataStart, size);
            } catch (BufferUnderflowException e) {
                throw new ModelFormatException(file, "header", "truncated (the file ends at byte " + size
                        + " inside the metadata or tensor infos)", "a complete GGUF header");
            }
        }
    }

    private static String string(Path file, ByteBuffer b) throws ModelFormatException {
        long len = b.getLong();
        if (len < 0 || len > b.remaining()) {
            throw new ModelFormatException(file, "header", "truncated or corrupt: a string of length " + len
                    + " at byte " + (b.position() - 8) + " runs past the end of the file (" + b.remaining()
                    + " bytes left)", "a complete GGUF header");
        }
        byte[] bytes = new byte[(int) len];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static Object value(Path file, ByteBuffer b, int type, String key) throws ModelFormatException {
        switch (type) {
            case 0: return (long) (b.get() & 0xff);
            case 1: return (long) b.get();
            case 2: return (long) (b.getShort() & 0xffff);
            case 3: return (long) b.getShort();
            case 4: return b.getInt() & 0xffffffffL;
            case 5: return (long) b.getInt();
            case 6: return (double) b.getFloat();
            case 7: return b.get() != 0;
            case 8: return string(file, b);
            case 9: {
                int et = b.getInt();
                long n = b.getLong();
                if (n < 0 || n > b.remaining()) {
                    throw new ModelFormatException(file, "header", "truncated or corrupt: " + key + " is an array of "
                            + n + " elements with " + b.remaining() + " bytes left", "a complete GGUF header");
                }
                List<Object> list = new ArrayList<>((int) n);
                for (long i = 0; i < n; i++) {
                    list.add(value(file, b, et, key));
                }
                return Collections.unmodifiableList(list);
            }
            case 10: case 11: return b.getLong();
            case 12: return b.getDouble();
            default:
                throw new ModelFormatException(file, key, "of value type " + type, "a GGUF value type 0..12");
        }
    }

    public Path file() {
        return file;
    }

    public int version() {
        return version;
    }

    /** All key/values, in file order. */
    public Map<String, Object> metadata() {
        return metadata;
    }

    /** Tensor infos by name, in file order. */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** Absolute offset of the data section. */
    public long dataStart() {
        return dataStart;
    }

    long fileSize() {
        return fileSize;
    }

    /** An integer value, or {@code fallback} when absent. */
    long integer(String key, long fallback) throws ModelFormatException {
        Object v = metadata.get(key);
        if (v == null) {
            return fallback;
        }
        if (!(v instanceof Long l)) {
            throw new ModelFormatException(file, key, String.valueOf(v), "an integer");
        }
        return l;
    }

    /** A required integer value that fits an int. */
    int requiredInt(String key) throws ModelFormatException {
        if (!metadata.containsKey(key)) {
            throw new ModelFormatException(file, key, "missing", "an integer key/value");
        }
        long v = integer(key, 0);
        if (v < 0 || v > Integer.MAX_VALUE) {
            throw new ModelFormatException(file, key, String.valueOf(v), "a value in [0, " + Integer.MAX_VALUE + "]");
        }
        return (int) v;
    }

    /** A floating-point value, or {@code fallback} when absent. */
    double real(String key, double fallback) throws ModelFormatException {
        Object v = metadata.get(key);
        if (v == null) {
            return fallback;
        }
        if (v instanceof Double d) {
            return d;
        }
        if (v instanceof Long l) {
            return l;
        }
        throw new ModelFormatException(file, key, String.valueOf(v), "a number");
    }

    /** A string value, or null when absent. */
    String string(String key) throws ModelFormatException {
        Object v = metadata.get(key);
        if (v != null && !(v instanceof String)) {
            throw new ModelFormatException(file, key, String.valueOf(v), "a string");
        }
        return (String) v;
    }

    /** A list value, or null when absent. */
    List<?> list(String key) throws ModelFormatException {
        Object v = metadata.get(key);
        if (v != null && !(v instanceof List)) {
            throw new ModelFormatException(file, key, String.valueOf(v), "an array");
        }
        return (List<?>) v;
    }
}
