package io.spotserve.model;

import io.spotserve.model.LlamaCheckpoint.Tensor;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Optional;
import java.util.Map;

/**
 * A {@code llama}-architecture model in a GGUF file (what llama.cpp and Ollama use), memory-mapped: the config from
 * the {@code llama.*} metadata, the weights (F32, F16, BF16, Q8_0, Q4_0) decoded to floats on read, and the
 * SentencePiece-style tokenizer ({@code tokenizer.ggml.model = "llama"}) stored in the file.
 *
 * <p>GGUF keeps q and k rows in the interleaved rotary order of llama2.c (llama.cpp's converter undoes Hugging
 * Face's permutation), so they are read as stored. Llama-3.1 rope scaling is the {@code rope_freqs.weight} tensor
 * of per-pair frequency divisors.
 */
public final class GgufModel {
    /** The metadata key of the model's Jinja2 chat template. */
    public static final String CHAT_TEMPLATE = "tokenizer.chat_template";

    /** The tensor names llama.cpp uses for each kind of weight ({@code %d}: the layer). */
    static String tensorName(Tensor kind, int layer) {
        return switch (kind) {
            case TOKEN_EMBEDDING -> "token_embd.weight";
            case RMS_ATT -> "blk." + layer + ".attn_norm.weight";
            case WQ -> "blk." + layer + ".attn_q.weight";
            case WK -> "blk." + layer + ".attn_k.weight";
            case WV -> "blk." + layer + ".attn_v.weight";
            case WO -> "blk." + layer + ".attn_output.weight";
            case RMS_FFN -> "blk." + layer + ".ffn_norm.weight";
            case W1 -> "blk." + layer + ".ffn_gate.weight";
            case W2 -> "blk." + layer + ".ffn_down.weight";
            case W3 -> "blk." + layer + ".ffn_up.weight";
            case RMS_FINAL -> "output_norm.weight";
            case CLASSIFIER -> "output.weight";
            case FREQ_CIS -> throw new IllegalArgumentException("GGUF stores no rotary table");
        };
    }

    static final String ROPE_FREQS = "rope_freqs.weight";

    private final GgufFile gguf;
    private final TensorSetWeights weights;
    private final Map<String, MappedTensor> mapped;

    private GgufModel(GgufFile gguf, TensorSetWeights weights, Map<String, MappedTensor> mapped) {
        this.gguf = gguf;
        this.weights = weights;
        this.mapped = mapped;
    }

