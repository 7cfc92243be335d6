package io.spotserve.exec.cpu;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
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
 * {@link #matmulNarrow} in four 256-bit ones (AVX2). With the activation quants also given as floats ({@code qf}),
 * {@link #matmulWide} runs four batch entries per pass over a tile ({@code tileWide4}): each quant column is loaded
 * and widened once for four entries, and the block sums build up in float lanes by fused multiply-adds. Those sums
 * are the same integers exactly (every product and partial sum is below 32·128·127 < 2^24), so the bits are those
 * of the int kernel. A matrix's last tile, when it has fewer than 32 rows, takes the
 * scalar {@link Q8Tiles#matmul}. Loaded only when the {@code jdk.incubator.vector} module is present.
 */
final class Q8TiledKernel {
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    /**
     * fp16 scales are read as bytes and reinterpreted as shorts (little-endian lanes): {@code ShortVector.fromByteArray}
     * was removed from the Vector API in JDK 20, so calling it failed with {@code NoSuchMethodError} on JDK 21 and 25.
     */
    private static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    private static final VectorSpecies<Integer> I256 = IntVector.SPECIES_256;
    private static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    /**
     * Loop-carried vectors are reached through these (exact identities: -0 + x == x, 0 + i == i): a method called on a
     * loop-carried vector is devirtualized only from a profile, which code compiled at tier 2 lacks, and then runs on
     * boxed vectors (VectorKernels, FRESH).
     */
    private static final FloatVector FRESH = FloatVector.broadcast(F512, -0.0f);
    private static final IntVector ZERO_I = IntVector.zero(I512);
    private static final int BLOCK = Q8Blocks.BLOCK;
    private static final int ROWS = Q8Tiles.ROWS;
    /** Whether this machine's int vectors are 512 bits (AVX-512). */
    static final boolean WIDE = IntVector.SPECIES_PREFERRED.length() >= 16;
    /** Whether its int vectors are at least 256 bits (AVX2); below that the scalar kernel runs. */
    static final boolean NARROW = IntVector.SPECIES_PREFERRED.length() >= 8;

    private Q8TiledKernel() {
    }

    /**
     * @param qf the quants of {@code qx} as floats (quants of {@link Q8Blocks#quantizeActivations}, |q| ≤ 127), or
     *           null; with it, AVX-512 machines run four entries per pass
     */
    static void matmul(byte[] w, int wOff, int n, int rows, int r0, int r1, short[] qx, float[] qf, float[] dx,
                       int batch, float[] out, int outOff, int outStride) {
        if (WIDE) {
            matmulWide(w, wOff, n, rows, r0, r1, qx, qf, dx, batch, out, outOff, outStride);
        } else if (NARROW) {
            matmulNarrow(w, wOff, n, rows, r0, r1, qx, dx, batch, out, outOff, outStride);
        } else {
            Q8Tiles.matmul(w, wOff, n, rows, r0, r1, qx, dx, batch, out, outOff, outStride);
        }
    }

    /**
     * Two 512-bit vectors per tile and entry; with {@code qf} (see {@link #matmul}), entries in fours. {@code r0}
     * must start a tile.
     */
    static void matmulWide(byte[] w, int wOff, int n, int rows, int r0, int r1, short[] qx, float[] qf, float[] dx,
                           int batch, float[] out, int outOff, int outStride) {
        int blocks = n / BLOCK;
        int rb = Q8Blocks.rowBytes(n);
        for (int t = r0; t < r1; t += ROWS) {
            if (t + ROWS > r1 || t + ROWS > rows) {
                Q8Tiles.matmul(w, wOff, n, rows, t, r1, qx, dx, batch, out, outOff, outStride);
                return;
            }
            int tile = wOff + t * rb;
            int b = 0;
            if (qf != null) {
                for (; b + 4 <= batch; b += 4) {
                    tileWide4(w, tile, n, blocks, qf, dx, b, out, outOff + b * outStride + t, outStride);
                }
            }
            for (; b < batch; b++) {
                tileWide(w, tile, blocks, qx, b * n, dx, b * blocks, out, outOff + b * outStride + t);
            }
        }
    }

    /*
     * HALVES: the 512-bit tile kernels call no method that takes or returns a vector (halves, halfToFloat, widen are
     * written out in their bodies, the same operations in the same order): when C2 did not inline such a call, every
     * vector crossing it was boxed (JFR of a 25M Q8_0 batch-1 run: 38 MB allocated and 4.1 ms per step instead of
     * 17 KB and 0.9 ms; VectorKernels, VEXP). Conversions and reinterpretations name their result species
     * (convertShape with F512 / I512, not convert or reinterpretAs*, which look the species up): an intrinsic needs
     * its argument's exact vector class, and where that lookup was not folded to a constant, the result and the
     * loop-carried sums fed from it took the Java fallback (JFR: 250 KB per step at FRESH.add(acc0), and the
     * 38 MB run above). Q8TilesTest runs every fp16 scale pattern through both.
     */

    /** One tile (32 rows) for one entry: int block sums. */
    private static void tileWide(byte[] w, int tile, int blocks, short[] qx, int xq, float[] dx, int xd, float[] out,
                                 int o) {
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
                // widen() written out (HALVES); fresh receivers (FRESH)
                s0 = ((IntVector) ByteVector.fromArray(B128, w, at).convertShape(VectorOperators.B2I, I512, 0)).mul(q)
                        .add(s0);
                s1 = ((IntVector) ByteVector.fromArray(B128, w, at + 16).convertShape(VectorOperators.B2I, I512, 0))
                        .mul(q).add(s1);
            }
            int sa = region + BLOCK * ROWS;
            float d = dx[xd + k];
            // halves() and halfToFloat() written out (HALVES)
            IntVector d0h = (IntVector) ByteVector.fromArray(B256, w, sa).reinterpretAsShorts()
                    .convertShape(VectorOperators.S2I, I512, 0);
            IntVector d0m = d0h.and(0x7fff);
            FloatVector d0s = ((FloatVector) d0m.lanewise(VectorOperators.LSHL, 13)
                    .convertShape(VectorOperators.REINTERPRET_I2F, F512, 0)).mul(0x1p112f);
            FloatVector d0 = ((FloatVector) ((IntVector) d0s.convertShape(VectorOperators.REINTERPRET_F2I, I512, 0))
                    .or(d0m.lanewise(VectorOperators.ASHR, 10).add(1).lanewise(VectorOperators.ASHR, 5).neg()
                            .and(0x7f800000))
                    .or(d0h.lanewise(VectorOperators.LSHL, 16).and(Integer.MIN_VALUE))
                    .convertShape(VectorOperators.REINTERPRET_I2F, F512, 0)).mul(d);
            IntVector d1h = (IntVector) ByteVector.fromArray(B256, w, sa + 32).reinterpretAsShorts()
                    .convertShape(VectorOperators.S2I, I512, 0);
            IntVector d1m = d1h.and(0x7fff);
            FloatVector d1s = ((FloatVector) d1m.lanewise(VectorOperators.LSHL, 13)
                    .convertShape(VectorOperators.REINTERPRET_I2F, F512, 0)).mul(0x1p112f);
            FloatVector d1 = ((FloatVector) ((IntVector) d1s.convertShape(VectorOperators.REINTERPRET_F2I, I512, 0))
                    .or(d1m.lanewise(VectorOperators.ASHR, 10).add(1).lanewise(VectorOperators.ASHR, 5).neg()
                            .and(0x7f800000))
                    .or(d1h.lanewise(VectorOperators.LSHL, 16).and(Integer.MIN_VALUE))
                    .convertShape(VectorOperators.REINTERPRET_I2F, F512, 0)).mul(d);
            acc0 = ((FloatVector) ZERO_I.add(s0).convertShape(VectorOperators.I2F, F512, 0)).fma(d0, acc0);
            acc1 = ((FloatVector) ZERO_I.add(s1).convertShape(VectorOperators.I2F, F512, 0)).fma(d1, acc1);
        }
        FRESH.add(acc0).intoArray(out, o);
        FRESH.add(acc1).intoArray(out, o + 16);
    }

    /**
     * One tile for entries {@code b .. b+3} (outputs at {@code o + e·outStride}): per quant column two byte loads
     * widened to floats serve four entries, whose float activation quants are broadcast; the block sums are exact
     * integers in float lanes (see the class comment), then each block does the int kernel's one fused multiply-add.
     */
    private static void tileWide4(byte[] w, int tile, int n, int blocks, float[] qf, float[] dx, int b, float[] out,
                                  int o, int outStride) {
        FloatVector c00 = FloatVector.zero(F512);
        FloatVector c01 = c00;
        FloatVector c10 = c00;
        FloatVector c11 = c00;
        FloatVector c20 = c00;
        FloatVector c21 = c00;
        FloatVector c30 = c00;
        FloatVector c31 = c00;
        int x0 = b * n;
        int x1 = x0 + n;
        int x2 = x1 + n;
        int x3 = x2 + n;
        int d0 = b * blocks;
        for (int k = 0; k < blocks; k++) {
            int region = tile + k * Q8Blocks.BLOCK_BYTES * ROWS;
            FloatVector s00 = FloatVector.zero(F512);
            FloatVector s01 = s00;
            FloatVector s10 = s00;
            FloatVector s11 = s00;
            FloatVector s20 = s00;
            FloatVector s21 = s00;
            FloatVector s30 = s00;
            FloatVector s31 = s00;
            int xa = k * BLOCK;
            for (int j = 0; j < BLOCK; j++) {
                int at = region + j * ROWS;
                FloatVector u0 = (FloatVector) ByteVector.fromArray(B128, w, at)
                        .convertShape(VectorOperators.B2F, F512, 0);
                FloatVector u1 = (FloatVector) ByteVector.fromArray(B128, w, at + 16)
                        .convertShape(VectorOperators.B2F, F512, 0);
                FloatVector v = FloatVector.broadcast(F512, qf[x0 + xa + j]);
                s00 = u0.fma(v, s00);
                s01 = u1.fma(v, s01);
                v = FloatVector.broadcast(F512, qf[x1 + xa + j]);
                s10 = u0.fma(v, s10);
                s11 = u1.fma(v, s11);
                v = FloatVector.broadcast(F512, qf[x2 + xa + j]);
                s20 = u0.fma(v, s20);
                s21 = u1.fma(v, s21);
                v = FloatVector.broadcast(F512, qf[x3 + xa + j]);
                s30 = u0.fma(v, s30);
                s31 = u1.fma(v, s31);
            }
            int sa = region + BLOCK * ROWS;
            // halves() and halfToFloat() written out (HALVES)
            IntVector h0h = (IntVector) ByteVector.fromArray(B256, w, sa).reinterpretAsShorts()
                    .convertShape(VectorOperators.S2I, I512, 0);
            IntVector h0m = h0h.and(0x7fff);
            FloatVector h0s = ((FloatVector) h0m.lanewise(VectorOperators.LSHL, 13)
                    .convertShape(VectorOperators.REINTERPRET_I2F, F512, 0)).mul(0x1p112f);
            FloatVector h0 = ((FloatVector) ((IntVector) h0s.convertShape(VectorOperators.REINTERPRET_F2I, I512, 0))
                    .or(h0m.lanewise(VectorOperators.ASHR, 10).add(1).lanewise(VectorOperators.ASHR, 5).neg()
                            .and(0x7f800000))
                    .or(h0h.lanewise(VectorOperators.LSHL, 16).and(Integer.MIN_VALUE))
                    .convertShape(VectorOperators.REINTERPRET_I2F, F512, 0));
            IntVector h1h = (IntVector) ByteVector.fromArray(B256, w, sa + 32).reinterpretAsShorts()
                    .convertShape(VectorOperators.S2I, I512, 0);
            IntVector h1m = h1h.and(0x7fff);
            FloatVector h1s = ((FloatVector) h1m.lanewise(VectorOperators.LSHL, 13)
                    .convertShape(VectorOperators.REINTERPRET_I2F, F512, 0)).mul(0x1p112f);
            FloatVector h1 = ((FloatVector) ((IntVector) h1s.convertShape(VectorOperators.REINTERPRET_F2I, I512, 0))
                    .or(h1m.lanewise(VectorOperators.ASHR, 10).add(1).lanewise(VectorOperators.ASHR, 5).neg()
                            .and(0x7f800000))
                    .or(h1h.lanewise(VectorOperators.LSHL, 16).and(Integer.MIN_VALUE))
                    .convertShape(VectorOperators.REINTERPRET_I2F, F512, 0));
            int dk = d0 + k;
            // the sums are loop-carried: reached through a fresh receiver (-0 + s == s bit for bit)
            c00 = FRESH.add(s00).fma(h0.mul(dx[dk]), c00);
            c01 = FRESH.add(s01).fma(h1.mul(dx[dk]), c01);
            c10 = FRESH.add(s10).fma(h0.mul(dx[dk + blocks]), c10);
            c11 = FRESH.add(s11).fma(h1.mul(dx[dk + blocks]), c11);
            c20 = FRESH.add(s20).fma(h0.mul(dx[dk + 2 * blocks]), c20);
            c21 = FRESH.add(s21).fma(h1.mul(dx[dk + 2 * blocks]), c21);
            c30 = FRESH.add(s30).fma(h0.mul(dx[dk + 3 * blocks]), c30);
            c31 = FRESH.add(s31).fma(h1.mul(dx[dk + 3 * blocks]), c31);
        }
        FRESH.add(c00).intoArray(out, o);
        FRESH.add(c01).intoArray(out, o + 16);
        o += outStride;
        FRESH.add(c10).intoArray(out, o);
        FRESH.add(c11).intoArray(out, o + 16);
        o += outStride;
        FRESH.add(c20).intoArray(out, o);
        FRESH.add(c21).intoArray(out, o + 16);
        o += outStride;
        FRESH.add(c30).intoArray(out, o);
        FRESH.add(c31).intoArray(out, o + 16);
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
                    acc0 = toFloats(s0).fma(halfToFloat(halves(w, sa, B128, I256)).mul(d), acc0);
                    acc1 = toFloats(s1).fma(halfToFloat(halves(w, sa + 16, B128, I256)).mul(d), acc1);
                    acc2 = toFloats(s2).fma(halfToFloat(halves(w, sa + 32, B128, I256)).mul(d), acc2);
                    acc3 = toFloats(s3).fma(halfToFloat(halves(w, sa + 48, B128, I256)).mul(d), acc3);
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
    private static IntVector halves(byte[] w, int at, VectorSpecies<Byte> from, VectorSpecies<Integer> to) {
        return (IntVector) ByteVector.fromArray(from, w, at).reinterpretAsShorts()
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
