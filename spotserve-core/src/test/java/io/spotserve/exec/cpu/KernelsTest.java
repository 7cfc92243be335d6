package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.TestPipelines;
import io.spotserve.model.LlamaCheckpoint;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Scalar and Vector API kernels agree, on seeded random data of awkward sizes and on the real model. */
class KernelsTest {
    private final Kernels scalar = new ScalarKernels();
    private final Kernels vector = Kernels.create(true);

    private static float[] random(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    @Test
    void vectorKernelsAreLoadedWhenTheModuleIsPresent() {
        assertTrue(Kernels.vectorModulePresent(), "tests run with --add-modules jdk.incubator.vector");
        assertEquals("vector", vector.name());
        assertEquals("scalar", Kernels.create(false).name());
    }

    @Test
    void matmulDotAndAxpyAgreeOnRandomData() {
        Random r = new Random(11);
        for (int n : new int[] {1, 7, 8, 16, 43, 64, 100, 172, 512, 1376}) {
            for (int batch : new int[] {1, 3, 4, 5, 8}) {
                int rows = 1 + r.nextInt(40);
                int wOff = r.nextInt(5);
                float[] w = random(r, wOff + rows * n);
                float[] x = random(r, batch * n + 3);
                int outStride = rows + 2;
                float[] a = new float[batch * outStride];
                float[] b = new float[batch * outStride];
                scalar.matmul(w, wOff, n, 0, rows, x, n, batch, a, 1, outStride);
                vector.matmul(w, wOff, n, 0, rows, x, n, batch, b, 1, outStride);
                for (int i = 0; i < a.length; i++) {
                    float tol = 1e-5f * (float) Math.sqrt(n) * Math.max(1f, Math.abs(a[i]));
                    assertEquals(a[i], b[i], tol, "n " + n + " batch " + batch + " index " + i);
                }
                // an entry's result does not depend on the batch it ran in
                float[] alone = new float[outStride];
                vector.matmul(w, wOff, n, 0, rows, java.util.Arrays.copyOfRange(x, (batch - 1) * n, batch * n), n, 1,
                        alone, 1, outStride);
                for (int row = 0; row < rows; row++) {
                    assertEquals(b[(batch - 1) * outStride + 1 + row], alone[1 + row], 0f);
                }
            }
            float[] p = random(r, n + 2);
            float[] q = random(r, n + 1);
            assertEquals(scalar.dot(p, 2, q, 1, n), vector.dot(p, 2, q, 1, n), 1e-5f * n);
            float[] y1 = random(r, n);
            float[] y2 = y1.clone();
            scalar.axpy(0.37f, p, 1, y1, 0, n);
            vector.axpy(0.37f, p, 1, y2, 0, n);
            for (int i = 0; i < n; i++) {
                assertEquals(y1[i], y2[i], 1e-6f * Math.max(1f, Math.abs(y1[i])));
            }
        }
    }

    @Test
    void packedRowsRoundTripAndPackedMatmulIsTheFmaChainPerRowWhateverTheBatch() {
        Random r = new Random(17);
        int lanes = vector.packLanes();
        assertTrue(lanes > 0, "vector kernels pack their weights");
        assertEquals(0, scalar.packLanes());
        for (int n : new int[] {1, 7, lanes, 43, 64, 100, 172, 517}) {
            for (int rows : new int[] {1, 3, 5, 13, 4 * lanes, 4 * lanes + 7, 8 * lanes + 3}) {
                int wOff = r.nextInt(5);
                float[] plain = random(r, wOff + rows * n);
                // pack whole rows in one call
                float[] packed = new float[plain.length];
                PackedRows.rows(packed, wOff, rows, n, lanes, 0, rows, CanonFloats.of(plain), wOff, true);
                // pack again in random row segments, read from little-endian bytes: the same permutation
                FloatBuffer plainBytes = ByteBuffer.allocate(4 * plain.length).order(ByteOrder.LITTLE_ENDIAN)
                        .asFloatBuffer().put(0, plain);
                CanonFloats fromBytes = CanonFloats.of(plainBytes);
                float[] bySegments = new float[plain.length];
                for (int row = 0; row < rows; row++) {
                    int j = 0;
                    while (j < n) {
                        int len = 1 + r.nextInt(n - j);
                        PackedRows.segment(bySegments, wOff, rows, n, lanes, row, j, fromBytes, wOff + row * n + j,
                                len, true);
                        j += len;
                    }
                }
                for (int i = wOff; i < plain.length; i++) {
                    assertEquals(packed[i], bySegments[i], 0f, "n " + n + " rows " + rows + " index " + i);
                }
                float[] back = new float[plain.length];
                PackedRows.rows(packed, wOff, rows, n, lanes, 0, rows, CanonFloats.of(back), wOff, false);
                // and out into a direct buffer: the same floats
                FloatBuffer backBytes = ByteBuffer.allocateDirect(4 * plain.length).order(ByteOrder.LITTLE_ENDIAN)
                        .asFloatBuffer();
                PackedRows.rows(packed, wOff, rows, n, lanes, 0, rows, CanonFloats.of(backBytes), wOff, false);
                for (int i = wOff; i < plain.length; i++) {
                    assertEquals(plain[i], backBytes.get(i), 0f, "round trip via bytes n " + n + " index " + i);
                }
                for (int i = wOff; i < plain.length; i++) {
                    assertEquals(plain[i], back[i], 0f, "round trip n " + n + " rows " + rows + " index " + i);
                }
                for (int batch : new int[] {1, 3, 4, 5, 8}) {
                    float[] x = random(r, batch * n);
                    int outStride = rows + 1;
                    float[] want = new float[batch * outStride];
                    float[] got = new float[batch * outStride];
                    // reference: rows in full packed blocks are fma(w, x, acc) over j = 0.. from 0 (an independent
                    // scalar loop); the rows after the last full block are the plain vector matmul's
                    int g = 4 * lanes;
                    vector.matmul(plain, wOff, n, 0, rows, x, n, batch, want, 1, outStride);
                    for (int b = 0; b < batch; b++) {
                        for (int row = 0; row < rows - rows % g; row++) {
                            float acc = 0f;
                            for (int j = 0; j < n; j++) {
                                acc = Math.fma(plain[wOff + row * n + j], x[b * n + j], acc);
                            }
                            want[1 + b * outStride + row] = acc;
                        }
                    }
                    // in two calls split at a block boundary, as the worker pool splits it
                    int split = Math.min(rows, g * r.nextInt(rows / g + 1));
                    vector.matmulPacked(packed, wOff, n, rows, 0, split, x, n, batch, got, 1, outStride);
                    vector.matmulPacked(packed, wOff, n, rows, split, rows, x, n, batch, got, 1, outStride);
                    for (int i = 0; i < want.length; i++) {
                        assertEquals(want[i], got[i], 0f, "n " + n + " rows " + rows + " batch " + batch + " out " + i);
                    }
                }
            }
        }
    }

    @Test
    void vectorExpIsWithinTwoUlpOfMathExpAndItsScalarTwinGivesTheSameBits() throws Exception {
        Class<?> vk = Class.forName("io.spotserve.exec.cpu.VectorKernels");
        java.lang.reflect.Method scalarExp = vk.getDeclaredMethod("exp", float.class);
        java.lang.reflect.Method softmax = vk.getDeclaredMethod("softmaxVector", float[].class, int.class);
        Random r = new Random(5);
        int n = 4099;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = i < 8 ? new float[] {0f, -0f, -87f, 88f, -1e-8f, 1e-8f, -20f, 20f}[i]
                    : (float) (r.nextDouble() * 170 - 85);
        }
        for (int i = 0; i < n; i++) {
            float e = (float) scalarExp.invoke(null, x[i]);
            float want = (float) Math.exp(x[i]);
            assertTrue(Math.abs(e - want) <= 2 * Math.ulp(want), "exp(" + x[i] + ") = " + e + ", Math.exp " + want);
        }
        // softmax: vector lanes and the scalar tail use the same exp; every size matches the run.c formula
        for (int size : new int[] {1, 5, 16, 17, 100, 513}) {
            float[] v = java.util.Arrays.copyOf(x, size);
            float[] want = v.clone();
            Kernels.softmax(want, size);
            softmax.invoke(null, v, size);
            for (int i = 0; i < size; i++) {
                assertEquals(want[i], v[i], 2e-6f * Math.max(1e-3f, want[i]) + 1e-30f, "softmax size " + size + " at " + i);
            }
        }
    }

