package io.spotserve.exec;

/**
 * How an executor keeps a model's weights. Decode is bound by the weight bytes each token reads, so storing
 * them in half precision halves both the memory a pipeline position needs and the time a step takes on a GPU.
 * Every executor gives {@link #FP16} the same numbers: imported weights are rounded to the nearest fp16 value
 * (ties to even) and all arithmetic stays fp32. The CUDA executor stores those values as halves; the CPU
 * executor keeps them in floats (no memory saving, but a CPU fallback computes what the GPU would). KV caches
 * and the migration wire format ({@link SliceFormat}) stay fp32 either way.
 *
 * <p>{@link #Q8_0} keeps weight matrices as GGUF's Q8_0 blocks (32 signed bytes and an fp16 scale per 32 weights,
 * 1.0625 bytes per weight) where the CPU executor can: the form a Q8_0 GGUF file stores, so such a file is served
 * as int8, not dequantized ({@link ExecutorOptions#forModel} picks it for such files). Norm vectors stay fp32. The
 * CPU executor multiplies the blocks directly (activations quantized per block as llama.cpp does); a matrix whose
 * shard split does not fall on 32-weight blocks stays fp32 on that shard (logged). An executor without Q8_0
 * kernels computes with the dequantized values in fp32.
 */
public enum WeightPrecision {
    /** IEEE single precision, the checkpoint's own values. */
    FP32(Float.BYTES),
    /** IEEE half precision (binary16) storage, fp32 accumulation. */
    FP16(2),
    /** GGUF Q8_0 blocks: 34 bytes per 32 weights (an fp16 scale and 32 int8 quants). */
    Q8_0(34.0 / 32);

    private final double bytes;

    WeightPrecision(double bytes) {
        this.bytes = bytes;
    }

    /**
     * Bytes one stored weight takes where the executor stores this precision natively, rounded up to a whole byte
     * (Q8_0: 2; see {@link #bytesPerWeight} for the exact 1.0625).
     */
    public int bytes() {
        return (int) Math.ceil(bytes);
    }

    /** Exact bytes per stored weight where the executor stores this precision natively (Q8_0: 34 / 32 = 1.0625). */
    public double bytesPerWeight() {
        return bytes;
    }

    /**
     * The precision named {@code text} ("fp32" / "fp16" / "q8_0", any case; "q8" also names Q8_0).
     *
     * @throws IllegalArgumentException for any other text
     */
    public static WeightPrecision parse(String text) {
        String t = text == null ? "" : text.trim();
        for (WeightPrecision p : values()) {
            if (p.name().equalsIgnoreCase(t)) {
                return p;
            }
        }
        if (t.equalsIgnoreCase("q8")) {
            return Q8_0;
        }
        throw new IllegalArgumentException("weight precision '" + text + "' unknown; expected fp32, fp16 or q8_0");
    }
}
