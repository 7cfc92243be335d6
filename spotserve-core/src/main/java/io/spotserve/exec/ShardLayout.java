package io.spotserve.exec;

import io.spotserve.model.LlamaConfig;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * How one inference pipeline splits a model into P pipeline stages × M tensor shards (DESIGN.md §3,
 * SpotServe §2 "model parallelism").
 *
 * <ul>
 *   <li>Stage p owns a contiguous layer range; stage 0 also owns the token embedding, the last stage the
 *       final RMSNorm and the classifier. Layers split evenly, or by an explicit list of layer counts.</li>
 *   <li>Shard m of M owns query heads {@code [m·H/M, (m+1)·H/M)}, the key/value heads those queries read
 *       (grouped-query aware: {@code [m·KV/M, (m+1)·KV/M)}), the matching columns of wo, FFN hidden units
 *       {@code [m·F/M, (m+1)·F/M)} (rows of w1 and w3, columns of w2) and vocabulary rows
 *       {@code [⌊m·V/M⌋, ⌊(m+1)·V/M⌋)} of the embedding (stage 0) and of the classifier (last stage), whose
 *       logits are gathered by concatenation. RMSNorm weights are replicated on every shard.</li>
 * </ul>
 *
 * <p>Impossible layouts are rejected with a message naming the offending values; a layer is never dropped.
 *
 * @param config      the model shape
 * @param stageLayers number of layers of each stage, in order (its size is P)
 * @param shards      M, the tensor-parallel degree
 */
public record ShardLayout(LlamaConfig config, List<Integer> stageLayers, int shards) {

    public ShardLayout {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(stageLayers, "stageLayers");
        stageLayers = List.copyOf(stageLayers);
        if (stageLayers.isEmpty()) {
            throw new IllegalArgumentException("a layout needs at least one pipeline stage, got an empty layer list");
        }
        int total = 0;
        for (int i = 0; i < stageLayers.size(); i++) {
            int n = stageLayers.get(i);
            if (n < 1) {
                throw new IllegalArgumentException("stage " + i + " has " + n + " layers; every stage needs >= 1 (layers "
                        + stageLayers + ")");
            }
            total += n;
        }
        if (total != config.layers()) {
            throw new IllegalArgumentException("stage layer counts " + stageLayers + " sum to " + total
                    + " but the model has " + config.layers() + " layers");
        }
        if (shards < 1) {
            throw new IllegalArgumentException("M (tensor shards) must be >= 1, was " + shards);
        }
        if (config.heads() % shards != 0) {
            throw new IllegalArgumentException("M = " + shards + " tensor shards do not divide n_heads " + config.heads());
        }
        if (config.kvHeads() % shards != 0) {
            throw new IllegalArgumentException("M = " + shards + " tensor shards do not divide n_kv_heads "
                    + config.kvHeads() + " (each shard needs whole key/value heads)");
        }
        if (config.hiddenDim() % shards != 0) {
            throw new IllegalArgumentException("M = " + shards + " tensor shards do not divide hidden_dim "
                    + config.hiddenDim());
        }
        if (config.vocabSize() < shards) {
            throw new IllegalArgumentException("M = " + shards + " tensor shards exceed vocab_size " + config.vocabSize());
        }
    }

    /**
     * Splits the layers evenly over {@code stages} stages.
     *
     * @throws IllegalArgumentException if there are more stages than layers, the layers do not divide evenly
     *                                  (use {@link #balanced}), or M does not fit the model
     */
    public static ShardLayout of(LlamaConfig config, int stages, int shards) {
        Objects.requireNonNull(config, "config");
        if (stages < 1) {
            throw new IllegalArgumentException("P (pipeline stages) must be >= 1, was " + stages);
        }
        if (stages > config.layers()) {
            throw new IllegalArgumentException("P = " + stages + " pipeline stages exceed the model's "
                    + config.layers() + " layers");
        }
        if (config.layers() % stages != 0) {
            throw new IllegalArgumentException("P = " + stages + " does not divide the model's " + config.layers()
                    + " layers evenly; give an explicit balanced list of layer counts instead");
        }
        return new ShardLayout(config, Collections.nCopies(stages, config.layers() / stages), shards);
    }

