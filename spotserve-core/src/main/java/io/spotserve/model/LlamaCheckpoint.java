package io.spotserve.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Objects;

/**
 * The weights of a llama2.c ("version 0", legacy layout) checkpoint, memory-mapped and read-only.
 *
 * <p>This is the model <em>source</em>: executors copy the slices they own (a layer range, a head range)
 * out of it into their own device arenas, and the engine goes back to it when every replica of a slice was
 * lost to preemption. Tensors are handed out as read-only {@link FloatBuffer} views so nothing can change
 * the checkpoint behind another executor's back.
 *
 * <p>{@link #read} (how executors load) uses positional reads of the file through a small per-thread buffer, not
 * the mapping: the bytes pass through the page cache only, so a process that copies the weights into its own
 * layout does not also keep the file's pages resident (mapped pages that were read count in its RSS until the
 * mapping is collected; on the 25M model that was 94 MB beside the copy). The mapped views of {@link #tensor} and
 * {@link #layer} are for callers that want them.
 *
 * <p>Layout after the 28-byte header (all float32 little-endian, row-major, shape [rows][cols]):
 * token embedding [vocab][dim]; rms_att [L][dim]; wq [L][dim][dim]; wk [L][kvDim][dim];
 * wv [L][kvDim][dim]; wo [L][dim][dim]; rms_ffn [L][dim]; w1 [L][hidden][dim]; w2 [L][dim][hidden];
 * w3 [L][hidden][dim]; rms_final [dim]; two legacy RoPE tables [seqLen][headSize/2] (skipped); and, only
 * when the header's vocab_size is negative, a separate classifier [vocab][dim].
 */
public final class LlamaCheckpoint implements ModelWeights {
    /** Bytes of the llama2.c header: seven little-endian int32 values. */
    public static final int HEADER_BYTES = 7 * Integer.BYTES;
    /** Upper bound we accept for any single header dimension; larger values mean a corrupt file. */
    static final int MAX_DIMENSION = 1 << 20;

    /** The tensors of one checkpoint, in file order. */
    public enum Tensor {
        TOKEN_EMBEDDING, RMS_ATT, WQ, WK, WV, WO, RMS_FFN, W1, W2, W3, RMS_FINAL, FREQ_CIS, CLASSIFIER
    }

    private final Path file;
    private final LlamaConfig config;
    private final FloatBuffer[] tensors; // indexed by Tensor.ordinal(); CLASSIFIER aliases TOKEN_EMBEDDING when shared
    private final long[] offsets;        // byte offset of each tensor in the file, same indexing
    /** How {@link #read} reads the file (positional reads, not the mapping). */
    private final FileReads reads;

    private LlamaCheckpoint(Path file, LlamaConfig config, FloatBuffer[] tensors, long[] offsets, FileReads reads) {
        this.file = file;
        this.config = config;
        this.tensors = tensors;
        this.offsets = offsets;
        this.reads = reads;
    }

    /**
     * Loads (memory-maps) a llama2.c checkpoint after checking its header and its size.
     *
     * @throws ModelFormatException if the file is shorter than the header; a header field is zero, negative
     *                              or above {@value #MAX_DIMENSION} ({@code vocab_size} may be negative: separate
     *                              classifier); the head counts do not divide; the implied size overflows; or
     *                              the file is shorter (truncated) or longer (trailing bytes) than the header
     *                              implies. The message names the field, the value found and the one expected.
     * @throws IOException          if the file cannot be read
     */
    public static LlamaCheckpoint load(Path file) throws IOException {
        Objects.requireNonNull(file, "file");
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size < HEADER_BYTES) {
                throw new ModelFormatException(file, "header", size + " bytes long",
                        "at least " + HEADER_BYTES + " bytes (7 int32 header fields)");
            }
            ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            while (header.hasRemaining()) {
                if (channel.read(header, header.position()) < 0) {
                    throw new ModelFormatException(file, "header", "truncated", HEADER_BYTES + " bytes");
                }
            }
            header.flip();
            int dim = header.getInt();
            int hidden = header.getInt();
            int layers = header.getInt();
            int heads = header.getInt();
            int kvHeads = header.getInt();
            int vocab = header.getInt();
            int seqLen = header.getInt();
            LlamaConfig config = parseHeader(file, dim, hidden, layers, heads, kvHeads, vocab, seqLen);

            long[] lengths = tensorLengths(config);
            long expectedBytes = expectedFileBytes(file, config, lengths);
            if (size != expectedBytes) {
                String found = size < expectedBytes
                        ? size + " bytes (truncated: " + (expectedBytes - size) + " bytes missing)"
                        : size + " bytes (" + (size - expectedBytes) + " unexpected trailing bytes)";
                throw new ModelFormatException(file, "file size", found,
                        expectedBytes + " bytes for header " + describe(config));
            }

