package io.spotserve.bench.gpu;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.WeightSource;
import io.spotserve.model.LlamaCheckpoint.Tensor;
import io.spotserve.model.LlamaConfig;
import java.util.EnumMap;
import java.util.Map;
import java.util.Objects;
import java.util.stream.IntStream;

/**
 * A LLaMA model of any shape whose weights are a pure function of (seed, tensor, layer, index), computed on
 * demand slice by slice: the 1B-parameter decode benchmark ({@link #TINYLLAMA_1B}) loads a GPU pipeline without
 * writing a 4.4 GB checkpoint or holding the whole model on the host, and every slice of every layout (any P,
 * M) is the restriction of one and the same model, exactly as {@link io.spotserve.exec.CheckpointSlices} would
 * read it from the equivalent checkpoint file ({@link #tensors()}).
 *
 * <p>Values: RMSNorm weights are exactly 1 (what PyTorch/transformers' random init uses); matrix entries are a
 * centred Irwin-Hall sum of four 16-bit uniforms taken from one SplitMix64 hash of the element's counter, scaled
 * to standard deviation {@value #STD} (bell-shaped, bounded at ±3.46 σ). Integer hashing and one double multiply
 * make the values bit-identical on every JVM and machine, and the counter form lets many threads fill a slice.
 */
public final class RandomLlamaWeights implements WeightSource {
    /**
     * TinyLlama-1.1B's shape: dim 2048, hidden 5632, 22 layers, 32 query / 4 key-value heads, vocabulary 32000,
     * seq_len 2048, a classifier separate from the token embedding (1,100,048,384 parameters).
     */
    public static final LlamaConfig TINYLLAMA_1B = new LlamaConfig(2048, 5632, 22, 32, 4, 32000, 2048, false);
    /** Standard deviation of the matrix entries (PyTorch/transformers' {@code initializer_range}). */
    public static final double STD = 0.02;

    private static final long GOLDEN = 0x9E3779B97F4A7C15L;
    /** sqrt(4 · (65536² − 1) / 12): the standard deviation of a sum of four uniform 16-bit integers. */
    private static final double SUM_STD = Math.sqrt(4 * (65536.0 * 65536.0 - 1) / 12);
    private static final double SCALE = STD / SUM_STD;
    /** Below this many floats a slice is filled on the calling thread. */
    private static final int PARALLEL_FLOATS = 1 << 16;

    private final LlamaConfig config;
    private final long seed;

    /** The random model of shape {@code config} drawn with {@code seed}. */
    public RandomLlamaWeights(LlamaConfig config, long seed) {
        this.config = Objects.requireNonNull(config, "config");
        this.seed = seed;
    }

    @Override
    public LlamaConfig config() {
        return config;
    }

    /** The seed the weights are drawn with. */
    public long seed() {
        return seed;
    }

    /**
     * Element {@code index} (row-major within one layer's tensor) of {@code tensor} in block {@code layer}
     * ({@code layer} 0 for the embedding, the final norm and the classifier). The classifier of a model that
     * shares it is the token embedding.
     *
     * @throws IllegalArgumentException for {@link Tensor#FREQ_CIS} (not a weight) or a layer or index outside
     *                                  the tensor
     */
    public float value(Tensor tensor, int layer, long index) {
        Objects.requireNonNull(tensor, "tensor");
        long length = layerLength(tensor);
        int layers = perLayer(tensor) ? config.layers() : 1;
        if (layer < 0 || layer >= layers) {
            throw new IllegalArgumentException("layer " + layer + " outside [0, " + layers + ") for tensor " + tensor);
        }
        if (index < 0 || index >= length) {
            throw new IllegalArgumentException("index " + index + " outside [0, " + length + ") of tensor " + tensor);
        }
        Tensor t = tensor == Tensor.CLASSIFIER && config.sharedClassifier() ? Tensor.TOKEN_EMBEDDING : tensor;
        return isNorm(t) ? 1f : entry(stream(t, layer), index);
    }

