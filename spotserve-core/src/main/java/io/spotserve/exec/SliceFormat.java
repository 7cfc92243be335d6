package io.spotserve.exec;

import io.spotserve.model.LlamaConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.Objects;

/**
 * The byte format of an exported {@link ContextSlice}: a small self-describing header (magic, version, the
 * model shape, the slice) followed by the slice's floats, little-endian, in the layout documented on the slice.
 *
 * <p>Every executor (CPU, CUDA, a remote worker later) reads and writes this one format, so context migrates
 * between heterogeneous devices and the header lets the receiver reject data for another model or a
 * corrupt transfer before touching its memory.
 *
 * <p>Version 2 ({@link #encodeQ8}) carries the same floats losslessly in less space when they are Q8_0 values (a
 * pipeline keeping {@link WeightPrecision#Q8_0} weights exports them so): after the same header, one bit per chunk
 * of 32 floats (bit {@code i % 8} of byte {@code i / 8}) says whether chunk i travels as one 34-byte Q8_0 block (an
 * fp16 scale, little-endian, and 32 signed bytes; used only when the block decodes to exactly the chunk's floats, bit
 * for bit) or as its 32 floats; a last partial chunk always travels as floats. {@link #decode} reads both versions
 * and gives the same floats, so importers need not know which one arrived.
 */
public final class SliceFormat {
    /** "SSCX" in ASCII. */
    static final int MAGIC = 0x53534358;
    static final int VERSION = 1;
    /** The version of {@link #encodeQ8}'s payload: chunks of 32 floats as Q8_0 blocks where exact. */
    static final int VERSION_Q8 = 2;
    private static final int CHUNK = 32;
    private static final int BLOCK_BYTES = 34;
    /** magic, version, 6 config ints, kind, layer, 4 range bounds, length (ints) + sequence (long) + count (long). */
    public static final int HEADER_BYTES = 15 * Integer.BYTES + 2 * Long.BYTES;

    private SliceFormat() {
    }

    /** A decoded slice: what it is and its floats. */
    public record Decoded(ContextSlice slice, float[] data) {
    }

    /**
     * Encodes {@code data} as slice {@code slice} of a model of shape {@code config}.
     *
     * @throws IllegalArgumentException if the data length does not match the slice
     */
    public static byte[] encode(LlamaConfig config, ContextSlice slice, float[] data) {
        return encode(config, slice, data, null);
    }

    /**
     * {@link #encode(LlamaConfig, ContextSlice, float[])} into {@code reuse} when it has exactly the encoded length
     * ({@link #HEADER_BYTES} + 4 bytes per float), else into a new array; every byte of the result is written.
     *
     * @param reuse an array the caller no longer needs, or null
     * @throws IllegalArgumentException if the data length does not match the slice
     */
    public static byte[] encode(LlamaConfig config, ContextSlice slice, float[] data, byte[] reuse) {
        Objects.requireNonNull(config, "config");
        slice.validate(config);
        long expected = slice.floats(config);
        if (data.length != expected) {
            throw new IllegalArgumentException(slice + " needs " + expected + " floats, got " + data.length);
        }
        int size = Math.toIntExact(HEADER_BYTES + 4L * data.length);
        ByteBuffer buf = (reuse != null && reuse.length == size ? ByteBuffer.wrap(reuse) : ByteBuffer.allocate(size))
                .order(ByteOrder.LITTLE_ENDIAN);
        putHeader(buf, config, slice, VERSION, data.length);
        buf.asFloatBuffer().put(data);
        return buf.array();
    }