    /**
     * The layout rule for (P, M) that the engine serves with and the planning core prices: stage {@code p} owns
     * layers {@code [firstLayer(L, p, P), firstLayer(L, p + 1, P))} with {@code firstLayer = floor(p · L / P)}. When
     * P does not divide L the stages differ by one layer and the <b>later</b> stages get the extra layers (L = 5,
     * P = 4: {@code [1, 1, 1, 2]}; L = 10, P = 4: {@code [2, 3, 2, 3]}). The embedding is on stage 0, the final norm
     * and classifier on stage P - 1; M shards every stage's heads and hidden units.
     *
     * @throws IllegalArgumentException if P is not in [1, L], or M does not fit the model
     */
    public static ShardLayout split(LlamaConfig config, int stages, int shards) {
        Objects.requireNonNull(config, "config");
        if (stages < 1 || stages > config.layers()) {
            throw new IllegalArgumentException("P = " + stages + " pipeline stages cannot split the model's "
                    + config.layers() + " layers; expected 1 <= P <= " + config.layers());
        }
        List<Integer> counts = new java.util.ArrayList<>();
        for (int p = 0; p < stages; p++) {
            counts.add(firstLayer(config.layers(), p + 1, stages) - firstLayer(config.layers(), p, stages));
        }
        return balanced(config, counts, shards);
    }

    /**
     * The first layer of stage {@code stage} when {@code layers} layers are split over {@code stages} stages by
     * {@link #split}'s rule: {@code floor(stage · layers / stages)} ({@code stage = stages} gives {@code layers}).
     */
    public static int firstLayer(int layers, int stage, int stages) {
        if (stages < 1 || stage < 0 || stage > stages) {
            throw new IllegalArgumentException("stage " + stage + " of P = " + stages + " does not exist");
        }
        return (int) ((long) stage * layers / stages);
    }

    /** A layout with an explicit number of layers per stage, e.g. {@code [2, 1, 1, 1]} for 5 layers on P = 4. */
    public static ShardLayout balanced(LlamaConfig config, List<Integer> stageLayers, int shards) {
        return new ShardLayout(config, stageLayers, shards);
    }

    /** P, the number of pipeline stages. */
    public int stages() {
        return stageLayers.size();
    }

    /** The layers of stage {@code stage}. */
    public IndexRange layers(int stage) {
        checkStage(stage);
        int from = 0;
        for (int i = 0; i < stage; i++) {
            from += stageLayers.get(i);
        }
        return new IndexRange(from, from + stageLayers.get(stage));
    }

    /** The stage that owns {@code layer}. */
    public int stageOf(int layer) {
        if (layer < 0 || layer >= config.layers()) {
            throw new IllegalArgumentException("layer " + layer + " outside [0, " + config.layers() + ")");
        }
        int end = 0;
        for (int s = 0; s < stageLayers.size(); s++) {
            end += stageLayers.get(s);
            if (layer < end) {
                return s;
            }
        }
        throw new AssertionError("unreachable");
    }

    /** Query heads of shard {@code shard}. */
    public IndexRange heads(int shard) {
        return split(config.heads(), shard);
    }

    /** Key/value heads of shard {@code shard}. */
    public IndexRange kvHeads(int shard) {
        return split(config.kvHeads(), shard);
    }

    /** FFN hidden units of shard {@code shard}. */
    public IndexRange hidden(int shard) {
        return split(config.hiddenDim(), shard);
    }

    /** Vocabulary rows of the embedding / classifier held by shard {@code shard}. */
    public IndexRange vocab(int shard) {
        return split(config.vocabSize(), shard);
    }

    private IndexRange split(int units, int shard) {
        checkShard(shard);
        return new IndexRange((int) ((long) shard * units / shards), (int) ((long) (shard + 1) * units / shards));
    }