    /**
     * Every weight tensor over all layers in checkpoint order ({@link Tensor#FREQ_CIS} omitted, the classifier
     * only when not shared): the input of {@link io.spotserve.model.LlamaCheckpointWriter#write}, for small
     * models (each tensor must fit one array).
     *
     * @throws IllegalArgumentException if a tensor has more than {@code Integer.MAX_VALUE - 8} floats
     */
    public Map<Tensor, float[]> tensors() {
        Map<Tensor, float[]> out = new EnumMap<>(Tensor.class);
        for (Tensor t : Tensor.values()) {
            if (t == Tensor.FREQ_CIS || (t == Tensor.CLASSIFIER && config.sharedClassifier())) {
                continue;
            }
            int layers = perLayer(t) ? config.layers() : 1;
            long per = layerLength(t);
            if (per * layers > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("tensor " + t + " has " + per * layers
                        + " floats, more than one array holds; use floats(slice) instead");
            }
            float[] data = new float[(int) (per * layers)];
            for (int l = 0; l < layers; l++) {
                int cols = columns(t);
                fill(data, (int) (l * per), t, l, 0, (int) (per / cols), cols, new IndexRange(0, cols));
            }
            out.put(t, data);
        }
        return out;
    }

    /**
     * The floats of weight slice {@code slice} in its {@link ContextSlice documented layout} (the layout
     * {@link io.spotserve.exec.CheckpointSlices#read} produces), filled in parallel.
     *
     * @throws IllegalArgumentException if the slice does not fit the model, is a KV slice, or needs more floats
     *                                  than one array holds
     */
    public float[] floats(ContextSlice slice) {
        Objects.requireNonNull(slice, "slice");
        if (slice instanceof ContextSlice.KvCache) {
            throw new IllegalArgumentException(slice + " is cache context; a weight source holds only weights");
        }
        slice.validate(config);
        long n = slice.floats(config);
        if (n > Integer.MAX_VALUE - 8 - SliceFormat.HEADER_BYTES / Float.BYTES) {
            throw new IllegalArgumentException(slice + " needs " + n + " floats, more than one slice array holds");
        }
        int dim = config.dim();
        float[] out = new float[(int) n];
        if (slice instanceof ContextSlice.Embedding e) {
            fill(out, 0, Tensor.TOKEN_EMBEDDING, 0, e.vocab().from(), e.vocab().length(), dim, new IndexRange(0, dim));
        } else if (slice instanceof ContextSlice.Classifier k) {
            Tensor t = config.sharedClassifier() ? Tensor.TOKEN_EMBEDDING : Tensor.CLASSIFIER;
            fill(out, 0, t, 0, k.vocab().from(), k.vocab().length(), dim, new IndexRange(0, dim));
        } else if (slice instanceof ContextSlice.FinalNorm) {
            fill(out, 0, Tensor.RMS_FINAL, 0, 0, 1, dim, new IndexRange(0, dim));
        } else {
            ContextSlice.LayerWeights w = (ContextSlice.LayerWeights) slice;
            int l = w.layer();
            IndexRange q = w.heads().scale(config.headSize());
            IndexRange kv = w.kvHeads(config).scale(config.headSize());
            IndexRange f = w.hidden();
            IndexRange all = new IndexRange(0, dim);
            int o = 0;
            o = fill(out, o, Tensor.RMS_ATT, l, 0, 1, dim, all);
            o = fill(out, o, Tensor.RMS_FFN, l, 0, 1, dim, all);
            o = fill(out, o, Tensor.WQ, l, q.from(), q.length(), dim, all);
            o = fill(out, o, Tensor.WK, l, kv.from(), kv.length(), dim, all);
            o = fill(out, o, Tensor.WV, l, kv.from(), kv.length(), dim, all);
            o = fill(out, o, Tensor.WO, l, 0, dim, dim, q);
            o = fill(out, o, Tensor.W1, l, f.from(), f.length(), dim, all);
            o = fill(out, o, Tensor.W3, l, f.from(), f.length(), dim, all);
            fill(out, o, Tensor.W2, l, 0, dim, config.hiddenDim(), f);
        }
        return out;
    }

