package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.HalfFloats;
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
        // {rows, n, batch, row padding of x and out}: padding 0 keeps 16-byte alignment (vector path), 3 breaks it
        for (int[] shape : new int[][] {{1, 7, 1, 3}, {33, 100, 3, 3}, {288, 768, 5, 3}, {512, 64, 9, 3},
                {256, 2048, 1, 0}, {96, 5632, 16, 0}, {100, 1000, 17, 0}, {40, 1001, 2, 0}}) {
            int rows = shape[0];
            int n = shape[1];
            int batch = shape[2];
            int xStride = n + shape[3];
            int outStride = rows + shape[3];
            float[] w = random(r, rows * n);
            float[] x = random(r, batch * xStride);
            float[] expect = new float[batch * outStride];
            float[] expectH = new float[batch * outStride];
            for (int b = 0; b < batch; b++) {
                for (int i = 0; i < rows; i++) {
                    double s = 0;
                    double h = 0;
                    for (int k = 0; k < n; k++) {
                        s += (double) w[i * n + k] * x[b * xStride + k];
                        h += (double) HalfFloats.round(w[i * n + k]) * x[b * xStride + k];
                    }
                    expect[b * outStride + i] = (float) s;
                    expectH[b * outStride + i] = (float) h;
                }
            }
            String what = rows + "x" + n + " batch " + batch + " padding " + shape[3];
            float tol = 1e-5f * (float) Math.sqrt(n) * 4;
            try (DeviceBuffer dw = upload(w); DeviceBuffer dx = upload(x);
                 DeviceBuffer out = CudaDevice.raw(null, ctx, expect.length);
                 DeviceBuffer half = CudaDevice.raw(null, ctx, w.length, 2)) {
                ctx.launch("gemv_f32", Launch.gemv(rows), dw.ptr, n, rows, dx.ptr, xStride, batch, out.ptr, outStride, 0);
                assertClose(expect, download(out, expect.length), tol, "fp32 " + what);
                ctx.launch("gemv_f32", Launch.gemv(rows), dw.ptr, n, rows, dx.ptr, xStride, batch, out.ptr, outStride, 1);
                float[] twice = expect.clone();
                for (int i = 0; i < twice.length; i++) {
                    twice[i] *= 2;
                }
                assertClose(twice, download(out, expect.length), 2 * tol, "fp32 accumulate " + what);
                ctx.launch("f32_to_f16", Launch.elementwise(w.length), dw.ptr, half.ptr, (long) w.length);
                ctx.launch("gemv_f16", Launch.gemv(rows), half.ptr, n, rows, dx.ptr, xStride, batch, out.ptr, outStride, 0);
                assertClose(expectH, download(out, expect.length), tol, "fp16 weights, fp32 accumulation " + what);
            }
        }
    }

    private static void assertClose(float[] expect, float[] got, float tol, String what) {
        for (int i = 0; i < got.length; i++) {
            assertTrue(Math.abs(got[i] - expect[i]) <= tol * (1 + Math.abs(expect[i])), what + " [" + i + "]: " + got[i]
                    + " vs " + expect[i]);
        }
    }

    @Test
    void halfWeightKernelsMatchTheirFloatTwins() {
        Random r = new Random(3);
        int dim = 96;
        int batch = 4;
        float[] x = random(r, batch * dim);
        float[] w = random(r, dim);
        HalfFloats.round(w);
        short[] wh = HalfFloats.toHalves(w);
        int vLocal = 10;
        float[] emb = random(r, vLocal * dim);
        HalfFloats.round(emb);
        short[] embH = HalfFloats.toHalves(emb);
        try (DeviceBuffer dx = upload(x); DeviceBuffer dw = upload(w); DeviceBuffer dwh = CudaDevice.raw(null, ctx, dim, 2);
             DeviceBuffer demb = upload(emb); DeviceBuffer dembh = CudaDevice.raw(null, ctx, emb.length, 2);
             DeviceBuffer o1 = CudaDevice.raw(null, ctx, x.length); DeviceBuffer o2 = CudaDevice.raw(null, ctx, x.length);
             DeviceBuffer tok = CudaDevice.raw(null, ctx, batch); DeviceBuffer map = CudaDevice.raw(null, ctx, batch)) {
            cuMemcpyHtoD(dwh.ptr, Pointer.to(wh), (long) dim * 2);
            cuMemcpyHtoD(dembh.ptr, Pointer.to(embH), (long) emb.length * 2);
            ctx.launch("rmsnorm", Launch.perRow(batch), o1.ptr, dim, dx.ptr, dim, dw.ptr, dim);
            ctx.launch("rmsnorm_h", Launch.perRow(batch), o2.ptr, dim, dx.ptr, dim, dwh.ptr, dim);
            assertArrayEquals(download(o1, x.length), download(o2, x.length), "rmsnorm_h");
            cuMemcpyHtoD(map.ptr, Pointer.to(new int[] {1, -1, 0, 2}), (long) batch * Integer.BYTES);
            ctx.launch("rmsnorm_select", Launch.perRow(batch), o1.ptr, dx.ptr, dw.ptr, dim, map.ptr);
            ctx.launch("rmsnorm_select_h", Launch.perRow(batch), o2.ptr, dx.ptr, dwh.ptr, dim, map.ptr);
            assertArrayEquals(download(o1, 3 * dim), download(o2, 3 * dim), "rmsnorm_select_h");
            cuMemcpyHtoD(tok.ptr, Pointer.to(new int[] {23, 20, 29, 31}), (long) batch * Integer.BYTES);
            ctx.launch("embed", Launch.perRow(batch), o1.ptr, demb.ptr, tok.ptr, 20, vLocal, dim);
            ctx.launch("embed_h", Launch.perRow(batch), o2.ptr, dembh.ptr, tok.ptr, 20, vLocal, dim);
            float[] e = download(o2, x.length);
            assertArrayEquals(download(o1, x.length), e, "embed_h");
            assertEquals(emb[3 * dim + 5], e[5]);
            assertEquals(0f, e[3 * dim + 5], "token 31 is outside the shard [20, 30)");
        }
    }

    @Test
    void attentionMayUseTheOptedInSharedMemory() {
        assertTrue(ctx.attentionSharedLimit() >= 48 * 1024 - 1024, "limit " + ctx.attentionSharedLimit());
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
