package io.spotserve.bench.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.SliceFormat;
import io.spotserve.model.LlamaConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;

/**
 * The payload the timing executor moves instead of a slice's floats: a fixed {@value #BYTES}-byte descriptor
 * (magic, version, the full model shape, the slice's kind and fields), little-endian. Decoding also accepts the
 * float format of every other executor ({@link SliceFormat}; only its header is read), so a checkpoint-backed
 * weight source or a CPU pipeline can feed a timing pipeline.
 */
final class SliceDescriptor {
    /** "SSTM" in ASCII. */
    static final int MAGIC = 0x5353544D;
    static final int VERSION = 1;
    /** magic, version, 8 shape ints, then the slice's kind and fields as {@link SliceFormat#writeSlice} writes them. */
    static final int BYTES = 10 * Integer.BYTES + SliceFormat.SLICE_FIELD_BYTES;
    /** {@link SliceFormat}'s magic ("SSCX"), recognised to read its header. */
    private static final int FLOAT_FORMAT_MAGIC = 0x53534358;

    private SliceDescriptor() {
    }

    /** The descriptor of {@code slice} of a model of shape {@code c}; the slice must fit the model. */
    static byte[] encode(LlamaConfig c, ContextSlice slice) {
        Objects.requireNonNull(slice, "slice");
        slice.validate(c);
        ByteBuffer buf = ByteBuffer.allocate(BYTES).order(ByteOrder.LITTLE_ENDIAN);
        buf.putInt(MAGIC).putInt(VERSION);
        for (int v : shape(c)) {
            buf.putInt(v);
        }
        SliceFormat.writeSlice(buf, slice);
        return buf.array();
    }

    /**
     * The slice a payload describes: a timing descriptor, or the header of a {@link SliceFormat} payload.
     *
     * @throws IllegalArgumentException naming what is wrong: length, magic, version, model shape, kind, fields
     */
    static ContextSlice decode(LlamaConfig c, byte[] bytes) {
        Objects.requireNonNull(bytes, "bytes");
        if (bytes.length < Integer.BYTES) {
            throw new IllegalArgumentException("slice payload is " + bytes.length + " bytes long, expected a "
                    + BYTES + "-byte timing descriptor");
        }
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int magic = buf.getInt();
        if (magic == FLOAT_FORMAT_MAGIC) {
            return SliceFormat.peek(c, bytes);
        }
        if (magic != MAGIC) {
            throw new IllegalArgumentException("slice payload magic is 0x" + Integer.toHexString(magic)
                    + ", expected 0x" + Integer.toHexString(MAGIC) + " (timing descriptor) or 0x"
                    + Integer.toHexString(FLOAT_FORMAT_MAGIC) + " (SliceFormat)");
        }
        if (bytes.length != BYTES) {
            throw new IllegalArgumentException("timing slice descriptor is " + bytes.length + " bytes long, expected "
                    + BYTES);
        }
        int version = buf.getInt();
        if (version != VERSION) {
            throw new IllegalArgumentException("timing slice descriptor version " + version + ", expected " + VERSION);
        }
        int[] got = new int[8];
        for (int i = 0; i < got.length; i++) {
            got[i] = buf.getInt();
        }
        int[] want = shape(c);
        if (!Arrays.equals(got, want)) {
            throw new IllegalArgumentException("timing slice descriptor is for model shape (dim, hidden, layers, heads,"
                    + " kv_heads, vocab, seq_len, shared_classifier) " + Arrays.toString(got) + ", expected "
                    + Arrays.toString(want));
        }
        return SliceFormat.readSlice(buf, c);
    }

    private static int[] shape(LlamaConfig c) {
        return new int[] {c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(), c.vocabSize(), c.seqLen(),
                c.sharedClassifier() ? 1 : 0};
    }
}