    /**
     * Opens a GGUF file.
     *
     * @throws ModelFormatException for a wrong magic or version, a truncated header, an architecture other than
     *                              {@code llama}, a tensor type we cannot decode, a tensor outside the file, a
     *                              missing or misshapen tensor, or missing {@code llama.*} keys; the message names
     *                              the file, the field and what was expected
     */
    public static GgufModel load(Path file) throws IOException {
        GgufFile g = GgufFile.read(file);
        String arch = g.string("general.architecture");
        if (!"llama".equals(arch)) {
            throw new ModelFormatException(file, "general.architecture", arch == null ? "missing" : "\"" + arch + "\"",
                    "\"llama\" (the only architecture supported)");
        }
        Map<String, MappedTensor> mapped = new HashMap<>();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            FileReads reads = new FileReads(file); // opened now: the model stays readable if the file goes away
            for (GgufFile.TensorInfo t : g.tensors().values()) {
                TensorType type = TensorType.ofGgml(t.ggmlType());
                if (type == null) {
                    throw new ModelFormatException(file, "tensor " + t.name() + " type",
                            TensorType.ggmlName(t.ggmlType()) + " (id " + t.ggmlType() + ")",
                            "one of F32, F16, BF16, Q8_0, Q4_0 (the types this reader decodes)");
                }
                long cols = t.dims()[0];
                long rows = t.elements() / cols;
                if (cols % type.blockSize != 0 || cols > Integer.MAX_VALUE) {
                    throw new ModelFormatException(file, "tensor " + t.name() + " row length", String.valueOf(cols),
                            "a multiple of " + type + "'s block of " + type.blockSize + " elements");
                }
                long bytes = MappedTensor.bytes(type, rows, (int) cols);
                long start = g.dataStart() + t.offset();
                if (t.offset() < 0 || start + bytes > g.fileSize()) {
                    throw new ModelFormatException(file, "tensor " + t.name() + " data",
                            "at bytes [" + start + ", " + (start + bytes) + ")",
                            "within the file's " + g.fileSize() + " bytes (truncated or corrupt file)");
                }
                mapped.put(t.name(), MappedTensor.map(ch, t.name(), type, rows, (int) cols, start, reads));
            }
        }
        LlamaConfig config = config(g, mapped);
        TensorSetWeights w = TensorSetWeights.of(file, config, mapped, GgufModel::tensorName, false);
        return new GgufModel(g, w, mapped);
    }

    private static LlamaConfig config(GgufFile g, Map<String, MappedTensor> mapped) throws IOException {
        Path file = g.file();
        int dim = g.requiredInt("llama.embedding_length");
        int heads = g.requiredInt("llama.attention.head_count");
        int kvHeads = (int) g.integer("llama.attention.head_count_kv", heads);
        MappedTensor embd = mapped.get(tensorName(Tensor.TOKEN_EMBEDDING, 0));
        if (embd == null) {
            throw new ModelFormatException(file, "tensor token_embd.weight", "missing", "the token embedding");
        }
        int vocab = (int) embd.rows;
        int seqLen = g.requiredInt("llama.context_length");
        boolean shared = !mapped.containsKey(tensorName(Tensor.CLASSIFIER, 0));
        float theta = (float) g.real("llama.rope.freq_base", LlamaConfig.DEFAULT_ROPE_THETA);
        float eps = (float) g.real("llama.attention.layer_norm_rms_epsilon", LlamaConfig.DEFAULT_NORM_EPS);
        int bos = (int) g.integer("tokenizer.ggml.bos_token_id", vocab > 1 ? 1 : -1);
        int eos = (int) g.integer("tokenizer.ggml.eos_token_id", vocab > 2 ? 2 : -1);
        if (heads <= 0 || dim % heads != 0) {
            throw new ModelFormatException(file, "llama.attention.head_count", String.valueOf(heads),
                    "a divisor of llama.embedding_length " + dim);
        }
        long rotDims = g.integer("llama.rope.dimension_count", dim / heads);
        if (rotDims != dim / heads) {
            throw new ModelFormatException(file, "llama.rope.dimension_count", String.valueOf(rotDims),
                    "the head size " + (dim / heads) + " (partial rotary embeddings are not supported)");
        }
        String scaling = g.string("llama.rope.scaling.type");
        if (scaling != null && !scaling.equals("none") && !mapped.containsKey(ROPE_FREQS)) {
            throw new ModelFormatException(file, "llama.rope.scaling.type", "\"" + scaling + "\"",
                    "none, or Llama-3.1 scaling given as the rope_freqs.weight tensor");
        }
        RopeScaling rope = null;
        MappedTensor freqs = mapped.get(ROPE_FREQS);
        if (freqs != null) {
            if (freqs.elements() != dim / heads / 2) {
                throw new ModelFormatException(file, "tensor " + ROPE_FREQS, freqs.elements() + " elements",
                        "head_size / 2 = " + (dim / heads / 2));
            }
            float[] f = new float[dim / heads / 2];
            freqs.read(0, f, 0, f.length);
            List<Float> list = new ArrayList<>();
            for (float x : f) {
                list.add(x);
            }
            rope = new RopeScaling(list);
        }
        try {
            return new LlamaConfig(dim, g.requiredInt("llama.feed_forward_length"), g.requiredInt("llama.block_count"),
                    heads, kvHeads, vocab, seqLen, shared, theta, rope, eps, bos, eos);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, "llama.* metadata", e.getMessage(), "a consistent llama config");
        }
    }

    /** The parsed file header (metadata and tensor infos). */
    public GgufFile file() {
        return gguf;
    }

    /** The model's config. */
    public LlamaConfig config() {
        return weights.config();
    }

    /** The weights, decoded to floats on read. */
    public ModelWeights weights() {
        return weights;
    }

    /** The stored type of the weight of a kind and layer. */
    public TensorType tensorType(Tensor kind, int layer) {
        return weights.tensor(kind, layer).type;
    }

    /**
     * The tokenizer stored in the file.
     *
     * @throws ModelFormatException if the file holds no tokenizer, or one of a model other than {@code llama}
     *                              (SentencePiece-style), or its arrays disagree with the vocabulary size
     */
    public Tokenizer tokenizer() throws ModelFormatException {
        Path file = gguf.file();
        String model = gguf.string("tokenizer.ggml.model");
        if (model == null) {
            throw new ModelFormatException(file, "tokenizer.ggml.model", "missing",
                    "a tokenizer in the file (tokenizer.ggml.model, .tokens, .scores)");
        }
        List<?> tokens = gguf.list("tokenizer.ggml.tokens");
        int vocab = config().vocabSize();
        if (tokens == null || tokens.size() != vocab) {
            throw new ModelFormatException(file, "tokenizer.ggml.tokens",
                    tokens == null ? "missing" : tokens.size() + " tokens", vocab + " tokens (the embedding's rows)");
        }
        if (model.equals("gpt2")) {
            return byteLevel(file, tokens);
        }
        if (!model.equals("llama")) {
            throw new ModelFormatException(file, "tokenizer.ggml.model", "\"" + model + "\"",
                    "\"llama\" (SentencePiece-style) or \"gpt2\" (byte-level BPE with the llama-bpe pre-tokenizer)");
        }
        List<?> scores = gguf.list("tokenizer.ggml.scores");
        if (scores == null || scores.size() != vocab) {
            throw new ModelFormatException(file, "tokenizer.ggml.scores",
                    scores == null ? "missing" : scores.size() + " scores", vocab + " scores");
        }
        byte[][] pieces = new byte[vocab][];
        float[] sc = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            pieces[i] = String.valueOf(tokens.get(i)).replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
            sc[i] = ((Number) scores.get(i)).floatValue();
        }
        return Tokenizer.of(file, pieces, sc);
    }

    private Tokenizer byteLevel(Path file, List<?> tokens) throws ModelFormatException {
        String pre = gguf.string("tokenizer.ggml.pre");
        if (!"llama-bpe".equals(pre) && !"llama3".equals(pre)) {
            throw new ModelFormatException(file, "tokenizer.ggml.pre", pre == null ? "missing" : "\"" + pre + "\"",
                    "\"llama-bpe\" (Llama 3's pre-tokenizer, the only one supported)");
        }
        List<?> merges = gguf.list("tokenizer.ggml.merges");
        if (merges == null) {
            throw new ModelFormatException(file, "tokenizer.ggml.merges", "missing", "the BPE merges of a gpt2 tokenizer");
        }
        List<?> types = gguf.list("tokenizer.ggml.token_type");
        String[] t = new String[tokens.size()];
        java.util.Map<String, Integer> specials = new HashMap<>();
        for (int i = 0; i < t.length; i++) {
            t[i] = String.valueOf(tokens.get(i));
            if (types != null && i < types.size() && ((Number) types.get(i)).intValue() == 3) {
                specials.put(t[i], i);
            }
        }
        List<String> m = new ArrayList<>(merges.size());
        for (Object o : merges) {
            m.add(String.valueOf(o));
        }
        try {
            return Tokenizer.byteLevel(file, new ByteLevelBpe(t, m, specials, true), config().bosId(), config().eosId());
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, "tokenizer.ggml.tokens/merges", e.getMessage(),
                    "a byte-level BPE vocabulary");
        }
    }

    /**
     * The chat template stored in the file ({@code tokenizer.chat_template}) with the text of its BOS and EOS tokens
     * ({@code tokenizer.ggml.tokens} at {@code bos_token_id}/{@code eos_token_id}; empty when absent).
     *
     * @return empty when the file has no chat template
     * @throws ModelFormatException if {@code tokenizer.chat_template} is not a string
     */
    public Optional<ModelChatTemplate> chatTemplate() throws ModelFormatException {
        Object t = gguf.metadata().get(CHAT_TEMPLATE);
        if (t == null) {
            return Optional.empty();
        }
        if (!(t instanceof String source)) {
            throw new ModelFormatException(gguf.file(), CHAT_TEMPLATE, "a " + t.getClass().getSimpleName(),
                    "a string (a Jinja2 template)");
        }
        List<?> tokens = gguf.list("tokenizer.ggml.tokens");
        return Optional.of(new ModelChatTemplate(source, tokenText(tokens, config().bosId()),
                tokenText(tokens, config().eosId())));
    }

    private static String tokenText(List<?> tokens, int id) {
        return tokens != null && id >= 0 && id < tokens.size() ? String.valueOf(tokens.get(id)) : "";
    }

    @Override
    public String toString() {
        return "GgufModel[" + gguf.file() + " " + config() + "]";
    }
}
