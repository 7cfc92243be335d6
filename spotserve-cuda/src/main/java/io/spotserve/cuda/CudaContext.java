package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuFuncGetAttribute;
import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/**
 * One GPU as the executor uses it: its primary context, one stream every kernel and copy of this executor
 * runs on (in issue order, so no event bookkeeping is needed within a GPU), and our kernel module loaded from
 * the committed PTX. Closing unloads the module, destroys the stream and releases the primary context.
 *
 * <p>Every driver call throws {@link jcuda.CudaException} on a non-success status
 * ({@link JCudaDriver#setExceptionsEnabled}), so no status is ever ignored.
 */
final class CudaContext implements AutoCloseable {
    /** Class-path resource of the kernels' PTX. */
    static final String PTX_RESOURCE = "/io/spotserve/cuda/spotserve_kernels.ptx";

    /** Every kernel entry point the Java side launches (a test checks each exists in the PTX). */
    static final List<String> KERNELS = List.of("gemv_f32", "gemv_f16", "f32_to_f16", "rmsnorm", "rmsnorm_select",
            "rope_store", "attention", "swiglu", "add_inplace", "embed", "argmax_rows", "softmax_rows", "rmsnorm_h",
            "rmsnorm_select_h", "embed_h");

    final int ordinal;
    private final CUdevice device = new CUdevice();
    final CUcontext context = new CUcontext();
    final CUstream stream = new CUstream();
    private final CUmodule module = new CUmodule();
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final int attentionSharedLimit;
    private boolean closed;

    CudaContext(int ordinal) {
        JCudaDriver.setExceptionsEnabled(true);
        this.ordinal = ordinal;
        cuDeviceGet(device, ordinal);
        cuDevicePrimaryCtxRetain(context, device);
        try {
            cuCtxSetCurrent(context);
            // CU_STREAM_DEFAULT: ordered with the legacy default stream, so the synchronous cuMemcpy calls used
            // for host transfers need no extra synchronisation with kernels on this stream
            cuStreamCreate(stream, CUstream_flags.CU_STREAM_DEFAULT);
            cuModuleLoadData(module, ptx());
            for (String k : KERNELS) {
                CUfunction f = new CUfunction();
                cuModuleGetFunction(f, module, k);
                functions.put(k, f);
            }
            attentionSharedLimit = optInAttentionShared();
        } catch (RuntimeException e) {
            cuDevicePrimaryCtxRelease(device);
            throw e;
        }
    }

    /**
     * Lets the attention kernel use all the dynamic shared memory a block may opt in to on this GPU (227 KiB on
     * an H100, 99 KiB on an A10 or L4, 64 KiB on a T4) instead of the default 48 KiB, so the longest context is
     * that many floats; returns the dynamic bytes a block of it may use.
     */
    private int optInAttentionShared() {
        CUfunction f = functions.get("attention");
        int[] staticBytes = new int[1];
        cuFuncGetAttribute(staticBytes, CUfunction_attribute.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, f);
        int[] optIn = new int[1];
        cuDeviceGetAttribute(optIn, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, device);
        int limit = Math.max(optIn[0], Launch.DEFAULT_SHARED_BYTES) - staticBytes[0];
        if (limit > Launch.DEFAULT_SHARED_BYTES - staticBytes[0]) {
            cuFuncSetAttribute(f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, limit);
        }
        return limit;
    }

    /** Dynamic shared bytes a block of the attention kernel may use on this GPU. */
    int attentionSharedLimit() {
        return attentionSharedLimit;
    }

    /** The kernels' parameter lists, parsed from the committed PTX on first use. */
    static final class Signatures {
        static final KernelSignatures ALL = load();

        private Signatures() {
        }

        private static KernelSignatures load() {
            byte[] z = ptx();
            return KernelSignatures.parse(new String(z, 0, z.length - 1, java.nio.charset.StandardCharsets.US_ASCII));
        }
    }

    /** The PTX text, NUL-terminated as cuModuleLoadData expects. */
    static byte[] ptx() {
        try (InputStream in = CudaContext.class.getResourceAsStream(PTX_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("kernel PTX " + PTX_RESOURCE + " missing from the class path");
            }
            byte[] text = in.readAllBytes();
            byte[] z = new byte[text.length + 1];
            System.arraycopy(text, 0, z, 0, text.length);
            return z;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + PTX_RESOURCE, e);
        }
    }

    /** Makes this GPU's context current on the calling thread (cheap; done before every batch of calls). */
    void makeCurrent() {
        cuCtxSetCurrent(context);
    }

    /** Waits for everything issued on this GPU's stream. */
    void sync() {
        cuStreamSynchronize(stream);
    }

    /**
     * Launches kernel {@code name} on this GPU's stream. Arguments: {@link CUdeviceptr} (pointer parameters),
     * Integer (int), Long (long long / unsigned long long), Float (float).
     */
    void launch(String name, Launch.Config cfg, Object... args) {
        CUfunction f = functions.get(name);
        if (f == null) {
            throw new IllegalArgumentException("kernel " + name + " unknown; expected one of " + KERNELS);
        }
        Signatures.ALL.check(name, args);
        Pointer[] ps = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a instanceof CUdeviceptr p) {
                ps[i] = Pointer.to(p);
            } else if (a instanceof Integer v) {
                ps[i] = Pointer.to(new int[] {v});
            } else if (a instanceof Long v) {
                ps[i] = Pointer.to(new long[] {v});
            } else if (a instanceof Float v) {
                ps[i] = Pointer.to(new float[] {v});
            } else {
                throw new IllegalArgumentException("kernel " + name + " argument " + i + " has unsupported type "
                        + (a == null ? "null" : a.getClass().getName()));
            }
        }
        cuLaunchKernel(f, cfg.gridX(), cfg.gridY(), 1, cfg.blockX(), 1, 1, cfg.sharedBytes(), stream,
                Pointer.to(ps), null);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            cuCtxSetCurrent(context);
            cuStreamSynchronize(stream);
            cuModuleUnload(module);
            cuStreamDestroy(stream);
        } finally {
            cuDevicePrimaryCtxRelease(device);
        }
    }

    @Override
    public String toString() {
        return "CudaContext[gpu " + ordinal + "]";
    }
}
