package io.spotserve.bench.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
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
    /** magic, version, 8 shape ints, kind, layer, 4 range bounds, length (ints) + sequence (long). */
    static final int BYTES = 17 * Integer.BYTES + Long.BYTES;
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
        } else if (slice instanceof ContextSlice.Classifier k) {
            kind = 2;
            a0 = k.vocab().from();
            a1 = k.vocab().to();
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
            default -> throw new IllegalArgumentException("timing slice descriptor kind " + kind
                    + " unknown, expected 1..5");
        };
        slice.validate(c);
        return slice;
    }

    private static int[] shape(LlamaConfig c) {
        return new int[] {c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(), c.vocabSize(), c.seqLen(),
                c.sharedClassifier() ? 1 : 0};
    }
}
