package io.spotserve.exec.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels: FMA over {@link FloatVector#SPECIES_PREFERRED} lanes; the matmul is register-tiled four
 * rows × four batch entries so each loaded weight vector feeds four sequences (this reuse is what makes batched
 * decode cheaper per token than batch 1) and sixteen independent chains hide the FMA latency. Summation order differs from run.c, within
 * float rounding. Loaded only reflectively by {@link Kernels#create}.
 */
final class VectorKernels extends Kernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Weights per row block of the packed matmul (128 KiB: L2-resident while every entry quad passes over it). */
    private static final int BLOCK_FLOATS = 32 * 1024;

    @Override
    String name() {
        return "vector";
    }

    /**
     * Register-tiled: four weight rows × four batch entries per pass (16 independent FMA chains, each weight
     * vector loaded once for four entries, each input vector once for four rows). Every (row, entry) dot
     * product is summed the same way in every tile shape (one accumulator over the vector chunks in order,
     * then the lanes, then the scalar tail), so an entry's result never depends on the batch it ran in.
     */
    @Override
    void matmul(float[] w, int wOff, int n, int r0, int r1, float[] x, int xStride, int batch,
                float[] out, int outOff, int outStride) {
        int r = r0;
        for (; r + 4 <= r1; r += 4) {
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                tile4x4(w, wOff + r * n, n, x, b * xStride, xStride, out, outOff + b * outStride + r, outStride);
            }
            for (; b < batch; b++) { // one row at a time: a single sequential stream, best for batch 1
                int o = outOff + b * outStride + r;
                int row = wOff + r * n;
                out[o] = dot1(w, row, x, b * xStride, n);
                out[o + 1] = dot1(w, row + n, x, b * xStride, n);
                out[o + 2] = dot1(w, row + 2 * n, x, b * xStride, n);
                out[o + 3] = dot1(w, row + 3 * n, x, b * xStride, n);
            }
        }
        for (; r < r1; r++) {
            for (int b = 0; b < batch; b++) {
                out[outOff + b * outStride + r] = dot1(w, wOff + r * n, x, b * xStride, n);
            }
        }
    }

    @Override
    int packLanes() {
        return L;
    }

    /**
     * Over {@link PackedRows} (four rows interleaved per vector chunk): the same 4 rows × 4 entries tile and,
     * for the entries left over (batch 1 above all), a 4 rows × 1 entry tile; both read the group as one
     * sequential stream. Each (row, entry) dot product is summed exactly as in {@link #matmul} (one accumulator
     * over the chunks in order, then the lanes, then the tail), so results do not depend on the batch.
     */
    @Override
    void matmulPacked(float[] w, int wOff, int n, int rows, int r0, int r1, float[] x, int xStride, int batch,
                      float[] out, int outOff, int outStride) {
        int full = Math.min(r1, rows - rows % 4);
        int bound = S.loopBound(n);
        // rows in blocks of about BLOCK_FLOATS weights: the first entry quad streams a block from memory, the
        // others find it in L1/L2
        int blockRows = Math.max(4, (BLOCK_FLOATS / Math.max(1, n)) & ~3);
        int r = r0;
        for (; r < full; r += blockRows) {
            int end = Math.min(full, r + blockRows);
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                for (int q = r; q < end; q += 4) {
                    packed4x4(w, wOff + q * n, n, bound, x, b * xStride, xStride, out, outOff + b * outStride + q,
                            outStride);
                }
            }
            for (; b < batch; b++) {
                for (int q = r; q < end; q += 4) {
                    packed4x1(w, wOff + q * n, n, bound, x, b * xStride, out, outOff + b * outStride + q);
                }
            }
        }
        r = Math.max(r0, full);
        for (; r < r1; r++) {
            for (int b = 0; b < batch; b++) {
                out[outOff + b * outStride + r] = dot1(w, wOff + r * n, x, b * xStride, n);
            }
        }
    }

    private static void packed4x1(float[] w, int g, int n, int bound, float[] x, int x0, float[] out, int o) {
        FloatVector a0 = FloatVector.zero(S);
        FloatVector a1 = FloatVector.zero(S);
        FloatVector a2 = FloatVector.zero(S);
        FloatVector a3 = FloatVector.zero(S);
        for (int j = 0; j < bound; j += L) {
            int p = g + 4 * j;
            FloatVector v = FloatVector.fromArray(S, x, x0 + j);
            a0 = FloatVector.fromArray(S, w, p).fma(v, a0);
            a1 = FloatVector.fromArray(S, w, p + L).fma(v, a1);
            a2 = FloatVector.fromArray(S, w, p + 2 * L).fma(v, a2);
            a3 = FloatVector.fromArray(S, w, p + 3 * L).fma(v, a3);
        }
        int tail = n - bound;
        int t = g + 4 * bound;
        finish(a0, w, t - bound, x, x0, bound, n, out, o);
        finish(a1, w, t + tail - bound, x, x0, bound, n, out, o + 1);
        finish(a2, w, t + 2 * tail - bound, x, x0, bound, n, out, o + 2);
        finish(a3, w, t + 3 * tail - bound, x, x0, bound, n, out, o + 3);
    }

    private static void packed4x4(float[] w, int g, int n, int bound, float[] x, int x0, int xStride, float[] out,
                                  int o, int outStride) {
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
        for (int j = 0; j < bound; j += L) {
            int p = g + 4 * j;
            FloatVector v0 = FloatVector.fromArray(S, x, x0 + j);
            FloatVector v1 = FloatVector.fromArray(S, x, x1 + j);
            FloatVector v2 = FloatVector.fromArray(S, x, x2 + j);
            FloatVector v3 = FloatVector.fromArray(S, x, x3 + j);
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
        // finish(acc, w, wr, ...) reads the tail at w[wr + j] for j in [bound, n): wr = tail start - bound
        int tail = n - bound;
        int t0 = g + 4 * bound - bound;
        int t1 = t0 + tail;
        int t2 = t1 + tail;
        int t3 = t2 + tail;
        finish(a00, w, t0, x, x0, bound, n, out, o);
        finish(a10, w, t1, x, x0, bound, n, out, o + 1);
        finish(a20, w, t2, x, x0, bound, n, out, o + 2);
        finish(a30, w, t3, x, x0, bound, n, out, o + 3);
        o += outStride;
        finish(a01, w, t0, x, x1, bound, n, out, o);
        finish(a11, w, t1, x, x1, bound, n, out, o + 1);
        finish(a21, w, t2, x, x1, bound, n, out, o + 2);
        finish(a31, w, t3, x, x1, bound, n, out, o + 3);
        o += outStride;
        finish(a02, w, t0, x, x2, bound, n, out, o);
        finish(a12, w, t1, x, x2, bound, n, out, o + 1);
        finish(a22, w, t2, x, x2, bound, n, out, o + 2);
        finish(a32, w, t3, x, x2, bound, n, out, o + 3);
        o += outStride;
        finish(a03, w, t0, x, x3, bound, n, out, o);
        finish(a13, w, t1, x, x3, bound, n, out, o + 1);
        finish(a23, w, t2, x, x3, bound, n, out, o + 2);
        finish(a33, w, t3, x, x3, bound, n, out, o + 3);
    }

    private static void tile4x4(float[] w, int row, int n, float[] x, int x0, int xStride, float[] out, int o,
                                int outStride) {
        int w0 = row;
        int w1 = row + n;
        int w2 = w1 + n;
        int w3 = w2 + n;
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
        int bound = S.loopBound(n);
        for (int j = 0; j < bound; j += L) {
            FloatVector v0 = FloatVector.fromArray(S, x, x0 + j);
            FloatVector v1 = FloatVector.fromArray(S, x, x1 + j);
            FloatVector v2 = FloatVector.fromArray(S, x, x2 + j);
            FloatVector v3 = FloatVector.fromArray(S, x, x3 + j);
            FloatVector u = FloatVector.fromArray(S, w, w0 + j);
            a00 = u.fma(v0, a00);
            a01 = u.fma(v1, a01);
            a02 = u.fma(v2, a02);
            a03 = u.fma(v3, a03);
            u = FloatVector.fromArray(S, w, w1 + j);
            a10 = u.fma(v0, a10);
            a11 = u.fma(v1, a11);
            a12 = u.fma(v2, a12);
            a13 = u.fma(v3, a13);
            u = FloatVector.fromArray(S, w, w2 + j);
            a20 = u.fma(v0, a20);
            a21 = u.fma(v1, a21);
            a22 = u.fma(v2, a22);
            a23 = u.fma(v3, a23);
            u = FloatVector.fromArray(S, w, w3 + j);
            a30 = u.fma(v0, a30);
            a31 = u.fma(v1, a31);
            a32 = u.fma(v2, a32);
            a33 = u.fma(v3, a33);
        }
        finish(a00, w, w0, x, x0, bound, n, out, o);
        finish(a10, w, w1, x, x0, bound, n, out, o + 1);
        finish(a20, w, w2, x, x0, bound, n, out, o + 2);
        finish(a30, w, w3, x, x0, bound, n, out, o + 3);
        o += outStride;
        finish(a01, w, w0, x, x1, bound, n, out, o);
        finish(a11, w, w1, x, x1, bound, n, out, o + 1);
        finish(a21, w, w2, x, x1, bound, n, out, o + 2);
        finish(a31, w, w3, x, x1, bound, n, out, o + 3);
        o += outStride;
        finish(a02, w, w0, x, x2, bound, n, out, o);
        finish(a12, w, w1, x, x2, bound, n, out, o + 1);
        finish(a22, w, w2, x, x2, bound, n, out, o + 2);
        finish(a32, w, w3, x, x2, bound, n, out, o + 3);
        o += outStride;
        finish(a03, w, w0, x, x3, bound, n, out, o);
        finish(a13, w, w1, x, x3, bound, n, out, o + 1);
        finish(a23, w, w2, x, x3, bound, n, out, o + 2);
        finish(a33, w, w3, x, x3, bound, n, out, o + 3);
    }

    private static float dot1(float[] w, int w0, float[] x, int x0, int n) {
        FloatVector a = FloatVector.zero(S);
        int bound = S.loopBound(n);
        for (int j = 0; j < bound; j += L) {
            a = FloatVector.fromArray(S, w, w0 + j).fma(FloatVector.fromArray(S, x, x0 + j), a);
        }
        float s = a.reduceLanes(VectorOperators.ADD);
        for (int j = bound; j < n; j++) {
            s += w[w0 + j] * x[x0 + j];
        }
        return s;
    }

    /** Lanes, then the scalar tail of one (row, entry) dot product, stored. */
    private static void finish(FloatVector acc, float[] w, int wr, float[] x, int xr, int bound, int n, float[] out,
                               int o) {
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (int j = bound; j < n; j++) {
            s += w[wr + j] * x[xr + j];
        }
        out[o] = s;
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
            sum = s0.add(s1).add(s2.add(s3)).reduceLanes(VectorOperators.ADD);
        }
        if (n - j >= L) {
            FloatVector s = FloatVector.zero(S);
            int bound = j + S.loopBound(n - j);
            for (; j < bound; j += L) {
                s = FloatVector.fromArray(S, a, aOff + j).fma(FloatVector.fromArray(S, b, bOff + j), s);
            }
            sum += s.reduceLanes(VectorOperators.ADD);
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

    /**
     * Heads of one, two or four vectors (64 floats with AVX-512) keep q and the output in registers across all
     * positions; other head sizes use the generic dot/axpy loop.
     */
    @Override
    void attendHead(float[] q, int qOff, float[] cache, int kBase, int vBase, int stride, int len, int hs,
                    float scale, float[] scores, float[] out, int outOff) {
        if (hs == 4 * L) {
            attend4(q, qOff, cache, kBase, vBase, stride, len, scale, scores, out, outOff);
        } else if (hs == 2 * L) {
            attend2(q, qOff, cache, kBase, vBase, stride, len, scale, scores, out, outOff);
        } else {
            super.attendHead(q, qOff, cache, kBase, vBase, stride, len, hs, scale, scores, out, outOff);
        }
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
        softmax(scores, len);
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
        o0.intoArray(out, outOff);
        o1.intoArray(out, outOff + L);
        o2.intoArray(out, outOff + 2 * L);
        o3.intoArray(out, outOff + 3 * L);
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
        softmax(scores, len);
        FloatVector o0 = FloatVector.zero(S);
        FloatVector o1 = FloatVector.zero(S);
        for (int t = 0, v = vBase; t < len; t++, v += stride) {
            FloatVector w = FloatVector.broadcast(S, scores[t]);
            o0 = FloatVector.fromArray(S, cache, v).fma(w, o0);
            o1 = FloatVector.fromArray(S, cache, v + L).fma(w, o1);
        }
        o0.intoArray(out, outOff);
        o1.intoArray(out, outOff + L);
    }
}
