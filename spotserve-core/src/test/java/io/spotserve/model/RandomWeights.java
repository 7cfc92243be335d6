package io.spotserve.model;

import io.spotserve.model.LlamaCheckpoint.Tensor;

/**
 * Deterministic pseudo-random weights of any config, computed on read (nothing stored): element {@code i} of a
 * tensor of a layer is a hash of (seed, tensor, layer, i) scaled to about ±{@code 1/sqrt(cols)}; norm weights are
 * near 1. For test models whose size makes storing them pointless (a Llama-3-shaped model with 128,256 tokens).
 */
public final class RandomWeights implements ModelWeights {
    private final LlamaConfig config;
    private final long seed;

    public RandomWeights(LlamaConfig config, long seed) {
        this.config = config;
        this.seed = seed;
    }

    @Override
    public LlamaConfig config() {
        return config;
    }

    @Override
    public String description() {
        return "random weights (seed " + seed + ")";
    }

    @Override
    public void read(Tensor tensor, int layer, long offset, float[] dst, int dstOff, int len) {
        Tensor t = tensor == Tensor.CLASSIFIER && config.sharedClassifier() ? Tensor.TOKEN_EMBEDDING : tensor;
        long[] dims = TensorSetWeights.dims(config, t);
        if (offset < 0 || offset + len > dims[0] * dims[1]) {
            throw new IndexOutOfBoundsException(t + " [" + offset + ", " + (offset + len) + ")");
        }
        boolean norm = t == Tensor.RMS_ATT || t == Tensor.RMS_FFN || t == Tensor.RMS_FINAL;
        float scale = (float) (norm ? 0.2 : t == Tensor.TOKEN_EMBEDDING ? 1.0 : 2.0 / Math.sqrt(dims[1]));
        for (int i = 0; i < len; i++) {
            long h = mix(seed ^ ((long) t.ordinal() << 56) ^ ((long) layer << 40) ^ (offset + i));
            float u = ((h >>> 40) / (float) (1L << 24)) - 0.5f; // [-0.5, 0.5)
            dst[dstOff + i] = norm ? 1 + u * scale : u * scale;
        }
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
