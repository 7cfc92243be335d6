package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import jcuda.Pointer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Each PTX kernel against a host computation of the same math on seeded random inputs, so a failure in the
 * contract suites can be pinned to one kernel. Tag "gpu"; skipped without a usable GPU.
 */
@Tag("gpu")
class CudaKernelsTest {
    private static CudaContext ctx;

    @BeforeAll
    static void open() {
        Assumptions.assumeTrue(CudaExecutorProvider.gpuAvailable(), "no usable GPU: "
                + new CudaExecutorProvider().unusableReason());
        ctx = new CudaContext(0);
    }

    @AfterAll
    static void close() {
        if (ctx != null) {
            ctx.close();
        }
    }

    private static float[] random(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    private static DeviceBuffer upload(float[] a) {
        DeviceBuffer b = CudaDevice.raw(null, ctx, a.length);
        cuMemcpyHtoD(b.ptr, Pointer.to(a), (long) a.length * Float.BYTES);
        return b;
    }

    private static float[] download(DeviceBuffer b, int n) {
        ctx.sync();
        float[] a = new float[n];
        cuMemcpyDtoH(Pointer.to(a), b.ptr, (long) n * Float.BYTES);
        return a;
    }

    @Test
    void gemvMatchesHostDotProducts() {
        Random r = new Random(1);
        for (int[] shape : new int[][] {{1, 7, 1}, {33, 100, 3}, {288, 768, 5}, {512, 64, 9}}) {
            int rows = shape[0];
            int n = shape[1];
            int batch = shape[2];
            float[] w = random(r, rows * n);
            float[] x = random(r, batch * (n + 3));
            float[] expect = new float[batch * (rows + 1)];
            for (int b = 0; b < batch; b++) {
                for (int i = 0; i < rows; i++) {
                    double s = 0;
                    for (int k = 0; k < n; k++) {
                        s += (double) w[i * n + k] * x[b * (n + 3) + k];
                    }
                    expect[b * (rows + 1) + i] = (float) s;
                }
            }
            try (DeviceBuffer dw = upload(w); DeviceBuffer dx = upload(x);
                 DeviceBuffer out = CudaDevice.raw(null, ctx, expect.length);
                 DeviceBuffer half = CudaDevice.raw(null, ctx, (w.length + 1) / 2)) {
                ctx.launch("gemv_f32", Launch.gemv(rows), dw.ptr, n, rows, dx.ptr, n + 3, batch, out.ptr, rows + 1);
                assertArrayEquals(expect, download(out, expect.length), 1e-3f, "fp32 " + rows + "x" + n + " batch " + batch);
                ctx.launch("f32_to_f16", Launch.elementwise(w.length), dw.ptr, half.ptr, (long) w.length);
                ctx.launch("gemv_f16", Launch.gemv(rows), half.ptr, n, rows, dx.ptr, n + 3, batch, out.ptr, rows + 1);
                float[] got = download(out, expect.length);
                for (int i = 0; i < got.length; i++) {
                    assertTrue(Math.abs(got[i] - expect[i]) <= 2e-2f * (1 + Math.abs(expect[i])) + n * 1e-3f,
                            "fp16 weights, fp32 accumulation: " + got[i] + " vs " + expect[i]);
                }
            }
        }
    }

    @Test
    void rmsnormSwigluAddAndSamplingHelpersMatchTheHost() {
        Random r = new Random(2);
        int dim = 288;
        int batch = 3;
        float[] x = random(r, batch * dim);
        float[] w = random(r, dim);
        float[] expect = new float[batch * dim];
        for (int b = 0; b < batch; b++) {
            float ss = 0;
            for (int j = 0; j < dim; j++) {
                ss += x[b * dim + j] * x[b * dim + j];
            }
            ss = 1.0f / (float) Math.sqrt(ss / dim + 1e-5f);
            for (int j = 0; j < dim; j++) {
                expect[b * dim + j] = w[j] * (ss * x[b * dim + j]);
            }
        }
        try (DeviceBuffer dx = upload(x); DeviceBuffer dw = upload(w); DeviceBuffer o = CudaDevice.raw(null, ctx, x.length)) {
            ctx.launch("rmsnorm", Launch.perRow(batch), o.ptr, dim, dx.ptr, dim, dw.ptr, dim);
            assertArrayEquals(expect, download(o, x.length), 1e-5f, "rmsnorm");
            ctx.launch("add_inplace", Launch.elementwise(x.length), o.ptr, dx.ptr, x.length);
            float[] sum = download(o, x.length);
            for (int i = 0; i < x.length; i++) {
                assertEquals(expect[i] + x[i], sum[i], 1e-5f);
            }
            // swiglu over f = dim / 2 units: o[b][i] = silu(x[b][i]) * x[b][f + i]
            int f = dim / 2;
            ctx.launch("swiglu", Launch.elementwise((long) f * batch), dx.ptr, o.ptr, f, batch);
            float[] sw = download(o, f * batch);
            for (int b = 0; b < batch; b++) {
                for (int i = 0; i < f; i++) {
                    float v = x[b * dim + i];
                    float e = v * (1.0f / (1.0f + (float) Math.exp(-v))) * x[b * dim + f + i];
                    assertEquals(e, sw[b * f + i], 1e-5f);
                }
            }
            // argmax (first index of the max) and softmax with temperature, rows of dim
            x[dim + 17] = 50f;
            x[dim + 200] = 50f;
            cuMemcpyHtoD(dx.ptr, Pointer.to(x), (long) x.length * Float.BYTES);
            int[] idx = new int[batch];
            try (DeviceBuffer di = CudaDevice.raw(null, ctx, batch)) {
                ctx.launch("argmax_rows", Launch.perRow(batch), dx.ptr, dim, di.ptr);
                ctx.sync();
                cuMemcpyDtoH(Pointer.to(idx), di.ptr, (long) batch * Integer.BYTES);
            }
            for (int b = 0; b < batch; b++) {
                int best = 0;
                for (int j = 1; j < dim; j++) {
                    if (x[b * dim + j] > x[b * dim + best]) {
                        best = j;
                    }
                }
                assertEquals(best, idx[b], "argmax row " + b);
            }
            ctx.launch("softmax_rows", Launch.perRow(batch), dx.ptr, dim, 0.7f);
            float[] p = download(dx, x.length);
            for (int b = 0; b < batch; b++) {
                double total = 0;
                for (int j = 0; j < dim; j++) {
                    total += p[b * dim + j];
                }
                assertEquals(1.0, total, 1e-4, "softmax row " + b + " sums to 1");
            }
        }
    }
}