    /**
     * The softmax's vector loop writes e^x out in its own body (not a call: VectorKernels, VEXP); every lane must
     * still give the scalar twin's bits, including clamped, tiny and zero arguments.
     */
    @Test
    void softmaxExponentialsAreTheScalarTwinsBits() throws Exception {
        Class<?> vk = Class.forName("io.spotserve.exec.cpu.VectorKernels");
        java.lang.reflect.Method scalarExp = vk.getDeclaredMethod("exp", float.class);
        java.lang.reflect.Method expInPlace = vk.getDeclaredMethod("expInPlace", float[].class, int.class, float.class);
        expInPlace.setAccessible(true);
        int lanes = vector.packLanes();
        Random r = new Random(13);
        int bound = 64 * lanes;
        float[] x = new float[bound];
        float[] special = {0f, -0f, 3f, -1e-8f, 1e-8f, -87.2f, -87.4f, -100f, -200f, 88.2f, 88.4f, -20f};
        for (int i = 0; i < bound; i++) {
            x[i] = i < special.length ? special[i] : (float) (r.nextDouble() * 180 - 170);
        }
        for (float max : new float[] {0f, 2.5f, -3f}) {
            float[] v = x.clone();
            float sum = (float) expInPlace.invoke(null, v, bound, max);
            double want = 0;
            for (int i = 0; i < bound; i++) {
                float e = (float) scalarExp.invoke(null, x[i] - max);
                assertEquals(Float.floatToRawIntBits(e), Float.floatToRawIntBits(v[i]), "e^(" + x[i] + " - " + max + ")");
                want += e;
            }
            if (Float.isFinite((float) want)) { // e^88 + e^91 overflows the float sum, as it would in run.c
                assertEquals(want, sum, 1e-5 * want);
            }
        }
    }

