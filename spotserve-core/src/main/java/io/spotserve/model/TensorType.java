package io.spotserve.model;

import java.nio.ByteBuffer;

/**
 * Element encodings of stored weight tensors (GGML's type ids; safetensors' dtypes map onto the first three), and
 * how to turn a run of them back into floats. Block types store {@link #blockSize} elements in
 * {@link #blockBytes} bytes: Q8_0 is an fp16 scale {@code d} and 32 signed bytes {@code q} (value {@code d·q});
 * Q4_0 an fp16 scale and 16 bytes of nibbles (element {@code j} in the low nibble of byte {@code j}, element
 * {@code j + 16} in the high nibble, value {@code d·(nibble − 8)}).
 */
public enum TensorType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),
    Q8_0(8, 32, 34),
    BF16(30, 1, 2);

    /** GGML's numeric type id. */
    public final int ggmlId;
    /** Elements per block (1 for plain types). */
    public final int blockSize;
    /** Bytes per block. */
    public final int blockBytes;

    TensorType(int ggmlId, int blockSize, int blockBytes) {
        this.ggmlId = ggmlId;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
    }

    /** The type with GGML id {@code id}, or null when we do not support it. */
    static TensorType ofGgml(int id) {
        for (TensorType t : values()) {
            if (t.ggmlId == id) {
                return t;
            }
        }
        return null;
    }

    /** GGML's name of a type id we may not support, for messages. */
    static String ggmlName(int id) {
        String[] names = {"F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
                "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",
                "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16"};
        return id >= 0 && id < names.length ? names[id] : "type " + id;
    }

    /** Bytes of a row of {@code cols} elements; {@code cols} must be a multiple of the block size. */
    public long rowBytes(long cols) {
        return cols / blockSize * blockBytes;
    }

    /**
     * Decodes {@code len} elements starting at element {@code col} of the row whose bytes begin at absolute index
     * {@code rowStart} of {@code buf} into {@code dst[off..]}.
     */
    void decode(ByteBuffer buf, int rowStart, int col, float[] dst, int off, int len) {
        switch (this) {
            case F32 -> {
                for (int i = 0; i < len; i++) {
                    dst[off + i] = buf.getFloat(rowStart + 4 * (col + i));
                }
            }
            case F16 -> {
                for (int i = 0; i < len; i++) {
                    dst[off + i] = HalfFloats.toFloat(buf.getShort(rowStart + 2 * (col + i)));
                }
            }
            case BF16 -> {
                for (int i = 0; i < len; i++) {
                    dst[off + i] = Float.intBitsToFloat((buf.getShort(rowStart + 2 * (col + i)) & 0xffff) << 16);
                }
            }
            case Q8_0 -> {
                for (int i = 0; i < len; i++) {
                    int e = col + i;
                    int block = rowStart + (e >>> 5) * 34;
                    float d = HalfFloats.toFloat(buf.getShort(block));
                    dst[off + i] = d * buf.get(block + 2 + (e & 31));
                }
            }
            case Q4_0 -> {
                for (int i = 0; i < len; i++) {
                    int e = col + i;
                    int block = rowStart + (e >>> 5) * 18;
                    float d = HalfFloats.toFloat(buf.getShort(block));
                    int j = e & 31;
                    int b = buf.get(block + 2 + (j & 15)) & 0xff;
                    int nibble = j < 16 ? b & 15 : b >>> 4;
                    dst[off + i] = d * (nibble - 8);
                }
            }
            default -> throw new AssertionError(this);
        }
    }

    /** Encodes one row of floats in this type (Q8_0 and Q4_0 quantize per block as llama.cpp's reference does). */
    void encode(float[] src, int off, int cols, ByteBuffer out) {
        switch (this) {
            case F32 -> {
                for (int i = 0; i < cols; i++) {
                    out.putFloat(src[off + i]);
                }
            }
            case F16 -> {
                for (int i = 0; i < cols; i++) {
                    out.putShort(HalfFloats.toHalf(src[off + i]));
                }
            }
            case BF16 -> {
                for (int i = 0; i < cols; i++) {
                    int bits = Float.floatToRawIntBits(src[off + i]);
                    bits += 0x7fff + ((bits >>> 16) & 1); // round to nearest even
                    out.putShort((short) (bits >>> 16));
                }
            }
            case Q8_0 -> {
                for (int b = 0; b < cols; b += 32) {
                    float amax = 0;
                    for (int j = 0; j < 32; j++) {
                        amax = Math.max(amax, Math.abs(src[off + b + j]));
                    }
                    float d = amax / 127f;
                    float id = d != 0 ? 1f / d : 0f;
                    out.putShort(HalfFloats.toHalf(d));
                    for (int j = 0; j < 32; j++) {
                        out.put((byte) Math.round(src[off + b + j] * id));
                    }
                }
            }
            case Q4_0 -> {
                for (int b = 0; b < cols; b += 32) {
                    float amax = 0;
                    float max = 0;
                    for (int j = 0; j < 32; j++) {
                        float v = src[off + b + j];
                        if (Math.abs(v) > amax) {
                            amax = Math.abs(v);
                            max = v;
                        }
                    }
                    float d = max / -8f;
                    float id = d != 0 ? 1f / d : 0f;
                    out.putShort(HalfFloats.toHalf(d));
                    for (int j = 0; j < 16; j++) {
                        int lo = Math.min(15, (int) (src[off + b + j] * id + 8.5f));
                        int hi = Math.min(15, (int) (src[off + b + j + 16] * id + 8.5f));
                        out.put((byte) (lo | (hi << 4)));
                    }
                }
            }
            default -> throw new AssertionError(this);
        }
    }
}
