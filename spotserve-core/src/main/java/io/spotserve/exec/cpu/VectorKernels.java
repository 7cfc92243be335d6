package io.spotserve.exec.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels: FMA over {@link FloatVector#SPECIES_PREFERRED} lanes. The packed matmul is register-tiled
 * four row vectors × four batch entries over column-major blocks ({@link PackedRows}), so each loaded weight
 * vector feeds four sequences (this reuse is what makes batched decode cheaper per token than batch 1) and
 * sixteen independent chains hide the FMA latency. Summation order differs from run.c, within float rounding.
 * Loaded only reflectively by {@link Kernels#create}.
 *
 * <p>JDK 17 note, measured: a Vector API value passed to or returned from a call that C2 does not inline is
 * boxed (an allocation per operation, 10-30× slower); keep kernels small enough to be compiled whole.
 */
final class VectorKernels extends Kernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Half-width vectors (8 floats with AVX-512): one attention head of {@code L / 2} floats per vector. */
    private static final VectorSpecies<Float> H = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 128
            ? VectorSpecies.of(float.class, VectorShape.forBitSize(FloatVector.SPECIES_PREFERRED.vectorBitSize() / 2))
            : FloatVector.SPECIES_PREFERRED;
    /** Weights per row block of the packed matmul (128 KiB: L2-resident while every entry quad passes over it). */
    private static final int BLOCK_FLOATS = 32 * 1024;

    @Override
    String name() {
        return "vector";
    }

    /**
     * Plain rows (matrices below {@link StageShard#PACK_MIN_COLUMNS} columns, and the classifier): one dot
     * product per (row, entry). A 4-row × 4-entry register tile over plain rows was dropped: with its sixteen
     * lane sums inlined, C2 no longer inlined the Vector API calls of its loop and boxed every vector (12 MB
     * allocated per stories260K batch-8 step, measured with {@code -prof gc}); these rows are small enough to
     * stay in L1 for every entry.
     */
    @Override
    void matmul(float[] w, int wOff, int n, int r0, int r1, float[] x, int xStride, int batch,
                float[] out, int outOff, int outStride) {
        for (int r = r0; r < r1; r++) {
            int row = wOff + r * n;
            for (int b = 0; b < batch; b++) {
                out[outOff + b * outStride + r] = dot1(w, row, x, b * xStride, n);
            }
        }
    }

    @Override
    void matmulQ8Tiled(byte[] w, int wOff, int n, int rows, int r0, int r1, short[] qx, float[] qf, float[] dx,
                       int batch, float[] out, int outOff, int outStride) {
        Q8TiledKernel.matmul(w, wOff, n, rows, r0, r1, qx, qf, dx, batch, out, outOff, outStride);
    }

    @Override
    void quantizeQ8(float[] x, int xStride, int batch, int n, short[] qx, float[] dx) {
        Q8VectorQuantizer.quantizeActivations(x, xStride, batch, n, qx, dx);
    }

    @Override
    int packLanes() {
        return L;
    }

    /**
     * Over {@link PackedRows} (column-major blocks of 4·L rows): four row vectors × four batch entries per pass
     * (16 accumulators; per column one load of each weight vector serves four entries), or four row vectors ×
     * one entry for the entries left over (batch 1 above all). Each (row, entry) result is the fused
     * multiply-add chain {@code acc = fma(w[r][j], x[j], acc)} over j = 0, 1, ..., n-1 from 0 in every tile shape,
     * so it does not depend on the batch. Rows below a block boundary use {@link #dot1}, whatever the batch.
     */
    @Override
    void matmulPacked(float[] w, int wOff, int n, int rows, int r0, int r1, float[] x, int xStride, int batch,
                      float[] out, int outOff, int outStride) {
        int g = 4 * L;
        int full = Math.min(r1, rows - rows % g);
        if (r0 < full && r0 % g != 0) {
            throw new IllegalArgumentException("packed matmul must start on a block of " + g + " rows, not " + r0);
        }
        int r = r0;
        for (; r < full; r += g) {
            int base = wOff + r * n;
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                block4x4(w, base, n, x, b * xStride, xStride, out, outOff + b * outStride + r, outStride);
            }
            for (; b < batch; b++) {
                block4x1(w, base, n, x, b * xStride, out, outOff + b * outStride + r);
            }
        }
        r = Math.max(r0, full);
        for (; r < r1; r++) {
            for (int b = 0; b < batch; b++) {
                out[outOff + b * outStride + r] = dot1(w, wOff + r * n, x, b * xStride, n);
            }
        }
    }

    private static void block4x1(float[] w, int base, int n, float[] x, int x0, float[] out, int o) {
        FloatVector a0 = FloatVector.zero(S);
        FloatVector a1 = FloatVector.zero(S);
        FloatVector a2 = FloatVector.zero(S);
        FloatVector a3 = FloatVector.zero(S);
        int j = 0;
        int p = base;
        // two columns per pass, written out as in block4x4: JDK 25's C2 unrolls the one-column loop itself, and that
        // unrolled loop streamed L3-resident weights at 0.6x the rate of JDK 17's (the 25M decode at half speed;
        // -XX:LoopUnrollLimit=1 restored it); this form runs at the same rate on both. Same FMA order, same bits
        for (; j + 1 < n; j += 2, p += 8 * L) {
            FloatVector v = FloatVector.broadcast(S, x[x0 + j]);
            a0 = FloatVector.fromArray(S, w, p).fma(v, a0);
            a1 = FloatVector.fromArray(S, w, p + L).fma(v, a1);
            a2 = FloatVector.fromArray(S, w, p + 2 * L).fma(v, a2);
            a3 = FloatVector.fromArray(S, w, p + 3 * L).fma(v, a3);
            FloatVector u = FloatVector.broadcast(S, x[x0 + j + 1]);
            a0 = FloatVector.fromArray(S, w, p + 4 * L).fma(u, a0);
            a1 = FloatVector.fromArray(S, w, p + 5 * L).fma(u, a1);
            a2 = FloatVector.fromArray(S, w, p + 6 * L).fma(u, a2);
            a3 = FloatVector.fromArray(S, w, p + 7 * L).fma(u, a3);
        }
        for (; j < n; j++, p += 4 * L) {
            FloatVector v = FloatVector.broadcast(S, x[x0 + j]);
            a0 = FloatVector.fromArray(S, w, p).fma(v, a0);
            a1 = FloatVector.fromArray(S, w, p + L).fma(v, a1);
            a2 = FloatVector.fromArray(S, w, p + 2 * L).fma(v, a2);
            a3 = FloatVector.fromArray(S, w, p + 3 * L).fma(v, a3);
        }
        // FRESH.add: the accumulators are loop-carried (see FRESH); -0 + a == a bit for bit
        FRESH.add(a0).intoArray(out, o);
        FRESH.add(a1).intoArray(out, o + L);
        FRESH.add(a2).intoArray(out, o + 2 * L);
        FRESH.add(a3).intoArray(out, o + 3 * L);
    }

    private static void block4x4(float[] w, int base, int n, float[] x, int x0, int xStride, float[] out, int o,
                                 int outStride) {
        int x1 = x0 + xStride;
        int x2 = x1 + xStride;
        int x3 = x2 + xStride;
        FloatVector a00 = FloatVector.zero(S);
        FloatVector a01 = FloatVector.zero(S);
        FloatVector a02 = FloatVector.zero(S);
        FloatVector a03 = FloatVector.zero(S);
        FloatVector a10 = FloatVector.zero(S);
        FloatVector a11 = FloatVector.zero(S);
        FloatVector a12 = FloatVector.zero(S);
        FloatVector a13 = FloatVector.zero(S);
        FloatVector a20 = FloatVector.zero(S);
        FloatVector a21 = FloatVector.zero(S);
        FloatVector a22 = FloatVector.zero(S);
        FloatVector a23 = FloatVector.zero(S);
        FloatVector a30 = FloatVector.zero(S);
        FloatVector a31 = FloatVector.zero(S);
        FloatVector a32 = FloatVector.zero(S);
        FloatVector a33 = FloatVector.zero(S);
        int j = 0;
        int p = base;
        // two columns per pass: without this C2 does not unroll the loop (its body is far above LoopUnrollLimit),
        // and the loop overhead was ~15 % of the batched step; the per-lane FMA order is unchanged (j ascending)
        for (; j + 2 <= n; j += 2, p += 8 * L) {
            FloatVector v0 = FloatVector.broadcast(S, x[x0 + j]);
            FloatVector v1 = FloatVector.broadcast(S, x[x1 + j]);
            FloatVector v2 = FloatVector.broadcast(S, x[x2 + j]);
            FloatVector v3 = FloatVector.broadcast(S, x[x3 + j]);
            FloatVector u = FloatVector.fromArray(S, w, p);
            a00 = u.fma(v0, a00);
            a01 = u.fma(v1, a01);
            a02 = u.fma(v2, a02);
            a03 = u.fma(v3, a03);
            u = FloatVector.fromArray(S, w, p + L);
            a10 = u.fma(v0, a10);
            a11 = u.fma(v1, a11);
            a12 = u.fma(v2, a12);
            a13 = u.fma(v3, a13);
            u = FloatVector.fromArray(S, w, p + 2 * L);
            a20 = u.fma(v0, a20);
            a21 = u.fma(v1, a21);
            a22 = u.fma(v2, a22);
            a23 = u.fma(v3, a23);
            u = FloatVector.fromArray(S, w, p + 3 * L);
            a30 = u.fma(v0, a30);
            a31 = u.fma(v1, a31);
            a32 = u.fma(v2, a32);
            a33 = u.fma(v3, a33);
            v0 = FloatVector.broadcast(S, x[x0 + j + 1]);
            v1 = FloatVector.broadcast(S, x[x1 + j + 1]);
            v2 = FloatVector.broadcast(S, x[x2 + j + 1]);
            v3 = FloatVector.broadcast(S, x[x3 + j + 1]);
            u = FloatVector.fromArray(S, w, p + 4 * L);
            a00 = u.fma(v0, a00);
            a01 = u.fma(v1, a01);
            a02 = u.fma(v2, a02);
            a03 = u.fma(v3, a03);
            u = FloatVector.fromArray(S, w, p + 5 * L);
            a10 = u.fma(v0, a10);
            a11 = u.fma(v1, a11);
            a12 = u.fma(v2, a12);
            a13 = u.fma(v3, a13);
            u = FloatVector.fromArray(S, w, p + 6 * L);
            a20 = u.fma(v0, a20);
            a21 = u.fma(v1, a21);
            a22 = u.fma(v2, a22);
            a23 = u.fma(v3, a23);
            u = FloatVector.fromArray(S, w, p + 7 * L);
            a30 = u.fma(v0, a30);
            a31 = u.fma(v1, a31);
            a32 = u.fma(v2, a32);
            a33 = u.fma(v3, a33);
        }
        for (; j < n; j++, p += 4 * L) {
            FloatVector v0 = FloatVector.broadcast(S, x[x0 + j]);
            FloatVector v1 = FloatVector.broadcast(S, x[x1 + j]);
            FloatVector v2 = FloatVector.broadcast(S, x[x2 + j]);
            FloatVector v3 = FloatVector.broadcast(S, x[x3 + j]);
            FloatVector u = FloatVector.fromArray(S, w, p);
            a00 = u.fma(v0, a00);
            a01 = u.fma(v1, a01);
            a02 = u.fma(v2, a02);
            a03 = u.fma(v3, a03);
            u = FloatVector.fromArray(S, w, p + L);
            a10 = u.fma(v0, a10);
            a11 = u.fma(v1, a11);
            a12 = u.fma(v2, a12);
            a13 = u.fma(v3, a13);
            u = FloatVector.fromArray(S, w, p + 2 * L);
            a20 = u.fma(v0, a20);
            a21 = u.fma(v1, a21);
            a22 = u.fma(v2, a22);
            a23 = u.fma(v3, a23);
            u = FloatVector.fromArray(S, w, p + 3 * L);
            a30 = u.fma(v0, a30);
            a31 = u.fma(v1, a31);
            a32 = u.fma(v2, a32);
            a33 = u.fma(v3, a33);
        }
        // the accumulators are loop-carried: stored through a fresh receiver (see FRESH; -0 + a == a bit for bit)
        FRESH.add(a00).intoArray(out, o);
        FRESH.add(a10).intoArray(out, o + L);
        FRESH.add(a20).intoArray(out, o + 2 * L);
        FRESH.add(a30).intoArray(out, o + 3 * L);
        o += outStride;
        FRESH.add(a01).intoArray(out, o);
        FRESH.add(a11).intoArray(out, o + L);
        FRESH.add(a21).intoArray(out, o + 2 * L);
        FRESH.add(a31).intoArray(out, o + 3 * L);
        o += outStride;
        FRESH.add(a02).intoArray(out, o);
        FRESH.add(a12).intoArray(out, o + L);
        FRESH.add(a22).intoArray(out, o + 2 * L);
        FRESH.add(a32).intoArray(out, o + 3 * L);
        o += outStride;
        FRESH.add(a03).intoArray(out, o);
        FRESH.add(a13).intoArray(out, o + L);
        FRESH.add(a23).intoArray(out, o + 2 * L);
        FRESH.add(a33).intoArray(out, o + 3 * L);
    }

    private static float dot1(float[] w, int w0, float[] x, int x0, int n) {
        FloatVector a = FloatVector.zero(S);
        int bound = S.loopBound(n);
        for (int j = 0; j < bound; j += L) {
            a = FloatVector.fromArray(S, w, w0 + j).fma(FloatVector.fromArray(S, x, x0 + j), a);
        }
        float s = FRESH.add(a).reduceLanes(VectorOperators.ADD); // a is loop-carried: see FRESH
        for (int j = bound; j < n; j++) {
            s += w[w0 + j] * x[x0 + j];
        }
        return s;
    }



    @Override
    float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        int j = 0;
        float sum = 0f;
        if (n >= 4 * L) {
            FloatVector s0 = FloatVector.zero(S);
            FloatVector s1 = FloatVector.zero(S);
            FloatVector s2 = FloatVector.zero(S);
            FloatVector s3 = FloatVector.zero(S);
            int bound4 = n - n % (4 * L);
            for (; j < bound4; j += 4 * L) {
                s0 = FloatVector.fromArray(S, a, aOff + j).fma(FloatVector.fromArray(S, b, bOff + j), s0);
                s1 = FloatVector.fromArray(S, a, aOff + j + L).fma(FloatVector.fromArray(S, b, bOff + j + L), s1);
                s2 = FloatVector.fromArray(S, a, aOff + j + 2 * L).fma(FloatVector.fromArray(S, b, bOff + j + 2 * L), s2);
                s3 = FloatVector.fromArray(S, a, aOff + j + 3 * L).fma(FloatVector.fromArray(S, b, bOff + j + 3 * L), s3);
            }
            sum = FRESH.add(s0).add(s1).add(FRESH.add(s2).add(s3)).reduceLanes(VectorOperators.ADD); // see FRESH
        }
        if (n - j >= L) {
            FloatVector s = FloatVector.zero(S);
            int bound = j + S.loopBound(n - j);
            for (; j < bound; j += L) {
                s = FloatVector.fromArray(S, a, aOff + j).fma(FloatVector.fromArray(S, b, bOff + j), s);
            }
            sum += FRESH.add(s).reduceLanes(VectorOperators.ADD);
        }
        for (; j < n; j++) {
            sum += a[aOff + j] * b[bOff + j];
        }
        return sum;
    }

    @Override
    void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        int j = 0;
        int bound = S.loopBound(n);
        FloatVector av = FloatVector.broadcast(S, alpha);
        for (; j < bound; j += L) {
            FloatVector.fromArray(S, x, xOff + j).fma(av, FloatVector.fromArray(S, y, yOff + j)).intoArray(y, yOff + j);
        }
        for (; j < n; j++) {
            y[yOff + j] += alpha * x[xOff + j];
        }
    }

    // ------------------------------------------------------------------ exp, softmax, SwiGLU

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    /** 1.5 · 2^23: adding it rounds a float of magnitude below 2^22 to an integer held in the low mantissa bits. */
    private static final float ROUND = 12582912f;
    private static final int ROUND_BITS = 0x4B400000;
    private static final float EXP_MIN = -87.3f;
    private static final float EXP_MAX = 88.3f;
    private static final float P5 = 1.9875691500e-4f;
    private static final float P4 = 1.3981999507e-3f;
    private static final float P3 = 8.3334519073e-3f;
    private static final float P2 = 4.1665795894e-2f;
    private static final float P1 = 1.6666665459e-1f;
    private static final float P0 = 5.0000001201e-1f;

    /*
     * e^x in vector lanes (written out in expInPlace's and swiglu's loops, see VEXP): x clamped to [-87.3, 88.3],
     * x = n·ln 2 + r with |r| ≤ ln 2 / 2 (Cody-Waite), e^r by a degree-7 polynomial (the Cephes coefficients,
     * about 1 ulp), times 2^n built from the exponent bits. Only IEEE add, multiply and fused multiply-add, so
     * every JIT tier gives the same bits, and exp(float) is its lane-for-lane twin (tails of a loop give what a
     * full vector would). Replaces Math.exp (about 15 ns a call here) in the softmax and the SwiGLU gate.
     *
     * VEXP: a method taking or returning a vector is a lottery on JDK 17: when C2 does not inline it (a call site
     * without profile counts, e.g. compiled at tier 2 on a loaded machine, gets "already compiled into a medium
     * method"), the vector is boxed on every call (-XX:+PrintInlining of softmaxVector; JFR: ~0.75 MB allocated
     * per 25M batch-8 step in exp and expInPlace). So the two loops that exponentiate carry the same operations in
     * their own bodies; KernelsTest checks both against the scalar twin bit for bit.
     */

    /*
     * exp's constants as vectors (static finals: constants of an exact class to C2). The scalar-argument forms
     * (x.mul(LOG2E), ...) broadcast through an instance method and fell back to Java in some compilations (JFR:
     * lanewiseTemplate under sub/mul of the softmax). Same values, same bits.
     */
    private static final FloatVector V_EXP_MIN = FloatVector.broadcast(S, EXP_MIN);
    private static final FloatVector V_EXP_MAX = FloatVector.broadcast(S, EXP_MAX);
    private static final FloatVector V_LOG2E = FloatVector.broadcast(S, LOG2E);
    private static final FloatVector V_ROUND = FloatVector.broadcast(S, ROUND);
    private static final FloatVector V_M_LN2_HI = FloatVector.broadcast(S, -LN2_HI);
    private static final FloatVector V_M_LN2_LO = FloatVector.broadcast(S, -LN2_LO);
    private static final FloatVector V_P5 = FloatVector.broadcast(S, P5);
    private static final FloatVector V_P4 = FloatVector.broadcast(S, P4);
    private static final FloatVector V_P3 = FloatVector.broadcast(S, P3);
    private static final FloatVector V_P2 = FloatVector.broadcast(S, P2);
    private static final FloatVector V_P1 = FloatVector.broadcast(S, P1);
    private static final FloatVector V_P0 = FloatVector.broadcast(S, P0);
    private static final FloatVector V_ONE = FloatVector.broadcast(S, 1f);
    private static final IntVector V_EXP_BIAS = IntVector.broadcast(S.withLanes(int.class), 127 - ROUND_BITS);

    /** The scalar twin of the vector e^x (VEXP): the same operations in the same order, the same bits. */
    static float exp(float x) {
        x = Math.min(Math.max(x, EXP_MIN), EXP_MAX);
        float t = x * LOG2E + ROUND;
        float n = t - ROUND;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, P5, P4);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P1);
        p = Math.fma(p, r, P0);
        float z = r * r;
        float y = Math.fma(p, z, r) + 1f;
        float scale = Float.intBitsToFloat((Float.floatToRawIntBits(t) + (127 - ROUND_BITS)) << 23);
        return y * scale;
    }

    /**
     * run.c's softmax (subtract the max, exponentiate, divide by the sum) with the vector e^x (VEXP); the sum
     * runs over vector lanes, then the scalar tail, so it depends only on {@code size}.
     *
     * <p>Each vector loop is its own method taking only arrays and scalars. Inlined whole into the attention
     * kernels, C2 reached {@code NodeCountInliningCutoff} before {@code exp} and the division, which then ran out of
     * line on boxed vectors (≈ 190 KB allocated per 25M decode step, ≈ 73 KB per stories260K step; JFR, and
     * {@code -XX:+PrintInlining} shows the cutoff). A loop method the budget no longer covers is now a plain call.
     */
    static void softmaxVector(float[] x, int size) {
        int bound = S.loopBound(size);
        float max = x[0];
        if (bound > 0) {
            max = Math.max(max, maxLanes(x, bound));
        }
        for (int j = bound; j < size; j++) {
            max = Math.max(max, x[j]);
        }
        float sum = bound > 0 ? expInPlace(x, bound, max) : 0f;
        for (int j = bound; j < size; j++) {
            x[j] = exp(x[j] - max);
            sum += x[j];
        }
        divide(x, bound, sum);
        for (int j = bound; j < size; j++) {
            x[j] /= sum;
        }
    }

    /** The largest of {@code x[0, bound)} ({@code bound} a positive multiple of L). */
    private static float maxLanes(float[] x, int bound) {
        FloatVector m = FloatVector.fromArray(S, x, 0);
        for (int j = L; j < bound; j += L) {
            m = FloatVector.fromArray(S, x, j).max(m); // fresh receiver: see FRESH
        }
        return FRESH_MAX.max(m).reduceLanes(VectorOperators.MAX);
    }

    /** {@code x[j] = e^(x[j] − max)} over {@code [0, bound)}; returns their sum over vector lanes. */
    private static float expInPlace(float[] x, int bound, float max) {
        FloatVector acc = FloatVector.zero(S);
        FloatVector mv = FloatVector.broadcast(S, max);
        for (int j = 0; j < bound; j += L) {
            FloatVector y = FloatVector.fromArray(S, x, j).sub(mv).max(V_EXP_MIN).min(V_EXP_MAX); // VEXP
            FloatVector t = y.mul(V_LOG2E).add(V_ROUND);
            FloatVector n = t.sub(V_ROUND);
            FloatVector r = n.fma(V_M_LN2_LO, n.fma(V_M_LN2_HI, y));
            FloatVector p = r.fma(V_P5, V_P4).fma(r, V_P3).fma(r, V_P2).fma(r, V_P1).fma(r, V_P0);
            FloatVector e = p.fma(r.mul(r), r).add(V_ONE).mul(t.reinterpretAsInts().add(V_EXP_BIAS)
                    .lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats());
            e.intoArray(x, j);
            acc = e.add(acc); // fresh receiver (float addition commutes bit for bit): see FRESH
        }
        return FRESH.add(acc).reduceLanes(VectorOperators.ADD);
    }

    /*
     * FRESH: a loop-carried vector is typed FloatVector (not Float512Vector) when C2 parses the loop, so a method
     * called on it is a virtual call that C2 devirtualizes only from a receiver-type profile; code compiled at tier 2
     * (what tiered compilation picks when the C2 queue is long, i.e. on a loaded machine) collects none, and the call
     * then runs the Java fallback on boxed vectors (JFR: maxLanes' max and fromArray, 0.8-1.5 MB per 25M batch-8
     * step). So loop-carried values are passed as arguments to a method of a fresh vector instead, and reduced
     * through an exact identity on a fresh vector: -0 + x == x and max(-inf, x) == x for every float x.
     */
    private static final FloatVector FRESH = FloatVector.broadcast(S, -0.0f);
    private static final FloatVector FRESH_MAX = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
    private static final FloatVector FRESH_HALF = FloatVector.broadcast(H, -0.0f);

    /** {@code x[j] /= sum} over {@code [0, bound)}. */
    private static void divide(float[] x, int bound, float sum) {
        for (int j = 0; j < bound; j += L) {
            FloatVector.fromArray(S, x, j).div(sum).intoArray(x, j);
        }
    }

    /**
     * run.c's gate {@code v = w1·x; v *= 1 / (1 + e^-v); v *= w3·x}, L units per step with
     * the vector e^x (VEXP); the tail uses the scalar twin, so a unit's value does not depend on where in a
     * block it sits.
     */
    @Override
    void swiglu(float[] h, int gateOff, int upOff, int count, float[] hb, int o) {
        int i = 0;
        int bound = S.loopBound(count);
        FloatVector one = FloatVector.broadcast(S, 1f);
        for (; i < bound; i += L) {
            FloatVector v = FloatVector.fromArray(S, h, gateOff + i);
            FloatVector y = v.neg().max(V_EXP_MIN).min(V_EXP_MAX); // e^-v written out: VEXP
            FloatVector t = y.mul(V_LOG2E).add(V_ROUND);
            FloatVector n = t.sub(V_ROUND);
            FloatVector r = n.fma(V_M_LN2_LO, n.fma(V_M_LN2_HI, y));
            FloatVector p = r.fma(V_P5, V_P4).fma(r, V_P3).fma(r, V_P2).fma(r, V_P1).fma(r, V_P0);
            FloatVector e = p.fma(r.mul(r), r).add(V_ONE).mul(t.reinterpretAsInts().add(V_EXP_BIAS)
                    .lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats());
            v = v.mul(one.div(one.add(e)));
            v.mul(FloatVector.fromArray(S, h, upOff + i)).intoArray(hb, o + i);
        }
        for (; i < count; i++) {
            float v = h[gateOff + i];
            v *= (1.0f / (1.0f + exp(-v)));
            v *= h[upOff + i];
            hb[o + i] = v;
        }
    }

    /**
     * Heads of one, two, four or eight vectors (64 floats with AVX-512; eight: Llama's 128 with AVX-512, 64 with AVX2)
     * keep q and the output in registers across all positions; other head sizes use the generic dot/axpy loop.
     */
    @Override
    void attendHead(float[] q, int qOff, float[] cache, int kBase, int vBase, int stride, int len, int hs,
                    float scale, float[] scores, float[] out, int outOff) {
        if (hs == 8 * L) {
            attend8(q, qOff, cache, kBase, vBase, stride, len, scale, scores, out, outOff);
        } else if (hs == 16 * L) {
            attend16(q, qOff, cache, kBase, vBase, stride, len, scale, scores, out, outOff);
        } else if (hs == 4 * L) {
            attend4(q, qOff, cache, kBase, vBase, stride, len, scale, scores, out, outOff);
        } else if (hs == 2 * L) {
            attend2(q, qOff, cache, kBase, vBase, stride, len, scale, scores, out, outOff);
        } else if (hs == L) {
            attend1(q, qOff, cache, kBase, vBase, stride, len, scale, scores, out, outOff);
        } else if (hs == H.length() && H.length() < L) {
            attendHalf(q, qOff, cache, kBase, vBase, stride, len, scale, scores, out, outOff);
        } else {
            attendAnySize(q, qOff, cache, kBase, vBase, stride, len, hs, scale, scores, out, outOff);
        }
    }

    /**
     * Any head size: the generic loop of {@link Kernels#attendHead} ({@link #dot} per position, then {@link #axpy} per
     * position into {@code out}) with these kernels' dot, axpy and softmax.
     */
    void attendAnySize(float[] q, int qOff, float[] cache, int kBase, int vBase, int stride, int len, int hs,
                       float scale, float[] scores, float[] out, int outOff) {
        super.attendHead(q, qOff, cache, kBase, vBase, stride, len, hs, scale, scores, out, outOff);
    }

    @Override
    void softmaxScores(float[] x, int size) {
        softmaxVector(x, size);
    }

    /**
     * A head of eight vectors: {@link #attendAnySize}'s arithmetic in its order, bit for bit ({@link #dot}'s four
     * accumulators over columns j and j + 4L, summed as (s0 + s1) + (s2 + s3); {@link #axpy}'s fused multiply-adds
     * from zero), with q and the output in registers instead of a call and a store per position and vector: 1.6-1.9x
     * faster at 128 and 1,000 positions (heads of 128 with AVX-512, of 64 with 256-bit vectors).
     */
    private static void attend8(float[] q, int qOff, float[] cache, int kBase, int vBase, int stride, int len,
                                float scale, float[] scores, float[] out, int outOff) {
        // three calls, not one method: with both loops and the softmax in one compile unit C2 stopped inlining the
        // Vector API calls (JMH -prof gc: 12.6 MB allocated per token's attention, 2.3x slower than the generic loop)
        scores8(q, qOff, cache, kBase, stride, len, scale, scores);
        softmaxVector(scores, len);
        values8(cache, vBase, stride, len, scores, out, outOff);
    }

    /**
     * A head of sixteen vectors (128 floats with 256-bit vectors: Llama 2 / 3 on AVX2): {@link #attendAnySize}'s
     * arithmetic in its order, bit for bit, as {@link #attend8}; q is read from memory at each position (sixteen q
     * vectors would take every register AVX2 has), and the values take two passes of eight accumulators.
     */
    private static void attend16(float[] q, int qOff, float[] cache, int kBase, int vBase, int stride, int len,
                                 float scale, float[] scores, float[] out, int outOff) {
        scores16(q, qOff, cache, kBase, stride, len, scale, scores);
        softmaxVector(scores, len);
        values8(cache, vBase, stride, len, scores, out, outOff);
        values8(cache, vBase + 8 * L, stride, len, scores, out, outOff + 8 * L);
    }

    /** {@code scores[t] = (q · k_t) / scale} for a head of sixteen vectors, as {@link #dot} sums it. */
    private static void scores16(float[] q, int qOff, float[] cache, int kBase, int stride, int len, float scale,
                                 float[] scores) {
        FloatVector zero = FloatVector.zero(S);
        for (int t = 0, k = kBase; t < len; t++, k += stride) {
            FloatVector s0 = FloatVector.fromArray(S, q, qOff).fma(FloatVector.fromArray(S, cache, k), zero);
            FloatVector s1 = FloatVector.fromArray(S, q, qOff + L).fma(FloatVector.fromArray(S, cache, k + L), zero);
            FloatVector s2 = FloatVector.fromArray(S, q, qOff + 2 * L)
                    .fma(FloatVector.fromArray(S, cache, k + 2 * L), zero);
            FloatVector s3 = FloatVector.fromArray(S, q, qOff + 3 * L)
                    .fma(FloatVector.fromArray(S, cache, k + 3 * L), zero);
            for (int j = 4 * L; j < 16 * L; j += 4 * L) {
                s0 = FloatVector.fromArray(S, q, qOff + j).fma(FloatVector.fromArray(S, cache, k + j), s0);
                s1 = FloatVector.fromArray(S, q, qOff + j + L).fma(FloatVector.fromArray(S, cache, k + j + L), s1);
                s2 = FloatVector.fromArray(S, q, qOff + j + 2 * L)
                        .fma(FloatVector.fromArray(S, cache, k + j + 2 * L), s2);
                s3 = FloatVector.fromArray(S, q, qOff + j + 3 * L)
                        .fma(FloatVector.fromArray(S, cache, k + j + 3 * L), s3);
            }
            scores[t] = FRESH.add(s0).add(s1).add(FRESH.add(s2).add(s3)).reduceLanes(VectorOperators.ADD) / scale;
        }
    }

    /** {@code scores[t] = (q · k_t) / scale} for a head of eight vectors, as {@link #dot} sums it. */
    private static void scores8(float[] q, int qOff, float[] cache, int kBase, int stride, int len, float scale,
                                float[] scores) {
        FloatVector q0 = FloatVector.fromArray(S, q, qOff);
        FloatVector q1 = FloatVector.fromArray(S, q, qOff + L);
        FloatVector q2 = FloatVector.fromArray(S, q, qOff + 2 * L);
        FloatVector q3 = FloatVector.fromArray(S, q, qOff + 3 * L);
        FloatVector q4 = FloatVector.fromArray(S, q, qOff + 4 * L);
        FloatVector q5 = FloatVector.fromArray(S, q, qOff + 5 * L);
        FloatVector q6 = FloatVector.fromArray(S, q, qOff + 6 * L);
        FloatVector q7 = FloatVector.fromArray(S, q, qOff + 7 * L);
        FloatVector zero = FloatVector.zero(S);
        for (int t = 0, k = kBase; t < len; t++, k += stride) {
            FloatVector s0 = q0.fma(FloatVector.fromArray(S, cache, k), zero);
            FloatVector s1 = q1.fma(FloatVector.fromArray(S, cache, k + L), zero);
            FloatVector s2 = q2.fma(FloatVector.fromArray(S, cache, k + 2 * L), zero);
            FloatVector s3 = q3.fma(FloatVector.fromArray(S, cache, k + 3 * L), zero);
            s0 = q4.fma(FloatVector.fromArray(S, cache, k + 4 * L), s0);
            s1 = q5.fma(FloatVector.fromArray(S, cache, k + 5 * L), s1);
            s2 = q6.fma(FloatVector.fromArray(S, cache, k + 6 * L), s2);
            s3 = q7.fma(FloatVector.fromArray(S, cache, k + 7 * L), s3);
            scores[t] = FRESH.add(s0).add(s1).add(FRESH.add(s2).add(s3)).reduceLanes(VectorOperators.ADD) / scale;
        }
    }

    /** {@code out[outOff ..+8L) = Σ_t scores[t] · v_t}, as {@link #axpy} accumulates it from zero. */
    private static void values8(float[] cache, int vBase, int stride, int len, float[] scores, float[] out,
                                int outOff) {
        FloatVector o0 = FloatVector.zero(S);
        FloatVector o1 = o0;
        FloatVector o2 = o0;
        FloatVector o3 = o0;
        FloatVector o4 = o0;
        FloatVector o5 = o0;
        FloatVector o6 = o0;
        FloatVector o7 = o0;
        for (int t = 0, v = vBase; t < len; t++, v += stride) {
            FloatVector w = FloatVector.broadcast(S, scores[t]);
            o0 = FloatVector.fromArray(S, cache, v).fma(w, o0);
            o1 = FloatVector.fromArray(S, cache, v + L).fma(w, o1);
            o2 = FloatVector.fromArray(S, cache, v + 2 * L).fma(w, o2);
            o3 = FloatVector.fromArray(S, cache, v + 3 * L).fma(w, o3);
            o4 = FloatVector.fromArray(S, cache, v + 4 * L).fma(w, o4);
            o5 = FloatVector.fromArray(S, cache, v + 5 * L).fma(w, o5);
            o6 = FloatVector.fromArray(S, cache, v + 6 * L).fma(w, o6);
            o7 = FloatVector.fromArray(S, cache, v + 7 * L).fma(w, o7);
        }
        FRESH.add(o0).intoArray(out, outOff); // loop-carried: see FRESH
        FRESH.add(o1).intoArray(out, outOff + L);
        FRESH.add(o2).intoArray(out, outOff + 2 * L);
        FRESH.add(o3).intoArray(out, outOff + 3 * L);
        FRESH.add(o4).intoArray(out, outOff + 4 * L);
        FRESH.add(o5).intoArray(out, outOff + 5 * L);
        FRESH.add(o6).intoArray(out, outOff + 6 * L);
        FRESH.add(o7).intoArray(out, outOff + 7 * L);
    }

    private static void attend1(float[] q, int qOff, float[] cache, int kBase, int vBase, int stride, int len,
                                float scale, float[] scores, float[] out, int outOff) {
        FloatVector q0 = FloatVector.fromArray(S, q, qOff);
        for (int t = 0, k = kBase; t < len; t++, k += stride) {
            scores[t] = q0.mul(FloatVector.fromArray(S, cache, k)).reduceLanes(VectorOperators.ADD) / scale;
        }
        softmaxVector(scores, len);
        // two accumulators (even and odd positions): half the FMA latency chain
        FloatVector o0 = FloatVector.zero(S);
        FloatVector o1 = FloatVector.zero(S);
        int t = 0;
        for (int v = vBase; t + 2 <= len; t += 2, v += 2 * stride) {
            o0 = FloatVector.fromArray(S, cache, v).fma(FloatVector.broadcast(S, scores[t]), o0);
            o1 = FloatVector.fromArray(S, cache, v + stride).fma(FloatVector.broadcast(S, scores[t + 1]), o1);
        }
        if (t < len) {
            o0 = FloatVector.fromArray(S, cache, vBase + t * stride).fma(FloatVector.broadcast(S, scores[t]), o0);
        }
        FRESH.add(o0).add(o1).intoArray(out, outOff); // loop-carried: see FRESH
    }

    /** A head of half a vector (8 floats with AVX-512, stories260K's head size). */
    private static void attendHalf(float[] q, int qOff, float[] cache, int kBase, int vBase, int stride, int len,
                                   float scale, float[] scores, float[] out, int outOff) {
        FloatVector q0 = FloatVector.fromArray(H, q, qOff);
        for (int t = 0, k = kBase; t < len; t++, k += stride) {
            scores[t] = q0.mul(FloatVector.fromArray(H, cache, k)).reduceLanes(VectorOperators.ADD) / scale;
        }
        softmaxVector(scores, len);
        // two accumulators (even and odd positions): half the FMA latency chain
        FloatVector o0 = FloatVector.zero(H);
        FloatVector o1 = FloatVector.zero(H);
        int t = 0;
        for (int v = vBase; t + 2 <= len; t += 2, v += 2 * stride) {
            o0 = FloatVector.fromArray(H, cache, v).fma(FloatVector.broadcast(H, scores[t]), o0);
            o1 = FloatVector.fromArray(H, cache, v + stride).fma(FloatVector.broadcast(H, scores[t + 1]), o1);
        }
        if (t < len) {
            o0 = FloatVector.fromArray(H, cache, vBase + t * stride).fma(FloatVector.broadcast(H, scores[t]), o0);
        }
        FRESH_HALF.add(o0).add(o1).intoArray(out, outOff); // loop-carried: see FRESH
    }

    private static void attend4(float[] q, int qOff, float[] cache, int kBase, int vBase, int stride, int len,
                                float scale, float[] scores, float[] out, int outOff) {
        FloatVector q0 = FloatVector.fromArray(S, q, qOff);
        FloatVector q1 = FloatVector.fromArray(S, q, qOff + L);
        FloatVector q2 = FloatVector.fromArray(S, q, qOff + 2 * L);
        FloatVector q3 = FloatVector.fromArray(S, q, qOff + 3 * L);
        for (int t = 0, k = kBase; t < len; t++, k += stride) {
            FloatVector a = q0.mul(FloatVector.fromArray(S, cache, k));
            FloatVector b = q1.mul(FloatVector.fromArray(S, cache, k + L));
            a = q2.fma(FloatVector.fromArray(S, cache, k + 2 * L), a);
            b = q3.fma(FloatVector.fromArray(S, cache, k + 3 * L), b);
            scores[t] = a.add(b).reduceLanes(VectorOperators.ADD) / scale;
        }
        softmaxVector(scores, len);
        FloatVector o0 = FloatVector.zero(S);
        FloatVector o1 = FloatVector.zero(S);
        FloatVector o2 = FloatVector.zero(S);
        FloatVector o3 = FloatVector.zero(S);
        for (int t = 0, v = vBase; t < len; t++, v += stride) {
            FloatVector w = FloatVector.broadcast(S, scores[t]);
            o0 = FloatVector.fromArray(S, cache, v).fma(w, o0);
            o1 = FloatVector.fromArray(S, cache, v + L).fma(w, o1);
            o2 = FloatVector.fromArray(S, cache, v + 2 * L).fma(w, o2);
            o3 = FloatVector.fromArray(S, cache, v + 3 * L).fma(w, o3);
        }
        FRESH.add(o0).intoArray(out, outOff); // loop-carried: see FRESH
        FRESH.add(o1).intoArray(out, outOff + L);
        FRESH.add(o2).intoArray(out, outOff + 2 * L);
        FRESH.add(o3).intoArray(out, outOff + 3 * L);
    }

    private static void attend2(float[] q, int qOff, float[] cache, int kBase, int vBase, int stride, int len,
                                float scale, float[] scores, float[] out, int outOff) {
        FloatVector q0 = FloatVector.fromArray(S, q, qOff);
        FloatVector q1 = FloatVector.fromArray(S, q, qOff + L);
        for (int t = 0, k = kBase; t < len; t++, k += stride) {
            FloatVector a = q0.mul(FloatVector.fromArray(S, cache, k));
            a = q1.fma(FloatVector.fromArray(S, cache, k + L), a);
            scores[t] = a.reduceLanes(VectorOperators.ADD) / scale;
        }
        softmaxVector(scores, len);
        FloatVector o0 = FloatVector.zero(S);
        FloatVector o1 = FloatVector.zero(S);
        for (int t = 0, v = vBase; t < len; t++, v += stride) {
            FloatVector w = FloatVector.broadcast(S, scores[t]);
            o0 = FloatVector.fromArray(S, cache, v).fma(w, o0);
            o1 = FloatVector.fromArray(S, cache, v + L).fma(w, o1);
        }
        FRESH.add(o0).intoArray(out, outOff); // loop-carried: see FRESH
        FRESH.add(o1).intoArray(out, outOff + L);
    }
}
