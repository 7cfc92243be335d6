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
 * @param ropeTheta        base of the rotary frequencies ({@code rope_theta}; llama2.c 10000, Llama 3 500000)
 * @param ropeScaling      per-pair frequency divisors (Llama-3.1 {@code rope_type: llama3}), or null for none
 * @param normEps          RMSNorm epsilon ({@code rms_norm_eps}; llama2.c 1e-5)
 * @param bosId            begin-of-sequence token id, -1 if none
 * @param eosId            end-of-sequence token id (generation may stop on it), -1 if none
 */
public record LlamaConfig(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocabSize,
                          int seqLen, boolean sharedClassifier, float ropeTheta, RopeScaling ropeScaling,
                          float normEps, int bosId, int eosId) {
    /** llama2.c's rotary base. */
    public static final float DEFAULT_ROPE_THETA = 10000.0f;
    /** llama2.c's RMSNorm epsilon. */
    public static final float DEFAULT_NORM_EPS = 1e-5f;

    /** A llama2.c-style config: theta 10000, no rope scaling, epsilon 1e-5, BOS 1, EOS 2. */
    public LlamaConfig(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocabSize, int seqLen,
                       boolean sharedClassifier) {
        this(dim, hiddenDim, layers, heads, kvHeads, vocabSize, seqLen, sharedClassifier, DEFAULT_ROPE_THETA, null,
                DEFAULT_NORM_EPS, vocabSize > 1 ? 1 : -1, vocabSize > 2 ? 2 : -1);
    }

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
        if (!(ropeTheta > 1) || Float.isInfinite(ropeTheta)) {
            throw new IllegalArgumentException("rope_theta must be a finite value above 1, was " + ropeTheta);
        }
        if (ropeScaling != null && ropeScaling.factors().size() != dim / heads / 2) {
            throw new IllegalArgumentException("rope scaling has " + ropeScaling.factors().size()
                    + " factors, expected head_size / 2 = " + (dim / heads / 2));
        }
        if (!(normEps > 0) || normEps >= 1) {
            throw new IllegalArgumentException("rms_norm_eps must be in (0, 1), was " + normEps);
        }
        if (bosId < -1 || bosId >= vocabSize || eosId < -1 || eosId >= vocabSize) {
            throw new IllegalArgumentException("bos/eos ids " + bosId + "/" + eosId + " outside the vocabulary [0, "
                    + vocabSize + ") (-1: none)");
        }
    }

    /** Same shape with other rotary settings. */
    public LlamaConfig withRope(float theta, RopeScaling scaling) {
        return new LlamaConfig(dim, hiddenDim, layers, heads, kvHeads, vocabSize, seqLen, sharedClassifier, theta,
                scaling, normEps, bosId, eosId);
    }

    /** Same shape with another RMSNorm epsilon and special token ids. */
    public LlamaConfig withNormAndSpecials(float eps, int bos, int eos) {
        return new LlamaConfig(dim, hiddenDim, layers, heads, kvHeads, vocabSize, seqLen, sharedClassifier, ropeTheta,
                ropeScaling, eps, bos, eos);
    }

    /** Same model with another maximum sequence length. */
    public LlamaConfig withSeqLen(int positions) {
        return new LlamaConfig(dim, hiddenDim, layers, heads, kvHeads, vocabSize, positions, sharedClassifier,
                ropeTheta, ropeScaling, normEps, bosId, eosId);
    }

    /**
     * The sampled token that ends a generation: llama2.c-style vocabularies (BOS id 1) end on BOS, as run.c does;
     * other models (Llama 3) end on their EOS id.
     */
    public int stopToken() {
        return bosId == 1 ? bosId : eosId;
    }

    /** Whether rope, epsilon and special ids are llama2.c's (the settings every kernel supported before). */
    public boolean llama2cDefaults() {
        return ropeTheta == DEFAULT_ROPE_THETA && ropeScaling == null && normEps == DEFAULT_NORM_EPS;
    }

    /**
     * Rotary angle per position of each pair {@code i < head_size / 2}: run.c's
     * {@code 1 / theta^(2i / head_size)} in float, divided by the scaling factor when there is one.
     */
    public float[] ropeFrequencies() {
        int hs = headSize();
        float[] f = new float[hs / 2];
        for (int i = 0; i < f.length; i++) {
            f[i] = 1.0f / (float) Math.pow(ropeTheta, (2 * i) / (float) hs);
            if (ropeScaling != null) {
                f[i] = f[i] / ropeScaling.factors().get(i);
            }
        }
        return f;
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
