package io.spotserve.plan;

import io.spotserve.model.LlamaConfig;
import java.io.Serializable;
import java.util.Objects;

/**
 * The byte model of a model's context, all the device mapper and migration planner need to know about a
 * model (SpotServe §3.3–§3.4): weight bytes of one transformer block unsharded (M = 1), bytes of the token
 * embedding (owned by stage 0) and of the final norm + classifier (owned by the last stage), and KV-cache
 * bytes of one token in one block, unsharded.
 *
 * <p>Sharding rule (DESIGN §3): stage p of P owns blocks {@code [floor(p·L/P), floor((p+1)·L/P))} — equal
 * ranges when P divides L, otherwise balanced (never a dropped block); tensor shard m of M owns the
 * fraction {@code [m/M, (m+1)/M)} of every block's weights and KV cache (norm vectors are counted as
 * sharded too: they are a negligible 2·dim floats). Embedding and classifier are replicated on every shard
 * of their stage, as in the authors' artifact — or, with {@code shardedVocab}, split by vocabulary rows like
 * the other weights, as our executors store them.
 *
 * @param name                    label for messages
 * @param layers                  transformer blocks L
 * @param layerWeightBytes        bytes of one block's weights at M = 1
 * @param embeddingBytes          bytes of the token (and position) embedding
 * @param classifierBytes         bytes of the final norm and classifier
 * @param kvBytesPerTokenPerLayer bytes of keys + values of one token in one block at M = 1
 * @param shardedVocab            whether tensor shard m of M holds only rows [m/M, (m+1)/M) of the embedding and
 *                                classifier (false: every shard holds them whole)
 */