    /**
     * Encodes {@code data} as {@link #encode} does, but in version 2: each chunk of 32 floats that is exactly a Q8_0
     * block's values travels as that 34-byte block (the class comment gives the layout). Lossless: {@link #decode}
     * gives back {@code data} bit for bit. About 1.07 bytes per weight for Q8_0 weights instead of 4.
     *
     * @throws IllegalArgumentException if the data length does not match the slice
     */
    public static byte[] encodeQ8(LlamaConfig config, ContextSlice slice, float[] data) {
        Objects.requireNonNull(config, "config");
        slice.validate(config);
        long expected = slice.floats(config);
        if (data.length != expected) {
            throw new IllegalArgumentException(slice + " needs " + expected + " floats, got " + data.length);
        }
        int chunks = data.length / CHUNK;
        byte[] bitmap = new byte[(chunks + 7) / 8];
        byte[] blocks = new byte[Math.multiplyExact(chunks, BLOCK_BYTES)];
        float[] check = new float[CHUNK];
        long size = HEADER_BYTES + bitmap.length + 4L * (data.length % CHUNK);
        for (int i = 0; i < chunks; i++) {
            if (toBlock(data, i * CHUNK, blocks, i * BLOCK_BYTES, check)) {
                bitmap[i >>> 3] |= (byte) (1 << (i & 7));
                size += BLOCK_BYTES;
            } else {
                size += 4 * CHUNK;
            }
        }
        ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(size)).order(ByteOrder.LITTLE_ENDIAN);
        putHeader(buf, config, slice, VERSION_Q8, data.length);
        buf.put(bitmap);
        for (int i = 0; i < chunks; i++) {
            if ((bitmap[i >>> 3] & (1 << (i & 7))) != 0) {
                buf.put(blocks, i * BLOCK_BYTES, BLOCK_BYTES);
            } else {
                for (int j = 0; j < CHUNK; j++) {
                    buf.putFloat(data[i * CHUNK + j]);
                }
            }
        }
        for (int j = chunks * CHUNK; j < data.length; j++) {
            buf.putFloat(data[j]);
        }
        return buf.array();
    }

    /**
     * Weight slice {@code slice} of {@code weights}, encoded for import: as Q8_0 blocks ({@link #encodeQ8}) when the
     * model's matrices are stored as Q8_0 (a Q8_0 GGUF file: its blocks travel as they are, about 1.07 bytes per
     * weight), as floats ({@link #encode}) otherwise.
     */
    public static byte[] encodeWeights(io.spotserve.model.ModelWeights weights, ContextSlice slice) {
        float[] data = CheckpointSlices.read(weights, slice);
        return ExecutorOptions.storedAsQ8(weights) ? encodeQ8(weights.config(), slice, data)
                : encode(weights.config(), slice, data);
    }

    /**
     * Quantizes 32 floats to a Q8_0 block (scale amax / 127 as fp16, quants rounded to nearest) at {@code out[at]}
     * and returns whether the block decodes to exactly those floats.
     */
    private static boolean toBlock(float[] x, int off, byte[] out, int at, float[] check) {
        float amax = 0;
        for (int j = 0; j < CHUNK; j++) {
            amax = Math.max(amax, Math.abs(x[off + j]));
        }
        if (!(amax < Float.POSITIVE_INFINITY)) {
            return false; // NaN or infinity: never a block
        }
        float d = amax / 127f;
        float inv = d != 0 ? 1f / d : 0f;
        short h = io.spotserve.model.HalfFloats.toHalf(d);
        float dh = io.spotserve.model.HalfFloats.toFloat(h);
        out[at] = (byte) h;
        out[at + 1] = (byte) (h >>> 8);
        for (int j = 0; j < CHUNK; j++) {
            int q = Math.round(x[off + j] * inv);
            if (q < -128 || q > 127) {
                return false;
            }
            out[at + 2 + j] = (byte) q;
            check[j] = dh * q;
            if (Float.floatToRawIntBits(check[j]) != Float.floatToRawIntBits(x[off + j])) {
                return false;
            }
        }
        return true;
    }

    private static void putHeader(ByteBuffer buf, LlamaConfig config, ContextSlice slice, int version, long count) {
        buf.putInt(MAGIC).putInt(version);
        buf.putInt(config.dim()).putInt(config.hiddenDim()).putInt(config.layers()).putInt(config.heads())
                .putInt(config.kvHeads()).putInt(config.vocabSize());
        writeSlice(buf, slice);
        buf.putLong(count);
    }

    /** The {@link #HEADER_BYTES} bytes {@link #encode} starts {@code slice}'s encoding with. */
    public static byte[] headerBytes(LlamaConfig config, ContextSlice slice) {
        Objects.requireNonNull(config, "config");
        slice.validate(config);
        ByteBuffer b = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        putHeader(b, config, slice, VERSION, slice.floats(config));
        return b.array();
    }

    /**
     * Reads only the header: which slice the bytes hold.
     *
     * @throws IllegalArgumentException if the bytes are not a slice of a model of shape {@code config}
     */
    public static ContextSlice peek(LlamaConfig config, byte[] bytes) {
        return header(config, bytes);
    }

    /**
     * {@link #peek(LlamaConfig, byte[])} of the bytes from {@code bytes}' position to its limit (exactly one slice's
     * encoding); the buffer's position, limit and byte order are left as they were.
     *
     * @throws IllegalArgumentException if those bytes are not a slice of a model of shape {@code config}
     */
    public static ContextSlice peek(LlamaConfig config, ByteBuffer bytes) {
        return header(config, bytes);
    }

    /** Bytes {@link #encode} writes for {@code slice}: {@link #HEADER_BYTES} + 4 per float. */
    public static long encodedLength(LlamaConfig config, ContextSlice slice) {
        return HEADER_BYTES + 4 * slice.floats(config);
    }

    /**
     * Starts {@link #encode}'s bytes of {@code slice} in {@code out} without the floats: writes the version-1 header at
     * index 0, sets the position to 0 and the limit to {@link #encodedLength}, and returns a view of the payload
     * (float i at byte {@code HEADER_BYTES + 4·i}, little-endian, whatever {@code out}'s byte order) for the caller to
     * fill with the slice's floats. Filled, the bytes equal {@code encode(config, slice, floats)}.
     *
     * @throws IllegalArgumentException if the slice is not one of the model's, or {@code out}'s capacity is short
     */
    public static FloatBuffer startFloats(LlamaConfig config, ContextSlice slice, ByteBuffer out) {
        Objects.requireNonNull(config, "config");
        slice.validate(config);
        long size = encodedLength(config, slice);
        if (out.capacity() < size) {
            throw new IllegalArgumentException(slice + " takes " + size + " bytes; the buffer holds " + out.capacity());
        }
        out.clear().limit((int) size);
        ByteBuffer w = out.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        putHeader(w, config, slice, VERSION, slice.floats(config));
        return w.slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    }

    /**
     * The payload of version-1 ({@link #encode}) bytes from {@code bytes}' position to its limit, as a read-only
     * little-endian float view (float i of the slice at index i), or null for version-2 ({@link #encodeQ8}) bytes;
     * call it on bytes {@link #peek(LlamaConfig, ByteBuffer)} accepted.
     */
    public static FloatBuffer floats(ByteBuffer bytes) {
        ByteBuffer b = bytes.slice().order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt(4) != VERSION) {
            return null;
        }
        return b.position(HEADER_BYTES).slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().asReadOnlyBuffer();
    }

    /**
     * {@link #decodeInto(LlamaConfig, byte[], float[])} of the bytes from {@code bytes}' position to its limit; the
     * buffer's position, limit and order are left as they were.
     *
     * @throws IllegalArgumentException as the array version
     */
    public static ContextSlice decodeInto(LlamaConfig config, ByteBuffer bytes, float[] into) {
        ContextSlice slice = header(config, bytes);
        if (into.length != slice.floats(config)) {
            throw new IllegalArgumentException(slice + " has " + slice.floats(config) + " floats; the buffer holds "
                    + into.length);
        }
        payload(bytes.slice().order(ByteOrder.LITTLE_ENDIAN), into);
        return slice;
    }

    /**
     * Decodes bytes written by {@link #encode} or {@link #encodeQ8}.
     *
     * @throws IllegalArgumentException if the magic, version, model shape or length is wrong
     */
    public static Decoded decode(LlamaConfig config, byte[] bytes) {
        ContextSlice slice = header(config, bytes);
        float[] data = new float[(int) slice.floats(config)];
        return new Decoded(slice, payload(bytes, data));
    }

    /**
     * Decodes bytes written by {@link #encode} or {@link #encodeQ8} into {@code into} (a buffer the caller reuses),
     * which must hold exactly the slice's floats; every one of them is written.
     *
     * @return the slice the bytes hold
     * @throws IllegalArgumentException if the magic, version, model shape or length is wrong, or {@code into} has
     *                                  another length than the slice's floats (nothing is written then)
     */
    public static ContextSlice decodeInto(LlamaConfig config, byte[] bytes, float[] into) {
        ContextSlice slice = header(config, bytes);
        if (into.length != slice.floats(config)) {
            throw new IllegalArgumentException(slice + " has " + slice.floats(config) + " floats; the buffer holds "
                    + into.length);
        }
        payload(bytes, into);
        return slice;
    }

    /** Reads the payload of bytes whose header was checked into {@code data}. */
    private static float[] payload(byte[] bytes, float[] data) {
        return payload(ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN), data);
    }

    /** {@link #payload(byte[], float[])} of a little-endian buffer whose index 0 is the header's first byte. */
    private static float[] payload(ByteBuffer buf, float[] data) {
        if (buf.getInt(4) == VERSION) {
            buf.position(HEADER_BYTES);
            buf.asFloatBuffer().get(data);
            return data;
        }
        int chunks = data.length / CHUNK;
        int at = HEADER_BYTES + (chunks + 7) / 8;
        for (int i = 0; i < chunks; i++) {
            int o = i * CHUNK;
            if ((buf.get(HEADER_BYTES + (i >>> 3)) & (1 << (i & 7))) != 0) {
                float d = io.spotserve.model.HalfFloats.toFloat(buf.getShort(at));
                for (int j = 0; j < CHUNK; j++) {
                    data[o + j] = d * buf.get(at + 2 + j);
                }
                at += BLOCK_BYTES;
            } else {
                for (int j = 0; j < CHUNK; j++, at += 4) {
                    data[o + j] = buf.getFloat(at);
                }
            }
        }
        for (int j = chunks * CHUNK; j < data.length; j++, at += 4) {
            data[j] = buf.getFloat(at);
        }
        return data;
    }

    /** Bytes {@link #writeSlice} writes: kind, layer, four range bounds, length (ints) and sequence (long). */
    public static final int SLICE_FIELD_BYTES = 7 * Integer.BYTES + Long.BYTES;

    /**
     * Writes which slice this is — its kind and fields, {@link #SLICE_FIELD_BYTES} bytes in the buffer's byte order:
     * the part of this format's header that other payloads describing a slice (a timing-only executor's) reuse.
     */
    public static void writeSlice(ByteBuffer buf, ContextSlice slice) {
        Objects.requireNonNull(slice, "slice");
        int kind;
        int layer = 0;
        int a0 = 0;
        int a1 = 0;
        int b0 = 0;
        int b1 = 0;
        int length = 0;
        long sequence = 0;
        if (slice instanceof ContextSlice.Embedding e) {
            kind = 1;
            a0 = e.vocab().from();
            a1 = e.vocab().to();
        } else if (slice instanceof ContextSlice.Classifier c) {
            kind = 2;
            a0 = c.vocab().from();
            a1 = c.vocab().to();
        } else if (slice instanceof ContextSlice.FinalNorm) {
            kind = 3;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            kind = 4;
            layer = w.layer();
            a0 = w.heads().from();
            a1 = w.heads().to();
            b0 = w.hidden().from();
            b1 = w.hidden().to();
        } else {
            ContextSlice.KvCache k = (ContextSlice.KvCache) slice;
            kind = 5;
            layer = k.layer();
            a0 = k.kvHeads().from();
            a1 = k.kvHeads().to();
            length = k.length();
            sequence = k.sequence();
        }
        buf.putInt(kind).putInt(layer).putInt(a0).putInt(a1).putInt(b0).putInt(b1).putInt(length).putLong(sequence);
    }

    /**
     * Reads what {@link #writeSlice} wrote and checks that the slice fits a model of shape {@code config}.
     *
     * @throws IllegalArgumentException for an unknown kind or a slice outside the model
     */
    public static ContextSlice readSlice(ByteBuffer buf, LlamaConfig config) {
        int kind = buf.getInt();
        int layer = buf.getInt();
        int a0 = buf.getInt();
        int a1 = buf.getInt();
        int b0 = buf.getInt();
        int b1 = buf.getInt();
        int length = buf.getInt();
        long sequence = buf.getLong();
        ContextSlice slice = switch (kind) {
            case 1 -> new ContextSlice.Embedding(new IndexRange(a0, a1));
            case 2 -> new ContextSlice.Classifier(new IndexRange(a0, a1));
            case 3 -> new ContextSlice.FinalNorm();
            case 4 -> new ContextSlice.LayerWeights(layer, new IndexRange(a0, a1), new IndexRange(b0, b1));
            case 5 -> new ContextSlice.KvCache(sequence, layer, new IndexRange(a0, a1), length);
            default -> throw new IllegalArgumentException("slice kind " + kind + " unknown, expected 1..5");
        };
        slice.validate(config);
        return slice;
    }

    private static ContextSlice header(LlamaConfig config, byte[] bytes) {
        Objects.requireNonNull(bytes, "bytes");
        return header(config, ByteBuffer.wrap(bytes));
    }

    /** Checks the header of the bytes from {@code bytes}' position to its limit; leaves the buffer as it was. */
    private static ContextSlice header(LlamaConfig config, ByteBuffer bytes) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(bytes, "bytes");
        int size = bytes.remaining();
        if (size < HEADER_BYTES) {
            throw new IllegalArgumentException("slice bytes are " + size + " long, expected at least the "
                    + HEADER_BYTES + "-byte header");
        }
        ByteBuffer buf = bytes.slice().order(ByteOrder.LITTLE_ENDIAN);
        int magic = buf.getInt();
        if (magic != MAGIC) {
            throw new IllegalArgumentException("slice magic is 0x" + Integer.toHexString(magic) + ", expected 0x"
                    + Integer.toHexString(MAGIC));
        }
        int version = buf.getInt();
        if (version != VERSION && version != VERSION_Q8) {
            throw new IllegalArgumentException("slice format version " + version + ", expected " + VERSION + " or "
                    + VERSION_Q8);
        }
        int[] shape = {buf.getInt(), buf.getInt(), buf.getInt(), buf.getInt(), buf.getInt(), buf.getInt()};
        int[] want = {config.dim(), config.hiddenDim(), config.layers(), config.heads(), config.kvHeads(),
                config.vocabSize()};
        if (!Arrays.equals(shape, want)) {
            throw new IllegalArgumentException("slice is for model shape (dim, hidden, layers, heads, kv_heads, vocab) "
                    + Arrays.toString(shape) + ", expected " + Arrays.toString(want));
        }
        ContextSlice slice = readSlice(buf, config);
        long count = buf.getLong();
        long expected = slice.floats(config);
        long length = version == VERSION ? HEADER_BYTES + 4 * expected : q8Length(buf, expected);
        if (count != expected || size != length) {
            throw new IllegalArgumentException(slice + " declares " + count + " floats in " + size
                    + " bytes, expected " + expected + " floats (" + (length < 0 ? "a chunk bitmap past the end"
                    : length + " bytes") + (version == VERSION_Q8 ? ", version 2" : "") + ")");
        }
        return slice;
    }

    /** Bytes a version-2 slice of {@code floats} floats takes by its chunk bitmap, or -1 if the bitmap is cut off. */
    private static long q8Length(ByteBuffer bytes, long floats) {
        long chunks = floats / CHUNK;
        long bitmapEnd = HEADER_BYTES + (chunks + 7) / 8;
        if (bytes.limit() < bitmapEnd) {
            return -1;
        }
        long length = bitmapEnd + 4 * (floats % CHUNK);
        for (long i = 0; i < chunks; i++) {
            boolean block = (bytes.get((int) (HEADER_BYTES + (i >>> 3))) & (1 << (i & 7))) != 0;
            length += block ? BLOCK_BYTES : 4 * CHUNK;
        }
        return length;
    }
}
