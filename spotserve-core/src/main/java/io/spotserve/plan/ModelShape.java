package io.spotserve.plan;

import io.spotserve.model.LlamaConfig;
import java.util.Objects;

/**
 * Architecture sizes of a GPT-style decoder that the cost model needs for memory (weights + KV cache per
 * device) and migration volumes — the latency profiles of SpotServe §5 do not carry them. The paper's three
 * models are {@link PaperModel} constants (Table 1; sizes derived here from the [A] proxy architectures).
 *
 * <p>{@link Family#GPT} (the paper's models) per layer: Q/K/V/O projections {@code h·(h + 2·kvDim) + h·h}
 * with biases, an FFN {@code 2·h·ffn} with biases, two LayerNorms; plus one token embedding {@code vocab·h}
 * (tied with the classifier) and {@code maxPositions·h} learned position embeddings (0 for rotary models).
 * {@link Family#LLAMA} (the llama2.c models our executors serve, {@link #of(String, LlamaConfig)}) per layer:
 * Q/K/V/O without biases, a SwiGLU FFN {@code 3·h·ffn}, two RMSNorm vectors; plus the token embedding, the
 * final RMSNorm and, when not tied, a separate classifier — exactly the floats of the checkpoint.
 *
 * @param name              display name
 * @param layers            transformer layers
 * @param hidden            model width h
 * @param ffnHidden         FFN inner width
 * @param vocab             vocabulary size
 * @param heads             attention (query) heads
 * @param kvHeads           key/value heads (== heads without grouped-query attention)
 * @param maxPositions      learned position-embedding rows (0 if none)
 * @param bytesPerParameter bytes per weight and per KV-cache element (4 for FP32 as in the paper's T4 runs)
 * @param family            which layer formula applies
 * @param separateClassifier whether the classifier is a matrix of its own (not tied with the token embedding)
 */
public record ModelShape(String name, int layers, int hidden, int ffnHidden, int vocab, int heads, int kvHeads,
                         int maxPositions, int bytesPerParameter, Family family, boolean separateClassifier) {

    /** Which decoder architecture the parameter counts follow. */
    public enum Family {
        /** GPT/OPT style: biases, LayerNorm, two-matrix FFN, tied classifier, learned positions. */
        GPT,
        /** LLaMA style (llama2.c): no biases, RMSNorm, three-matrix SwiGLU FFN, rotary positions. */
        LLAMA
    }

    public ModelShape {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(family, "family");
        positive("layers", layers);
        positive("hidden", hidden);
        positive("ffnHidden", ffnHidden);
        positive("vocab", vocab);
        positive("heads", heads);
        positive("kvHeads", kvHeads);
        positive("bytesPerParameter", bytesPerParameter);
        if (maxPositions < 0) {
            throw new IllegalArgumentException("maxPositions must be >= 0, was " + maxPositions);
        }
        if (hidden % heads != 0) {
            throw new IllegalArgumentException("hidden " + hidden + " is not divisible by heads " + heads);
        }
        if (kvHeads > heads || heads % kvHeads != 0) {
            throw new IllegalArgumentException("kvHeads " + kvHeads + " must divide heads " + heads);
        }
    }

    /** A {@link Family#GPT} shape with a tied classifier (the paper's models). */
    public ModelShape(String name, int layers, int hidden, int ffnHidden, int vocab, int heads, int kvHeads,
                      int maxPositions, int bytesPerParameter) {
        this(name, layers, hidden, ffnHidden, vocab, heads, kvHeads, maxPositions, bytesPerParameter, Family.GPT,
                false);
    }

    /**
     * The exact shape of a llama2.c model (FP32, rotary, tied or separate classifier), so that a
     * {@link CostModel} over a profile of our own executor counts the bytes the executor really stores.
     */
    public static ModelShape of(String name, LlamaConfig config) {
        Objects.requireNonNull(config, "config");
        return new ModelShape(name, config.layers(), config.dim(), config.hiddenDim(), config.vocabSize(),
                config.heads(), config.kvHeads(), 0, Float.BYTES, Family.LLAMA, !config.sharedClassifier());
    }

    private static void positive(String field, int v) {
        if (v < 1) {
            throw new IllegalArgumentException(field + " must be >= 1, was " + v);
        }
    }

    /**
     * A GPT-style shape (FFN = 4h, head size 128, no grouped-query attention, 2048 learned positions, FP32)
     * for profiles that carry only layers and width, e.g. the artifact's {@code megatron_h2048}.
     */
    public static ModelShape gptStyle(String name, int layers, int hidden, int vocab) {
        return new ModelShape(name, layers, hidden, 4 * hidden, vocab, Math.max(1, hidden / 128),
                Math.max(1, hidden / 128), 2048, 4);
    }

    /** Width of the key (and value) projections. */
    public long kvDim() {
        return (long) hidden / heads * kvHeads;
    }

    /** Parameters of one transformer layer (weights and biases). */
    public long layerParameters() {
        long h = hidden;
        if (family == Family.LLAMA) {
            return 2 * h + 2 * h * h + 2 * h * kvDim() + 3 * h * ffnHidden;
        }
        long attention = h * (h + 2 * kvDim()) + (h + 2 * kvDim()) + h * h + h;
        long ffn = 2 * h * ffnHidden + ffnHidden + h;
        long norms = 4 * h;
        return attention + ffn + norms;
    }

    /** Parameters outside the layers: token embedding/classifier, position embeddings, final norm. */
    public long embeddingParameters() {
        long tables = (long) vocab * hidden * (separateClassifier ? 2 : 1) + (long) maxPositions * hidden;
        return tables + finalNormParameters();
    }

    /** Parameters of the final norm: LayerNorm weight and bias (GPT) or an RMSNorm weight (LLaMA). */
    public long finalNormParameters() {
        return family == Family.LLAMA ? hidden : 2L * hidden;
    }

    /** All parameters. */
    public long parameters() {
        return layers * layerParameters() + embeddingParameters();
    }

    /** Bytes of all weights. */
    public long weightBytes() {
        return parameters() * bytesPerParameter;
    }

    /** Bytes of one layer's weights. */
    public long layerWeightBytes() {
        return layerParameters() * bytesPerParameter;
    }

    /** KV-cache bytes of one token in one layer (keys and values). */
    public long kvBytesPerTokenPerLayer() {
        return 2 * kvDim() * bytesPerParameter;
    }
}
