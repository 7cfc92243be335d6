package io.spotserve.model;

/**
 * Shape of a LLaMA-architecture transformer, as stored in the 7-int header of a llama2.c checkpoint.
 *
 * <p>Everything that slices a model (sharding, KV-cache sizing, migration byte counts) derives its
 * numbers from this record, so it validates itself: a config that exists is internally consistent.
 *
 * @param dim              model (residual stream) width
 * @param hiddenDim        FFN hidden width (w1/w3 rows, w2 columns)
 * @param layers           number of transformer blocks
 * @param heads            query heads
 * @param kvHeads          key/value heads (grouped-query attention when {@code kvHeads < heads})
 * @param vocabSize        number of tokens
 * @param seqLen           maximum sequence length (positions of the KV cache)
 * @param sharedClassifier whether the output classifier re-uses the token embedding (llama2.c: header
 *                         vocab_size &gt; 0) or is stored separately (header vocab_size &lt; 0)
 */
public record LlamaConfig(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocabSize,
                          int seqLen, boolean sharedClassifier) {

    public LlamaConfig {
        requirePositive("dim", dim);
        requirePositive("hidden_dim", hiddenDim);
        requirePositive("n_layers", layers);
        requirePositive("n_heads", heads);
        requirePositive("n_kv_heads", kvHeads);
        requirePositive("vocab_size", vocabSize);
        requirePositive("seq_len", seqLen);
        if (dim % heads != 0) {
            throw new IllegalArgumentException(
                    "dim " + dim + " is not divisible by n_heads " + heads + "; expected dim = n_heads * head_size");
        }
        if (kvHeads > heads || heads % kvHeads != 0) {
            throw new IllegalArgumentException("n_kv_heads " + kvHeads + " must divide n_heads " + heads);
        }
        if ((dim / heads) % 2 != 0) {
            throw new IllegalArgumentException(
                    "head_size " + (dim / heads) + " must be even for rotary embeddings (dim " + dim + ", n_heads " + heads + ")");
        }
    }

    private static void requirePositive(String field, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(field + " must be positive, was " + value);
        }
    }

    /** Width of one attention head. */
    public int headSize() {
        return dim / heads;
    }

    /** Width of the key (and value) projection: {@code kvHeads * headSize}. */
    public int kvDim() {
        return kvHeads * headSize();
    }

    /** Query heads that share one key/value head. */
    public int kvGroupSize() {
        return heads / kvHeads;
    }

    /** Number of float parameters in one transformer block. */
    public long floatsPerLayer() {
        long d = dim;
        return 2 * d                       // attention and FFN RMSNorm weights
                + d * d * 2                // wq, wo
                + (long) kvDim() * d * 2   // wk, wv
                + (long) hiddenDim * d * 3;// w1, w2, w3
    }

    /** Number of float parameters in the whole model, classifier included once. */
    public long parameterCount() {
        long embedding = (long) vocabSize * dim;
        return embedding + layers * floatsPerLayer() + dim + (sharedClassifier ? 0 : embedding);
    }

    /** Bytes of KV cache one sequence position occupies across all layers (fp32 keys and values). */
    public long kvBytesPerPosition() {
        return 2L * layers * kvDim() * Float.BYTES;
    }
}