public record ModelContext(String name, int layers, long layerWeightBytes, long embeddingBytes,
                           long classifierBytes, long kvBytesPerTokenPerLayer, boolean shardedVocab)
        implements Serializable {

    /** A byte model with embedding and classifier replicated on every shard (the artifact's layout). */
    public ModelContext(String name, int layers, long layerWeightBytes, long embeddingBytes, long classifierBytes,
                        long kvBytesPerTokenPerLayer) {
        this(name, layers, layerWeightBytes, embeddingBytes, classifierBytes, kvBytesPerTokenPerLayer, false);
    }

    public ModelContext {
        Objects.requireNonNull(name, "name");
        if (layers < 1) {
            throw new IllegalArgumentException("layers must be >= 1, was " + layers);
        }
        if (layerWeightBytes < 1 || embeddingBytes < 0 || classifierBytes < 0 || kvBytesPerTokenPerLayer < 0) {
            throw new IllegalArgumentException("byte sizes of " + name + " must be non-negative (layer weights > 0), were layer="
                    + layerWeightBytes + ", embedding=" + embeddingBytes + ", classifier=" + classifierBytes
                    + ", kv/token/layer=" + kvBytesPerTokenPerLayer);
        }
    }

    /**
     * The byte model of a real llama2.c model (fp32) as our executors store it: embedding and classifier rows split
     * over the tensor shards of their stage.
     */
    public static ModelContext of(String name, LlamaConfig c) {
        return of(name, c, Float.BYTES);
    }

    /**
     * {@link #of(String, LlamaConfig)} for an executor that stores each weight in {@code bytesPerWeight} bytes
     * (4 for fp32, 2 for halves, 1.0625 for Q8_0 blocks: {@code Executor.storedBytesPerWeightExact()}); the KV caches
     * stay fp32. Every weight is counted at that size, the norm vectors included (they are a few thousandths of a
     * layer).
     */
    public static ModelContext of(String name, LlamaConfig c, double bytesPerWeight) {
        if (!(bytesPerWeight > 0) || Double.isInfinite(bytesPerWeight)) {
            throw new IllegalArgumentException("bytes per weight must be positive, was " + bytesPerWeight);
        }
        long embedding = Math.round((double) c.vocabSize() * c.dim() * bytesPerWeight);
        // the last stage needs the classifier matrix even when it is shared with the embedding in the file
        long classifier = embedding + Math.round(c.dim() * bytesPerWeight);
        return new ModelContext(name, c.layers(), Math.round(c.floatsPerLayer() * bytesPerWeight), embedding,
                classifier, 2L * c.kvDim() * Float.BYTES, true);
    }

    /**
     * The byte model of an architecture description (the paper's GPT-style models, or any {@link ModelShape}):
     * the token + position embedding on stage 0, the tied classifier + final norm on the last stage; LLaMA-family
     * shapes (served by our executors) split vocabulary rows over the tensor shards.
     */
    public static ModelContext of(ModelShape shape) {
        long bpp = shape.bytesPerParameter();
        long h = shape.hidden();
        long embedding = ((long) shape.vocab() + shape.maxPositions()) * h * bpp;
        long classifier = ((long) shape.vocab() * h + shape.finalNormParameters()) * bpp;
        return new ModelContext(shape.name(), shape.layers(), shape.layerWeightBytes(), embedding, classifier,
                shape.kvBytesPerTokenPerLayer(), shape.family() == ModelShape.Family.LLAMA);
    }

    /** OPT-6.7B of the paper's evaluation (32 blocks, h = 4096, FP32). */
    public static ModelContext opt6_7b() {
        return of(PaperModel.OPT_6_7B.shape());
    }

    /** GPT-20B of the paper's evaluation (44 blocks, h = 6144, FP32). */
    public static ModelContext gpt20b() {
        return of(PaperModel.GPT_20B.shape());
    }

    /** LLaMA-30B as the artifact models it (GPT-style, 48 blocks, h = 7168, FP32). */
    public static ModelContext llama30b() {
        return of(PaperModel.LLAMA_30B.shape());
    }

    /**
     * First block of stage {@code stage} of {@code stages}: {@code floor(stage · L / P)}, the rule of
     * {@code io.spotserve.exec.ShardLayout#split} (later stages take the extra layers), which the engine serves with;
     * the planning package does not depend on the executor's, so {@code ShardLayoutTest} checks the two agree.
     */
    public int firstLayer(int stage, int stages) {
        checkStages(stages);
        if (stage < 0 || stage > stages) {
            throw new IllegalArgumentException("stage " + stage + " does not exist in P=" + stages);
        }
        return (int) ((long) stage * layers / stages);
    }

    /** Stage of P that owns block {@code layer}. */
    public int stageOf(int layer, int stages) {
        checkStages(stages);
        if (layer < 0 || layer >= layers) {
            throw new IllegalArgumentException("layer " + layer + " does not exist; " + name + " has " + layers);
        }
        int p = 0;
        while (p + 1 < stages && firstLayer(p + 1, stages) <= layer) {
            p++;
        }
        return p;
    }

    /** Rejects a pipeline degree with empty stages. */
    void checkStages(int stages) {
        if (stages < 1 || stages > layers) {
            throw new IllegalArgumentException("P=" + stages + " pipeline stages cannot split " + name + "'s "
                    + layers + " layers; expected 1 <= P <= " + layers);
        }
    }

    /** Context bytes one position of {@code config} holds without KV cache (weights only). */
    public long weightBytesPerPosition(ParallelConfig config, Position pos) {
        int stages = config.pipelineStages();
        int n = firstLayer(pos.stage() + 1, stages) - firstLayer(pos.stage(), stages);
        ShardRange shard = ShardRange.ofShard(pos.shard(), config.tensorShards());
        long b = n * shard.bytesOf(layerWeightBytes);
        if (pos.stage() == 0) {
            b += shardedVocab ? shard.bytesOf(embeddingBytes) : embeddingBytes;
        }
        if (pos.stage() == stages - 1) {
            b += shardedVocab ? shard.bytesOf(classifierBytes) : classifierBytes;
        }
        return b;
    }
}
