package io.spotserve.exec;

import io.spotserve.model.LlamaConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;

/**
 * The byte format of an exported {@link ContextSlice}: a small self-describing header (magic, version, the
 * model shape, the slice) followed by the slice's floats, little-endian, in the layout documented on the slice.
 *
 * <p>Every executor (CPU, CUDA, a remote worker later) reads and writes this one format, so context migrates
 * between heterogeneous devices and the header lets the receiver reject data for another model or a
 * corrupt transfer before touching its memory.
 */
public final class SliceFormat {
    /** "SSCX" in ASCII. */
    static final int MAGIC = 0x53534358;
    static final int VERSION = 1;
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
        Objects.requireNonNull(config, "config");
        slice.validate(config);
        long expected = slice.floats(config);
        if (data.length != expected) {
            throw new IllegalArgumentException(slice + " needs " + expected + " floats, got " + data.length);
        }
        ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(HEADER_BYTES + 4L * data.length)).order(ByteOrder.LITTLE_ENDIAN);
        buf.putInt(MAGIC).putInt(VERSION);
        buf.putInt(config.dim()).putInt(config.hiddenDim()).putInt(config.layers()).putInt(config.heads())
                .putInt(config.kvHeads()).putInt(config.vocabSize());
        writeSlice(buf, slice);
        buf.putLong(data.length);
        buf.asFloatBuffer().put(data);
        return buf.array();
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
     * Decodes bytes written by {@link #encode}.
     *
     * @throws IllegalArgumentException if the magic, version, model shape or length is wrong
     */
    public static Decoded decode(LlamaConfig config, byte[] bytes) {
        ContextSlice slice = header(config, bytes);
        float[] data = new float[(int) slice.floats(config)];
        ByteBuffer.wrap(bytes, HEADER_BYTES, bytes.length - HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN)
                .asFloatBuffer().get(data);
        return new Decoded(slice, data);
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
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(bytes, "bytes");
        if (bytes.length < HEADER_BYTES) {
            throw new IllegalArgumentException("slice bytes are " + bytes.length + " long, expected at least the "
                    + HEADER_BYTES + "-byte header");
        }
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int magic = buf.getInt();
        if (magic != MAGIC) {
            throw new IllegalArgumentException("slice magic is 0x" + Integer.toHexString(magic) + ", expected 0x"
                    + Integer.toHexString(MAGIC));
        }
        int version = buf.getInt();
        if (version != VERSION) {
            throw new IllegalArgumentException("slice format version " + version + ", expected " + VERSION);
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
        if (count != expected || bytes.length != HEADER_BYTES + 4 * expected) {
            throw new IllegalArgumentException(slice + " declares " + count + " floats in " + bytes.length
                    + " bytes, expected " + expected + " floats (" + (HEADER_BYTES + 4 * expected) + " bytes)");
        }
        return slice;
    }
}