    @Test
    void swigluAgreesWithRunCAndDoesNotDependOnWhereAChunkStarts() {
        Random r = new Random(8);
        int units = 173;
        float[] h13 = random(r, 2 * units + 3);
        for (int i = 0; i < 20; i++) {
            h13[3 + i] *= 40; // large gates: e^-v overflows / underflows
        }
        float[] want = new float[units + 1];
        float[] whole = new float[units + 1];
        float[] pieces = new float[units + 1];
        // gate values at h13[3 ..+units), up values at h13[3 + units ..+units)
        scalar.swiglu(h13, 3, 3 + units, units, want, 1);
        vector.swiglu(h13, 3, 3 + units, units, whole, 1);
        vector.swiglu(h13, 3, 3 + units, 7, pieces, 1);
        vector.swiglu(h13, 3 + 7, 3 + units + 7, 33, pieces, 1 + 7);
        vector.swiglu(h13, 3 + 40, 3 + units + 40, units - 40, pieces, 1 + 40);
        for (int i = 1; i <= units; i++) {
            assertEquals(want[i], whole[i], 1e-6f * Math.max(1f, Math.abs(want[i])), "unit " + (i - 1));
            assertEquals(whole[i], pieces[i], 0f, "unit " + (i - 1) + " computed in another chunk");
        }
    }