    /** Every weight slice position (stage, shard) must hold before it can run. */
    public List<ContextSlice> weightSlices(int stage, int shard) {
        checkStage(stage);
        checkShard(shard);
        List<ContextSlice> out = new ArrayList<>();
        if (stage == 0) {
            out.add(new ContextSlice.Embedding(vocab(shard)));
        }
        IndexRange layers = layers(stage);
        for (int l = layers.from(); l < layers.to(); l++) {
            out.add(new ContextSlice.LayerWeights(l, heads(shard), hidden(shard)));
        }
        if (stage == stages() - 1) {
            out.add(new ContextSlice.FinalNorm());
            out.add(new ContextSlice.Classifier(vocab(shard)));
        }
        return List.copyOf(out);
    }

    /** The KV-cache slices of one sequence's first {@code length} positions that position (stage, shard) holds. */
    public List<ContextSlice> kvSlices(int stage, int shard, long sequence, int length) {
        checkShard(shard);
        IndexRange layers = layers(stage);
        List<ContextSlice> out = new ArrayList<>();
        for (int l = layers.from(); l < layers.to(); l++) {
            out.add(new ContextSlice.KvCache(sequence, l, kvHeads(shard), length));
        }
        return List.copyOf(out);
    }

    /**
     * Bytes of weights position (stage, shard) stores. When one stage is both first and last and the model
     * shares its classifier with the token embedding, the {@link ContextSlice.Embedding} and
     * {@link ContextSlice.Classifier} slices are the same rows and are stored (and counted) once.
     */
    public long weightBytes(int stage, int shard) {
        long bytes = 0;
        for (ContextSlice s : weightSlices(stage, shard)) {
            bytes += s.bytes(config);
        }
        if (stages() == 1 && config.sharedClassifier()) {
            bytes -= new ContextSlice.Classifier(vocab(shard)).bytes(config);
        }
        return bytes;
    }

    /**
     * {@link #weightBytes(int, int)} for an executor that stores {@code bytesPerWeight} bytes per weight (2 for fp16
     * halves; see {@code Executor.storedBytesPerWeight()}) instead of 4.
     */
    public long weightBytes(int stage, int shard, int bytesPerWeight) {
        if (bytesPerWeight < 1) {
            throw new IllegalArgumentException("bytesPerWeight must be >= 1, was " + bytesPerWeight);
        }
        return weightBytes(stage, shard) / Float.BYTES * bytesPerWeight;
    }

    /**
     * {@link #weightBytes(int, int)} for an executor that stores {@code bytesPerWeight} bytes per matrix weight
     * (1.0625 for Q8_0 blocks, 2 for fp16 halves; {@code Executor.storedBytesPerWeightExact()}), the norm vectors
     * staying fp32 (4 bytes), rounded up to whole bytes.
     */
    public long weightBytes(int stage, int shard, double bytesPerWeight) {
        if (!(bytesPerWeight > 0)) {
            throw new IllegalArgumentException("bytesPerWeight must be > 0, was " + bytesPerWeight);
        }
        long norms = (long) layers(stage).length() * 2 * config.dim() + (stage == stages() - 1 ? config.dim() : 0);
        long matrices = weightBytes(stage, shard) / Float.BYTES - norms;
        return (long) Math.ceil(matrices * bytesPerWeight) + norms * Float.BYTES;
    }

    /** Bytes of KV cache position (stage, shard) holds per sequence position. */
    public long kvBytesPerPosition(int stage, int shard) {
        return 2L * layers(stage).length() * kvHeads(shard).length() * config.headSize() * Float.BYTES;
    }

    private void checkStage(int stage) {
        if (stage < 0 || stage >= stages()) {
            throw new IllegalArgumentException("stage " + stage + " outside [0, " + stages() + ")");
        }
    }

    private void checkShard(int shard) {
        if (shard < 0 || shard >= shards) {
            throw new IllegalArgumentException("shard " + shard + " outside [0, " + shards + ")");
        }
    }

    @Override
    public String toString() {
        return "ShardLayout[P=" + stages() + " " + stageLayers + ", M=" + shards + "]";
    }
}