    /** {@link #floats} in {@link SliceFormat}, importable by every executor's {@link Pipeline#importSlice}. */
    @Override
    public byte[] encode(ContextSlice slice) {
        return SliceFormat.encode(config, slice, floats(slice));
    }

    /**
     * Imports every weight slice every position of {@code pipeline} needs (the cold start of
     * {@link Pipeline#loadWeights}, from this source instead of a file); one slice's floats and bytes are on
     * the host at a time.
     *
     * @throws IllegalArgumentException if the pipeline is for another model shape
     */
    public void loadInto(Pipeline pipeline) {
        ShardLayout layout = pipeline.layout();
        if (!layout.config().equals(config)) {
            throw new IllegalArgumentException("pipeline model " + layout.config() + " differs from this source's "
                    + config);
        }
        for (int s = 0; s < layout.stages(); s++) {
            for (int m = 0; m < layout.shards(); m++) {
                for (ContextSlice slice : layout.weightSlices(s, m)) {
                    pipeline.importSlice(s, m, encode(slice));
                }
            }
        }
    }

    /**
     * Writes rows {@code [rowFrom, rowFrom + rows)}, columns {@code columns} of the {@code [*][cols]} matrix
     * {@code t} of block {@code layer} into {@code out} from {@code off}, row-major; returns the end offset.
     */
    private int fill(float[] out, int off, Tensor t, int layer, int rowFrom, int rows, int cols, IndexRange columns) {
        long base = stream(t, layer);
        int width = columns.length();
        boolean norm = isNorm(t);
        if ((long) rows * width >= PARALLEL_FLOATS) {
            IntStream.range(0, rows).parallel().forEach(r -> fillRow(out, off + r * width, base, norm,
                    (long) (rowFrom + r) * cols + columns.from(), width));
        } else {
            for (int r = 0; r < rows; r++) {
                fillRow(out, off + r * width, base, norm, (long) (rowFrom + r) * cols + columns.from(), width);
            }
        }
        return off + rows * width;
    }

    private static void fillRow(float[] out, int off, long base, boolean norm, long first, int width) {
        for (int c = 0; c < width; c++) {
            out[off + c] = norm ? 1f : entry(base, first + c);
        }
    }

    /** The matrix entry at counter {@code index} of the stream {@code base}. */
    private static float entry(long base, long index) {
        long h = mix(base + index * GOLDEN);
        long sum = (h & 0xffff) + ((h >>> 16) & 0xffff) + ((h >>> 32) & 0xffff) + (h >>> 48);
        return (float) ((sum - 2 * 65535L) * SCALE); // the sum's mean is 4 · 32767.5
    }

    /** The stream of (tensor, layer): distinct per seed, tensor and layer. */
    private long stream(Tensor t, int layer) {
        return mix(mix(seed) ^ (((long) t.ordinal() + 1) << 40) ^ ((long) layer + 1));
    }

    /** SplitMix64's finaliser (Steele, Lea, Flood 2014): a bijective 64-bit mixer. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static boolean isNorm(Tensor t) {
        return t == Tensor.RMS_ATT || t == Tensor.RMS_FFN || t == Tensor.RMS_FINAL;
    }

    private static boolean perLayer(Tensor t) {
        return switch (t) {
            case RMS_ATT, WQ, WK, WV, WO, RMS_FFN, W1, W2, W3 -> true;
            default -> false;
        };
    }

    /** Columns of one row of {@code t}. */
    private int columns(Tensor t) {
        return t == Tensor.W2 ? config.hiddenDim() : config.dim();
    }

    /** Floats of one layer's {@code t} (of the whole tensor for the non-layer ones). */
    private long layerLength(Tensor t) {
        long d = config.dim();
        return switch (t) {
            case TOKEN_EMBEDDING, CLASSIFIER -> config.vocabSize() * d;
            case RMS_ATT, RMS_FFN, RMS_FINAL -> d;
            case WQ, WO -> d * d;
            case WK, WV -> (long) config.kvDim() * d;
            case W1, W2, W3 -> (long) config.hiddenDim() * d;
            case FREQ_CIS -> throw new IllegalArgumentException("FREQ_CIS holds RoPE tables, not weights");
        };
    }
}