            FloatBuffer[] tensors = new FloatBuffer[Tensor.values().length];
            long[] offsets = new long[Tensor.values().length];
            long offset = HEADER_BYTES;
            for (Tensor t : Tensor.values()) {
                long len = lengths[t.ordinal()];
                if (len == 0) {
                    continue;
                }
                tensors[t.ordinal()] = map(channel, offset, len);
                offsets[t.ordinal()] = offset;
                offset += len * Float.BYTES;
            }
            if (config.sharedClassifier()) {
                tensors[Tensor.CLASSIFIER.ordinal()] = tensors[Tensor.TOKEN_EMBEDDING.ordinal()];
                offsets[Tensor.CLASSIFIER.ordinal()] = offsets[Tensor.TOKEN_EMBEDDING.ordinal()];
            }
            return new LlamaCheckpoint(file, config, tensors, offsets, new FileReads(file));
        }
    }

    private static LlamaConfig parseHeader(Path file, int dim, int hidden, int layers, int heads, int kvHeads,
                                           int vocab, int seqLen) throws ModelFormatException {
        requireRange(file, "dim", dim);
        requireRange(file, "hidden_dim", hidden);
        requireRange(file, "n_layers", layers);
        requireRange(file, "n_heads", heads);
        requireRange(file, "n_kv_heads", kvHeads);
        if (vocab == 0 || vocab == Integer.MIN_VALUE || Math.abs(vocab) > MAX_DIMENSION) {
            throw new ModelFormatException(file, "vocab_size", String.valueOf(vocab),
                    "a non-zero value with |vocab_size| <= " + MAX_DIMENSION + " (negative = separate classifier)");
        }
        requireRange(file, "seq_len", seqLen);
        if (dim % heads != 0) {
            throw new ModelFormatException(file, "n_heads", String.valueOf(heads), "a divisor of dim " + dim);
        }
        if (kvHeads > heads || heads % kvHeads != 0) {
            throw new ModelFormatException(file, "n_kv_heads", String.valueOf(kvHeads),
                    "a divisor of n_heads " + heads);
        }
        if ((dim / heads) % 2 != 0) {
            throw new ModelFormatException(file, "n_heads", String.valueOf(heads),
                    "a value giving an even head_size (dim " + dim + " / n_heads is " + (dim / heads) + ")");
        }
        return new LlamaConfig(dim, hidden, layers, heads, kvHeads, Math.abs(vocab), seqLen, vocab > 0);
    }

    private static void requireRange(Path file, String field, int value) throws ModelFormatException {
        if (value <= 0 || value > MAX_DIMENSION) {
            throw new ModelFormatException(file, field, String.valueOf(value), "a value in [1, " + MAX_DIMENSION + "]");
        }
    }

    /** Header plus all tensors, in bytes; a header whose size overflows a long is rejected as corrupt. */
    private static long expectedFileBytes(Path file, LlamaConfig config, long[] lengths) throws ModelFormatException {
        try {
            long floats = 0;
            for (long len : lengths) {
                floats = Math.addExact(floats, len);
            }
            return Math.addExact(HEADER_BYTES, Math.multiplyExact(floats, (long) Float.BYTES));
        } catch (ArithmeticException e) {
            throw new ModelFormatException(file, "header", describe(config),
                    "dimensions whose weights fit in " + Long.MAX_VALUE + " bytes");
        }
    }

    static long[] tensorLengths(LlamaConfig c) {
        long dim = c.dim();
        long layers = c.layers();
        long kvDim = c.kvDim();
        long hidden = c.hiddenDim();
        long[] len = new long[Tensor.values().length];
        len[Tensor.TOKEN_EMBEDDING.ordinal()] = c.vocabSize() * dim;
        len[Tensor.RMS_ATT.ordinal()] = layers * dim;
        len[Tensor.WQ.ordinal()] = layers * dim * dim;
        len[Tensor.WK.ordinal()] = layers * kvDim * dim;
        len[Tensor.WV.ordinal()] = layers * kvDim * dim;
        len[Tensor.WO.ordinal()] = layers * dim * dim;
        len[Tensor.RMS_FFN.ordinal()] = layers * dim;
        len[Tensor.W1.ordinal()] = layers * hidden * dim;
        len[Tensor.W2.ordinal()] = layers * dim * hidden;
        len[Tensor.W3.ordinal()] = layers * hidden * dim;
        len[Tensor.RMS_FINAL.ordinal()] = dim;
        len[Tensor.FREQ_CIS.ordinal()] = (long) c.seqLen() * c.headSize(); // cos + sin, headSize/2 each
        len[Tensor.CLASSIFIER.ordinal()] = c.sharedClassifier() ? 0 : c.vocabSize() * dim;
        return len;
    }

    private static FloatBuffer map(FileChannel channel, long offset, long floats) throws IOException {
        long bytes = floats * Float.BYTES;
        if (bytes > Integer.MAX_VALUE) {
            // A single tensor above 2 GiB: read it per layer instead (callers slice per layer anyway).
            throw new IOException("tensor of " + bytes + " bytes exceeds the 2 GiB mapping limit");
        }
        return channel.map(FileChannel.MapMode.READ_ONLY, offset, bytes)
                .order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().asReadOnlyBuffer();
    }

    private static String describe(LlamaConfig c) {
        return "(dim " + c.dim() + ", hidden_dim " + c.hiddenDim() + ", n_layers " + c.layers() + ", n_heads "
                + c.heads() + ", n_kv_heads " + c.kvHeads() + ", vocab_size " + (c.sharedClassifier() ? "" : "-")
                + c.vocabSize() + ", seq_len " + c.seqLen() + ")";
    }

    /** The file this checkpoint was mapped from. */
    public Path file() {
        return file;
    }

    /** The model shape from the header. */
    public LlamaConfig config() {
        return config;
    }

    /**
     * A read-only view of a whole tensor (all layers for per-layer tensors), positioned at 0.
     * {@link Tensor#CLASSIFIER} returns the token embedding when the classifier is shared.
     */
    public FloatBuffer tensor(Tensor tensor) {
        return tensors[tensor.ordinal()].duplicate();
    }

    /**
     * A read-only view of one layer's slice of a per-layer tensor (RMS_ATT, WQ, WK, WV, WO, RMS_FFN, W1, W2,
     * W3), positioned at 0, with capacity equal to that layer's element count.
     */
    public FloatBuffer layer(Tensor tensor, int layer) {
        if (layer < 0 || layer >= config.layers()) {
            throw new IndexOutOfBoundsException("layer " + layer + " outside [0, " + config.layers() + ")");
        }
        long perLayer = tensorLengths(config)[tensor.ordinal()] / config.layers();
        switch (tensor) {
            case RMS_ATT, WQ, WK, WV, WO, RMS_FFN, W1, W2, W3 -> { }
            default -> throw new IllegalArgumentException(tensor + " is not a per-layer tensor");
        }
        FloatBuffer all = tensor(tensor);
        int start = Math.toIntExact(perLayer * layer);
        return all.position(start).limit(Math.toIntExact(start + perLayer)).slice();
    }

    @Override
    public String description() {
        return file.getFileName().toString();
    }

    @Override
    public void read(Tensor tensor, int layer, long offset, float[] dst, int dstOff, int len) {
        long[] lengths = tensorLengths(config);
        long start;
        long limit;
        switch (tensor) {
            case RMS_ATT, WQ, WK, WV, WO, RMS_FFN, W1, W2, W3 -> {
                if (layer < 0 || layer >= config.layers()) {
                    throw new IndexOutOfBoundsException("layer " + layer + " outside [0, " + config.layers() + ")");
                }
                limit = lengths[tensor.ordinal()] / config.layers();
                start = layer * limit;
            }
            case CLASSIFIER -> {
                start = 0;
                limit = lengths[(config.sharedClassifier() ? Tensor.TOKEN_EMBEDDING : tensor).ordinal()];
            }
            default -> {
                start = 0;
                limit = lengths[tensor.ordinal()];
            }
        }
        if (offset < 0 || len < 0 || offset + len > limit) {
            throw new IndexOutOfBoundsException(tensor + " elements [" + offset + ", " + (offset + len) + ") outside [0, "
                    + limit + ")");
        }
        Objects.checkFromIndexSize(dstOff, len, dst.length);
        long pos = offsets[tensor.ordinal()] + (start + offset) * Float.BYTES;
        while (len > 0) {
            int n = Math.min(len, FileReads.CHUNK_BYTES / Float.BYTES);
            reads.read(pos, n * Float.BYTES).asFloatBuffer().get(dst, dstOff, n);
            pos += (long) n * Float.BYTES;
            dstOff += n;
            len -= n;
        }
    }

    @Override
    public String toString() {
        return "LlamaCheckpoint[" + file + " " + describe(config) + "]";
    }
}
