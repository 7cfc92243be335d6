package io.spotserve.exec;

/**
 * How an executor keeps a model's weights. Decode is bound by the weight bytes each token reads, so storing
 * them in half precision halves both the memory a pipeline position needs and the time a step takes on a GPU.
 * Every executor gives {@link #FP16} the same numbers: imported weights are rounded to the nearest fp16 value
 * (ties to even) and all arithmetic stays fp32. The CUDA executor stores those values as halves; the CPU
 * executor keeps them in floats (no memory saving, but a CPU fallback computes what the GPU would). KV caches
 * and the migration wire format ({@link SliceFormat}) stay fp32 either way.
 */
public enum WeightPrecision {
    /** IEEE single precision, the checkpoint's own values. */
    FP32(Float.BYTES),
    /** IEEE half precision (binary16) storage, fp32 accumulation. */
    FP16(2);

    private final int bytes;

    WeightPrecision(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes one stored weight takes where the executor stores this precision natively. */
    public int bytes() {
        return bytes;
    }

    /**
     * The precision named {@code text} ("fp32" / "fp16", any case).
     *
     * @throws IllegalArgumentException for any other text
     */
    public static WeightPrecision parse(String text) {
        for (WeightPrecision p : values()) {
            if (p.name().equalsIgnoreCase(text == null ? "" : text.trim())) {
                return p;
            }
        }
        throw new IllegalArgumentException("weight precision '" + text + "' unknown; expected fp32 or fp16");
    }
}
