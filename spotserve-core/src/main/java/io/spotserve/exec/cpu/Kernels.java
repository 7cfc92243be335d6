package io.spotserve.exec.cpu;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The numeric kernels of the CPU forward pass. Two implementations: {@link ScalarKernels} (plain loops that
 * sum in the same float order as llama2.c's run.c) and {@code VectorKernels} (JDK Vector API FMA). The vector
 * class is loaded reflectively, only when chosen, so the scalar path never touches the incubator module.
 */
abstract class Kernels {
    private static final Logger LOG = LoggerFactory.getLogger(Kernels.class);
    static final String VECTOR_MODULE = "jdk.incubator.vector";
    private static final java.util.concurrent.atomic.AtomicBoolean WARNED = new java.util.concurrent.atomic.AtomicBoolean();

    /**
     * Whether the Vector API module is in the boot layer (the JVM was started with --add-modules). When it is, and
     * core runs as the named module {@code io.spotserve.core}, core starts reading it here: module-info.java does not
     * require it (not even {@code requires static}), so an application compiling against core never resolves an
     * incubator module or sees its warning.
     */
    static boolean vectorModulePresent() {
        java.util.Optional<Module> vector = ModuleLayer.boot().findModule(VECTOR_MODULE);
        vector.ifPresent(Kernels.class.getModule()::addReads); // a no-op on the class path (the unnamed module)
        return vector.isPresent();
    }

    /** The vector kernels when wanted and available, the scalar ones otherwise. */
    static Kernels create(boolean wantVector) {
        if (wantVector && !vectorModulePresent() && !WARNED.getAndSet(true)) { // once per JVM
            LOG.warn("CPU executor: the Vector API module is not loaded, so the scalar kernels run (about 2-3x "
                    + "slower); start the JVM with --add-modules " + VECTOR_MODULE + " to use the fast vector kernels");
        }
        if (wantVector && vectorModulePresent()) {
            try {
                return (Kernels) Class.forName("io.spotserve.exec.cpu.VectorKernels").getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException | LinkageError e) {
                LOG.warn("Vector API kernels unavailable ({}); using scalar kernels", e.toString());
            }
        }
        return new ScalarKernels();
    }

    /** "scalar" or "vector". */
    abstract String name();

    /**
     * Batched matrix-vector product over rows {@code [r0, r1)} of a row-major matrix with {@code n} columns at
     * {@code w[wOff]}: {@code out[outOff + b·outStride + r] = Σ_j w[wOff + r·n + j] · x[b·xStride + j]} for every
     * batch entry b. Each weight row is used for all entries while it is in cache.
     */
    abstract void matmul(float[] w, int wOff, int n, int r0, int r1, float[] x, int xStride, int batch,
                         float[] out, int outOff, int outStride);

    /**
     * Vector lanes of the {@link PackedRows} layout this implementation wants its layer weights in, or 0 for
     * plain row-major rows (then {@link #matmulPacked} is never called).
     */
    int packLanes() {
        return 0;
    }

    /**
     * {@link #matmul} over a {@code rows × n} matrix stored in the {@link PackedRows} layout of
     * {@link #packLanes()} lanes; {@code r0} must be a multiple of {@code 4·packLanes()} (a block boundary).
     */
    void matmulPacked(float[] w, int wOff, int n, int rows, int r0, int r1, float[] x, int xStride, int batch,
                      float[] out, int outOff, int outStride) {
        throw new IllegalStateException(name() + " kernels use plain rows (packLanes 0), not the packed layout");
    }

    /**
     * Rows {@code [r0, r1)} of a {@code rows × n} Q8_0 matrix kept in {@link Q8Tiles} at {@code w[wOff..]},
     * against activations quantized by {@link Q8Blocks#quantizeActivations}; {@code r0} must start a tile (a multiple
     * of {@link Q8Tiles#ROWS}). The scalar implementation is {@link Q8Tiles#matmul}; the vector one is bit-identical.
     * {@code qf}: the same quants as floats, or null (the vector kernel then runs one entry per pass).
     */
    void matmulQ8Tiled(byte[] w, int wOff, int n, int rows, int r0, int r1, short[] qx, float[] qf, float[] dx,
                       int batch, float[] out, int outOff, int outStride) {
        Q8Tiles.matmul(w, wOff, n, rows, r0, r1, qx, dx, batch, out, outOff, outStride);
    }

    /** {@link Q8Blocks#quantizeActivations}; the vector implementation gives the same bits. */
    void quantizeQ8(float[] x, int xStride, int batch, int n, short[] qx, float[] dx) {
        Q8Blocks.quantizeActivations(x, xStride, batch, n, qx, dx);
    }

    /** {@code Σ_j a[aOff + j] · b[bOff + j]}. */
    abstract float dot(float[] a, int aOff, float[] b, int bOff, int n);

    /** {@code y[yOff + j] += alpha · x[xOff + j]}. */
    abstract void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n);

    /**
     * One attention head over positions {@code [0, len)}: {@code scores[t] = (q · k_t) / scale}, softmax, then
     * {@code out[outOff ..+hs) = Σ_t scores[t] · v_t}, where {@code k_t} starts at {@code cache[kBase + t·stride]}
     * and {@code v_t} at {@code cache[vBase + t·stride]}. The scalar version is run.c's loop, term for term.
     */
    void attendHead(float[] q, int qOff, float[] cache, int kBase, int vBase, int stride, int len, int hs,
                    float scale, float[] scores, float[] out, int outOff) {
        for (int t = 0; t < len; t++) {
            scores[t] = dot(q, qOff, cache, kBase + t * stride, hs) / scale;
        }
        softmaxScores(scores, len);
        java.util.Arrays.fill(out, outOff, outOff + hs, 0f);
        for (int t = 0; t < len; t++) {
            axpy(scores[t], cache, vBase + t * stride, out, outOff, hs);
        }
    }

    /**
     * run.c's SwiGLU gate over {@code count} hidden units: the w1 outputs at {@code h[gateOff ..+count)}, the w3
     * outputs at {@code h[upOff ..+count)}; writes {@code hb[o + i] = silu(w1_i) · w3_i}.
     */
    void swiglu(float[] h, int gateOff, int upOff, int count, float[] hb, int o) {
        for (int i = 0; i < count; i++) {
            float v = h[gateOff + i];
            v *= (1.0f / (1.0f + (float) Math.exp(-v)));
            v *= h[upOff + i];
            hb[o + i] = v;
        }
    }

    /** The softmax {@link #attendHead} applies to its scores: run.c's ({@link #softmax}) unless a kernel set has its own. */
    void softmaxScores(float[] x, int size) {
        softmax(x, size);
    }

    /** run.c's softmax over {@code x[0, size)}: subtract the max, exponentiate, normalise. */
    static void softmax(float[] x, int size) {
        float max = x[0];
        for (int i = 1; i < size; i++) {
            if (x[i] > max) {
                max = x[i];
            }
        }
        float sum = 0.0f;
        for (int i = 0; i < size; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < size; i++) {
            x[i] /= sum;
        }
    }
}
