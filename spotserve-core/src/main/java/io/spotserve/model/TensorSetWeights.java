package io.spotserve.model;

import io.spotserve.model.LlamaCheckpoint.Tensor;
import java.nio.file.Path;
import java.util.Map;

/**
 * {@link ModelWeights} over named, memory-mapped tensors (GGUF, safetensors): the tensors of each kind and layer,
 * shape-checked against the config when built. When {@code hfRotary} is set, q and k rows are stored in Hugging
 * Face's rotate-half order (within a head, the first half holds the pairs' first elements) and are read back in the
 * interleaved order the executors use: canonical row {@code h·hs + 2i + j} is stored row {@code h·hs + j·hs/2 + i}.
 */
final class TensorSetWeights implements ModelWeights {
    private final LlamaConfig config;
    private final String description;
    private final MappedTensor[][] tensors; // [Tensor.ordinal()][layer or 0]
    private final boolean hfRotary;

    private TensorSetWeights(LlamaConfig config, String description, MappedTensor[][] tensors, boolean hfRotary) {
        this.config = config;
        this.description = description;
        this.tensors = tensors;
        this.hfRotary = hfRotary;
    }

    /**
     * Looks every tensor up by name and checks its shape.
     *
     * @param names     the stored tensor's name for a kind and layer (layer 0 for global tensors)
     * @param available the stored tensors by name
     * @throws ModelFormatException if a tensor is missing or its shape is not the one the config implies
     */
    static TensorSetWeights of(Path file, LlamaConfig c, Map<String, MappedTensor> available,
                               java.util.function.BiFunction<Tensor, Integer, String> names, boolean hfRotary)
            throws ModelFormatException {
        MappedTensor[][] t = new MappedTensor[Tensor.values().length][];
        for (Tensor kind : Tensor.values()) {
            if (kind == Tensor.FREQ_CIS || (kind == Tensor.CLASSIFIER && c.sharedClassifier())) {
                continue;
            }
            boolean perLayer = isPerLayer(kind);
            int n = perLayer ? c.layers() : 1;
            t[kind.ordinal()] = new MappedTensor[n];
            for (int l = 0; l < n; l++) {
                String name = names.apply(kind, l);
                MappedTensor m = available.get(name);
                if (m == null) {
                    throw new ModelFormatException(file, "tensor " + name, "missing", "a tensor of shape "
                            + shape(c, kind) + " for " + kind + (perLayer ? " of layer " + l : ""));
                }
                long[] want = dims(c, kind);
                if (m.rows != want[0] || m.cols != want[1]) {
                    throw new ModelFormatException(file, "tensor " + name, "of shape [" + m.rows + ", " + m.cols + "]",
                            "shape " + shape(c, kind) + " (rows, cols) for the config's dimensions");
                }
                t[kind.ordinal()][l] = m;
            }
        }
        if (c.sharedClassifier()) {
            t[Tensor.CLASSIFIER.ordinal()] = t[Tensor.TOKEN_EMBEDDING.ordinal()];
        }
        return new TensorSetWeights(c, file.getFileName().toString(), t, hfRotary);
    }

    static boolean isPerLayer(Tensor kind) {
        return switch (kind) {
            case RMS_ATT, WQ, WK, WV, WO, RMS_FFN, W1, W2, W3 -> true;
            default -> false;
        };
    }

    /** (rows, cols) of one layer's tensor of a kind, or of a global tensor (1-D tensors are one row). */
    static long[] dims(LlamaConfig c, Tensor kind) {
        long dim = c.dim();
        return switch (kind) {
            case TOKEN_EMBEDDING, CLASSIFIER -> new long[]{c.vocabSize(), dim};
            case RMS_ATT, RMS_FFN, RMS_FINAL -> new long[]{1, dim};
            case WQ, WO -> new long[]{dim, dim};
            case WK, WV -> new long[]{c.kvDim(), dim};
            case W1, W3 -> new long[]{c.hiddenDim(), dim};
            case W2 -> new long[]{dim, c.hiddenDim()};
            case FREQ_CIS -> throw new IllegalArgumentException("FREQ_CIS is llama2.c-only");
        };
    }

    private static String shape(LlamaConfig c, Tensor kind) {
        long[] d = dims(c, kind);
        return "[" + d[0] + ", " + d[1] + "]";
    }

    /** The stored tensor of a kind and layer (the token embedding for a shared classifier). */
    MappedTensor tensor(Tensor kind, int layer) {
        MappedTensor[] all = tensors[kind.ordinal()];
        if (all == null) {
            throw new IllegalArgumentException(kind + " is not stored in " + description);
        }
        return all[isPerLayer(kind) ? layer : 0];
    }

    @Override
    public LlamaConfig config() {
        return config;
    }

    @Override
    public String description() {
        return description;
    }

    @Override
    public TensorType storedType(Tensor kind, int layer) {
        return tensor(kind, layer).type;
    }

    @Override
    public void read(Tensor kind, int layer, long offset, float[] dst, int dstOff, int len) {
        if (isPerLayer(kind) && (layer < 0 || layer >= config.layers())) {
            throw new IndexOutOfBoundsException("layer " + layer + " outside [0, " + config.layers() + ")");
        }
        MappedTensor m = tensor(kind, layer);
        if (!hfRotary || (kind != Tensor.WQ && kind != Tensor.WK)) {
            m.read(offset, dst, dstOff, len);
            return;
        }
        if (offset < 0 || offset + len > m.elements()) {
            throw new IndexOutOfBoundsException(m.name + ": elements [" + offset + ", " + (offset + len)
                    + ") outside [0, " + m.elements() + ")");
        }
        int hs = config.headSize();
        int cols = m.cols;
        while (len > 0) {
            long row = offset / cols;
            int col = (int) (offset % cols);
            int n = Math.min(len, cols - col);
            m.readRow(hfRow(row, hs), col, dst, dstOff, n);
            offset += n;
            dstOff += n;
            len -= n;
        }
    }

    /** The stored (rotate-half order) row of canonical (interleaved) q/k row {@code row}. */
    static long hfRow(long row, int hs) {
        long head = row / hs;
        int r = (int) (row % hs);
        return head * hs + (r & 1) * (hs / 2) + (r >> 1);
    }

    @Override
    public String toString() {
        return "weights of " + description + " " + config;
    }
}