    @Test
    void attentionHeadsAgreeForEveryHeadSize() {
        Random r = new Random(21);
        for (int hs : new int[] {8, 16, 32, 48, 64, 128}) {
            for (int len : new int[] {1, 2, 17, 200}) {
                int stride = 3 * hs; // three kv heads per position, we read the middle one
                float[] cache = random(r, 2 * len * stride + 5);
                float[] q = random(r, hs + 3);
                int kBase = hs;
                int vBase = len * stride + hs;
                float scale = (float) Math.sqrt(hs);
                float[] sa = new float[len];
                float[] sb = new float[len];
                float[] oa = random(r, hs + 4); // garbage that must be overwritten
                float[] ob = random(r, hs + 4);
                scalar.attendHead(q, 3, cache, kBase, vBase, stride, len, hs, scale, sa, oa, 2);
                vector.attendHead(q, 3, cache, kBase, vBase, stride, len, hs, scale, sb, ob, 2);
                for (int t = 0; t < len; t++) {
                    assertEquals(sa[t], sb[t], 1e-6f, "hs " + hs + " len " + len + " prob " + t);
                }
                float sum = 0;
                for (int t = 0; t < len; t++) {
                    sum += sa[t];
                }
                assertEquals(1f, sum, 1e-5f);
                for (int i = 2; i < 2 + hs; i++) {
                    assertEquals(oa[i], ob[i], 1e-5f, "hs " + hs + " len " + len + " out " + i);
                }
            }
        }
    }

    /**
     * The register-resident attention kernels change speed, not values: the vector kernels' {@code attendHead} gives
     * bit for bit what their generic dot/axpy loop gives where that loop is what ran before (heads of eight vectors:
     * 128 floats with AVX-512, 64 with AVX2; of sixteen: 128 with AVX2), and writes nothing outside the head's output.
     */
    @Test
    void eightAndSixteenVectorHeadsGiveTheGenericLoopsBits() {
        VectorKernels v = (VectorKernels) vector;
        Random r = new Random(23);
        for (int hs : new int[] {8 * v.packLanes(), 16 * v.packLanes()}) {
            for (int len : new int[] {1, 2, 3, 17, 200}) {
                int stride = 3 * hs;
                float[] cache = random(r, 2 * len * stride + 5);
                float[] q = random(r, hs + 3);
                int kBase = hs;
                int vBase = len * stride + hs;
                float scale = (float) Math.sqrt(hs);
                float[] want = random(r, hs + 4);
                float[] got = want.clone();
                float[] sw = new float[len];
                float[] sg = new float[len];
                v.attendAnySize(q, 3, cache, kBase, vBase, stride, len, hs, scale, sw, want, 2);
                v.attendHead(q, 3, cache, kBase, vBase, stride, len, hs, scale, sg, got, 2);
                assertArrayEquals(sw, sg, "probabilities, hs " + hs + " len " + len);
                assertArrayEquals(want, got, "outputs, hs " + hs + " len " + len);
            }
        }
    }

    @Test
    void scalarAndVectorPipelinesGiveCloseLogitsOnStories260K() throws IOException {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        int[] tokens = new Random(3).ints(60, 0, 512).toArray();
        try (Executor s = new CpuExecutor(new ExecutorOptions(1, false));
             Executor v = new CpuExecutor(new ExecutorOptions(2, true))) {
            Pipeline ps = TestPipelines.loaded(s, ckpt, ShardLayout.of(ckpt.config(), 1, 1), "s", 1);
            Pipeline pv = TestPipelines.loaded(v, ckpt, ShardLayout.of(ckpt.config(), 1, 1), "v", 1);
            ps.openSequence(1, 60);
            pv.openSequence(1, 60);
            float max = 0;
            for (int pos = 0; pos < tokens.length; pos++) {
                float[] a = ps.decode(new long[] {1}, new int[] {tokens[pos]}, new int[] {pos})[0];
                float[] b = pv.decode(new long[] {1}, new int[] {tokens[pos]}, new int[] {pos})[0];
                for (int i = 0; i < a.length; i++) {
                    max = Math.max(max, Math.abs(a[i] - b[i]));
                }
            }
            assertTrue(max < 1e-4f, "scalar vs vector logits differ by " + max);
        }
    }
}
