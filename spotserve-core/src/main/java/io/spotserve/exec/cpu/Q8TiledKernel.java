package io.spotserve.exec.cpu;

import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Q8Tiles#matmul} on the Vector API, bit-identical to it: a lane is a row of the tile. Per block column, each
 * of the 32 quant columns is loaded as bytes (one per row), widened to ints, multiplied by the activation quant
 * (broadcast) and added, so the lanes hold the exact integer block sums; the tile's 32 fp16 scales are decoded to
 * floats in vectors ({@link #halfToFloat}), multiplied by the activation block's scale, and each lane does the
 * block's one fused multiply-add. No horizontal sum anywhere: a tile's 32 outputs are stored as they are.
 *
 * <p>Two shapes of the same arithmetic: {@link #matmulWide} keeps a tile in two 512-bit int vectors (AVX-512),
 * {@link #matmulNarrow} in four 256-bit ones (AVX2). A matrix's last tile, when it has fewer than 32 rows, takes the
 * scalar {@link Q8Tiles#matmul}. Loaded only when the {@code jdk.incubator.vector} module is present.
 */
final class Q8TiledKernel {
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    private static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    private static final VectorSpecies<Integer> I256 = IntVector.SPECIES_256;
    private static final int BLOCK = Q8Blocks.BLOCK;
    private static final int ROWS = Q8Tiles.ROWS;
    /** Whether this machine's int vectors are 512 bits (AVX-512). */
    static final boolean WIDE = IntVector.SPECIES_PREFERRED.length() >= 16;
    /** Whether its int vectors are at least 256 bits (AVX2); below that the scalar kernel runs. */
    static final boolean NARROW = IntVector.SPECIES_PREFERRED.length() >= 8;

    private Q8TiledKernel() {
    }

    static void matmul(byte[] w, int wOff, int n, int rows, int r0, int r1, short[] qx, float[] dx, int batch,
                       float[] out, int outOff, int outStride) {
        if (WIDE) {
            matmulWide(w, wOff, n, rows, r0, r1, qx, dx, batch, out, outOff, outStride);
        } else if (NARROW) {
            matmulNarrow(w, wOff, n, rows, r0, r1, qx, dx, batch, out, outOff, outStride);
        } else {
            Q8Tiles.matmul(w, wOff, n, rows, r0, r1, qx, dx, batch, out, outOff, outStride);
        }
    }

    /** Two 512-bit vectors per tile. {@code r0} must start a tile. */
    static void matmulWide(byte[] w, int wOff, int n, int rows, int r0, int r1, short[] qx, float[] dx, int batch,
                           float[] out, int outOff, int outStride) {
        int blocks = n / BLOCK;
        int rb = Q8Blocks.rowBytes(n);
        for (int t = r0; t < r1; t += ROWS) {
            if (t + ROWS > r1 || t + ROWS > rows) {
                Q8Tiles.matmul(w, wOff, n, rows, t, r1, qx, dx, batch, out, outOff, outStride);
                return;
            }
            int tile = wOff + t * rb;
            for (int b = 0; b < batch; b++) {
                int xq = b * n;
                int xd = b * blocks;
                FloatVector acc0 = FloatVector.zero(FloatVector.SPECIES_512);
                FloatVector acc1 = acc0;
                for (int k = 0; k < blocks; k++) {
                    int region = tile + k * Q8Blocks.BLOCK_BYTES * ROWS;
                    int xa = xq + k * BLOCK;
                    IntVector s0 = IntVector.zero(I512);
                    IntVector s1 = s0;
                    for (int j = 0; j < BLOCK; j++) {
                        IntVector q = IntVector.broadcast(I512, qx[xa + j]);
                        int at = region + j * ROWS;
                        s0 = s0.add(widen(ByteVector.fromArray(B128, w, at), I512).mul(q));
                        s1 = s1.add(widen(ByteVector.fromArray(B128, w, at + 16), I512).mul(q));
                    }
                    int sa = region + BLOCK * ROWS;
                    float d = dx[xd + k];
                    FloatVector d0 = halfToFloat(halves(w, sa, S256, I512)).mul(d);
                    FloatVector d1 = halfToFloat(halves(w, sa + 32, S256, I512)).mul(d);
                    acc0 = ((FloatVector) s0.convert(VectorOperators.I2F, 0)).fma(d0, acc0);
                    acc1 = ((FloatVector) s1.convert(VectorOperators.I2F, 0)).fma(d1, acc1);
                }
                int o = outOff + b * outStride + t;
                acc0.intoArray(out, o);
                acc1.intoArray(out, o + 16);
            }
        }
    }

    /** Four 256-bit vectors per tile. {@code r0} must start a tile. */
    static void matmulNarrow(byte[] w, int wOff, int n, int rows, int r0, int r1, short[] qx, float[] dx, int batch,
                             float[] out, int outOff, int outStride) {
        int blocks = n / BLOCK;
        int rb = Q8Blocks.rowBytes(n);
        for (int t = r0; t < r1; t += ROWS) {
            if (t + ROWS > r1 || t + ROWS > rows) {
                Q8Tiles.matmul(w, wOff, n, rows, t, r1, qx, dx, batch, out, outOff, outStride);
                return;
            }
            int tile = wOff + t * rb;
            for (int b = 0; b < batch; b++) {
                int xq = b * n;
                int xd = b * blocks;
                FloatVector acc0 = FloatVector.zero(FloatVector.SPECIES_256);
                FloatVector acc1 = acc0;
                FloatVector acc2 = acc0;
                FloatVector acc3 = acc0;
                for (int k = 0; k < blocks; k++) {
                    int region = tile + k * Q8Blocks.BLOCK_BYTES * ROWS;
                    int xa = xq + k * BLOCK;
                    IntVector s0 = IntVector.zero(I256);
                    IntVector s1 = s0;
                    IntVector s2 = s0;
                    IntVector s3 = s0;
                    for (int j = 0; j < BLOCK; j++) {
                        IntVector q = IntVector.broadcast(I256, qx[xa + j]);
                        int at = region + j * ROWS;
                        s0 = s0.add(widen(ByteVector.fromArray(B64, w, at), I256).mul(q));
                        s1 = s1.add(widen(ByteVector.fromArray(B64, w, at + 8), I256).mul(q));
                        s2 = s2.add(widen(ByteVector.fromArray(B64, w, at + 16), I256).mul(q));
                        s3 = s3.add(widen(ByteVector.fromArray(B64, w, at + 24), I256).mul(q));
                    }
                    int sa = region + BLOCK * ROWS;
                    float d = dx[xd + k];
                    acc0 = toFloats(s0).fma(halfToFloat(halves(w, sa, S128, I256)).mul(d), acc0);
                    acc1 = toFloats(s1).fma(halfToFloat(halves(w, sa + 16, S128, I256)).mul(d), acc1);
                    acc2 = toFloats(s2).fma(halfToFloat(halves(w, sa + 32, S128, I256)).mul(d), acc2);
                    acc3 = toFloats(s3).fma(halfToFloat(halves(w, sa + 48, S128, I256)).mul(d), acc3);
                }
                int o = outOff + b * outStride + t;
                acc0.intoArray(out, o);
                acc1.intoArray(out, o + 8);
                acc2.intoArray(out, o + 16);
                acc3.intoArray(out, o + 24);
            }
        }
    }

    private static IntVector widen(ByteVector v, VectorSpecies<Integer> to) {
        return (IntVector) v.convertShape(VectorOperators.B2I, to, 0);
    }

    private static FloatVector toFloats(IntVector v) {
        return (FloatVector) v.convert(VectorOperators.I2F, 0);
    }

    /** Little-endian fp16 bit patterns at {@code w[at..]}, one per int lane (sign-extended). */
    private static IntVector halves(byte[] w, int at, VectorSpecies<Short> from, VectorSpecies<Integer> to) {
        return (IntVector) ShortVector.fromByteArray(from, w, at, ByteOrder.LITTLE_ENDIAN)
                .convertShape(VectorOperators.S2I, to, 0);
    }

    /**
     * fp16 bit patterns (low 16 bits of each lane) to their float values, exactly {@code HalfFloats.toFloat} for all
     * 65,536 patterns, without compares: the exponent and mantissa moved into a float's fields and scaled by 2^112
     * give every finite value (subnormal halves become subnormal floats whose scaling is exact); where the exponent
     * is 31, {@code ((e + 1) >> 5) = 1} turns into an all-ones float exponent (infinity, or NaN with the half's
     * payload); then the sign bit.
     */
    static FloatVector halfToFloat(IntVector h) {
        IntVector em = h.and(0x7fff);
        IntVector sign = h.lanewise(VectorOperators.LSHL, 16).and(Integer.MIN_VALUE);
        IntVector special = em.lanewise(VectorOperators.ASHR, 10).add(1).lanewise(VectorOperators.ASHR, 5).neg()
                .and(0x7f800000);
        FloatVector scaled = em.lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
        return scaled.reinterpretAsInts().or(special).or(sign).reinterpretAsFloats();
    }
}
