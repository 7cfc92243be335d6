package io.spotserve.exec.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels: FMA over {@link FloatVector#SPECIES_PREFERRED} lanes, several independent accumulators
 * to hide FMA latency, and batch tiles of four so each loaded weight vector feeds four sequences (this reuse
 * is what makes batched decode cheaper per token than batch 1). Summation order differs from run.c, within
 * float rounding. Loaded only reflectively by {@link Kernels#create}.
 */
final class VectorKernels extends Kernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    @Override
    String name() {
        return "vector";
    }

    /**
     * Every batch entry's dot product is summed the same way (two accumulators over alternating vector chunks,
     * then the scalar tail) whether it runs in a tile of four or alone, so an entry's result never depends on
     * the batch it was decoded in.
     */
    @Override
    void matmul(float[] w, int wOff, int n, int r0, int r1, float[] x, int xStride, int batch,
                float[] out, int outOff, int outStride) {
        int bound = S.loopBound(n);
        int bound2 = n - n % (2 * L);
        for (int r = r0; r < r1; r++) {
            int row = wOff + r * n;
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                int x0 = b * xStride;
                int x1 = x0 + xStride;
                int x2 = x1 + xStride;
                int x3 = x2 + xStride;
                FloatVector a0 = FloatVector.zero(S);
                FloatVector a1 = FloatVector.zero(S);
                FloatVector a2 = FloatVector.zero(S);
                FloatVector a3 = FloatVector.zero(S);
                FloatVector c0 = FloatVector.zero(S);
                FloatVector c1 = FloatVector.zero(S);
                FloatVector c2 = FloatVector.zero(S);
                FloatVector c3 = FloatVector.zero(S);
                int j = 0;
                for (; j < bound2; j += 2 * L) {
                    FloatVector wv = FloatVector.fromArray(S, w, row + j);
                    FloatVector wu = FloatVector.fromArray(S, w, row + j + L);
                    a0 = wv.fma(FloatVector.fromArray(S, x, x0 + j), a0);
                    a1 = wv.fma(FloatVector.fromArray(S, x, x1 + j), a1);
                    a2 = wv.fma(FloatVector.fromArray(S, x, x2 + j), a2);
                    a3 = wv.fma(FloatVector.fromArray(S, x, x3 + j), a3);
                    c0 = wu.fma(FloatVector.fromArray(S, x, x0 + j + L), c0);
                    c1 = wu.fma(FloatVector.fromArray(S, x, x1 + j + L), c1);
                    c2 = wu.fma(FloatVector.fromArray(S, x, x2 + j + L), c2);
                    c3 = wu.fma(FloatVector.fromArray(S, x, x3 + j + L), c3);
                }
                if (j < bound) {
                    FloatVector wv = FloatVector.fromArray(S, w, row + j);
                    a0 = wv.fma(FloatVector.fromArray(S, x, x0 + j), a0);
                    a1 = wv.fma(FloatVector.fromArray(S, x, x1 + j), a1);
                    a2 = wv.fma(FloatVector.fromArray(S, x, x2 + j), a2);
                    a3 = wv.fma(FloatVector.fromArray(S, x, x3 + j), a3);
                }
                float s0 = a0.add(c0).reduceLanes(VectorOperators.ADD);
                float s1 = a1.add(c1).reduceLanes(VectorOperators.ADD);
                float s2 = a2.add(c2).reduceLanes(VectorOperators.ADD);
                float s3 = a3.add(c3).reduceLanes(VectorOperators.ADD);
                for (j = bound; j < n; j++) {
                    float wj = w[row + j];
                    s0 += wj * x[x0 + j];
                    s1 += wj * x[x1 + j];
                    s2 += wj * x[x2 + j];
                    s3 += wj * x[x3 + j];
                }
                int o = outOff + b * outStride + r;
                out[o] = s0;
                out[o + outStride] = s1;
                out[o + 2 * outStride] = s2;
                out[o + 3 * outStride] = s3;
            }
            for (; b < batch; b++) {
                int x0 = b * xStride;
                FloatVector a0 = FloatVector.zero(S);
                FloatVector c0 = FloatVector.zero(S);
                int j = 0;
                for (; j < bound2; j += 2 * L) {
                    a0 = FloatVector.fromArray(S, w, row + j).fma(FloatVector.fromArray(S, x, x0 + j), a0);
                    c0 = FloatVector.fromArray(S, w, row + j + L).fma(FloatVector.fromArray(S, x, x0 + j + L), c0);
                }
                if (j < bound) {
                    a0 = FloatVector.fromArray(S, w, row + j).fma(FloatVector.fromArray(S, x, x0 + j), a0);
                }
                float s0 = a0.add(c0).reduceLanes(VectorOperators.ADD);
                for (j = bound; j < n; j++) {
                    s0 += w[row + j] * x[x0 + j];
                }
                out[outOff + b * outStride + r] = s0;
            }
        }
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
}
