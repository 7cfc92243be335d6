package io.spotserve.exec.cpu;

/**
 * Plain-Java kernels: every dot product is a single float accumulator summed left to right, the order
 * llama2.c's run.c uses, so greedy decoding reproduces it. The fallback when the Vector API is absent or
 * disabled with {@code -Dspotserve.vector=false}.
 */
final class ScalarKernels extends Kernels {
    @Override
    String name() {
        return "scalar";
    }

    @Override
    void matmul(float[] w, int wOff, int n, int r0, int r1, float[] x, int xStride, int batch,
                float[] out, int outOff, int outStride) {
        for (int r = r0; r < r1; r++) {
            int row = wOff + r * n;
            for (int b = 0; b < batch; b++) {
                int xb = b * xStride;
                float sum = 0f;
                for (int j = 0; j < n; j++) {
                    sum += w[row + j] * x[xb + j];
                }
                out[outOff + b * outStride + r] = sum;
            }
        }
    }

    @Override
    float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        float sum = 0f;
        for (int j = 0; j < n; j++) {
            sum += a[aOff + j] * b[bOff + j];
        }
        return sum;
    }

    @Override
    void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        for (int j = 0; j < n; j++) {
            y[yOff + j] += alpha * x[xOff + j];
        }
    }
}
