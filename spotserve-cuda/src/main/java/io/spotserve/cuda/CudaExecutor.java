package io.spotserve.cuda;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.plan.DeviceId;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import jcuda.driver.CUdeviceptr;

/**
 * The GPU executor (DESIGN.md §2.5 behind the same SPI as the CPU one): a {@link DeviceId} maps to GPU
 * {@code gpu mod deviceCount}, each GPU gets one {@link CudaContext} (primary context, stream, kernel
 * module), and pipelines run the LLaMA forward pass with our PTX kernels. {@link ExecutorOptions#threads()}
 * and {@code useVector} do not apply to the GPU and are only reported.
 */
public final class CudaExecutor implements Executor {
    private final ExecutorOptions options;
    private final int gpus;
    private final Map<Integer, CudaContext> contexts = new HashMap<>();
    private final Map<Integer, CublasGemm> cublas = new HashMap<>();
    private final boolean useCublas;
    private final Map<DeviceId, CudaDevice> devices = new HashMap<>();
    private final Set<CudaPipeline> pipelines = Collections.newSetFromMap(new IdentityHashMap<>());
    private boolean closed;

    /**
     * An executor on this machine's GPUs.
     *
     * @throws IllegalStateException if CUDA is not usable here
     */
    public CudaExecutor(ExecutorOptions options) {
        this.options = Objects.requireNonNull(options, "options");
        CudaProbe.Result probe = CudaProbe.get();
        if (!probe.usable()) {
            throw new IllegalStateException("CUDA executor not usable here: " + probe.reason());
        }
        this.gpus = probe.devices();
        this.useCublas = probe.cublas() && Boolean.getBoolean(CublasGemm.PROPERTY);
    }

    @Override
    public String name() {
        return useCublas ? "cuda+cublas" : "cuda";
    }

    @Override
    public ExecutorOptions options() {
        return options;
    }

    synchronized CudaContext context(int gpu) {
        return contexts.computeIfAbsent(Math.floorMod(gpu, gpus), CudaContext::new);
    }

    /** out[b][r] = W[r]·x[b] for r < rows, b < batch: cuBLAS for large batches when enabled, else our gemv. */
    void gemv(CudaContext ctx, CUdeviceptr w, int n, int rows, CUdeviceptr x, int xStride, int batch, CUdeviceptr out,
              int outStride) {
        if (useCublas && batch >= CublasGemm.MIN_BATCH) {
            CublasGemm g;
            synchronized (this) {
                g = cublas.computeIfAbsent(ctx.ordinal, k -> new CublasGemm(ctx));
            }
            g.gemm(w, n, rows, x, xStride, batch, out, outStride);
        } else {
            ctx.launch("gemv_f32", Launch.gemv(rows), w, n, rows, x, xStride, batch, out, outStride);
        }
    }

    /**
     * Moves one context slice between two CUDA pipelines of this executor device to device (peer copies across
     * GPUs), the fast path of SpotServe's context migration (§3.3–3.4); equivalent to
     * {@code to.importSlice(toStage, toShard, from.exportSlice(fromStage, fromShard, slice))}.
     *
     * @return the slice that was moved
     * @throws IllegalArgumentException if a pipeline is not a CUDA pipeline of this executor, the source does not
     *                                  hold the slice or the destination does not own it; nothing changes then
     * @throws io.spotserve.exec.DeviceMemoryException if the destination device cannot hold new storage
     */
    public ContextSlice copySlice(Pipeline from, int fromStage, int fromShard, Pipeline to, int toStage, int toShard,
                                  ContextSlice slice) {
        CudaPipeline src = own(from, "source");
        CudaPipeline dst = own(to, "destination");
        return src.copySliceTo(fromStage, fromShard, slice, dst, toStage, toShard);
    }

    private synchronized CudaPipeline own(Pipeline p, String role) {
        if (!(p instanceof CudaPipeline cp) || !pipelines.contains(cp)) {
            throw new IllegalArgumentException(role + " pipeline " + p + " is not an open CUDA pipeline of this executor");
        }
        return cp;
    }

    @Override
    public synchronized Device createDevice(DeviceId id, long capacityBytes) {
        Objects.requireNonNull(id, "id");
        checkOpen();
        if (capacityBytes < 0) {
            throw new IllegalArgumentException("device " + id + " capacity must be >= 0 bytes, was " + capacityBytes);
        }
        if (devices.containsKey(id)) {
            throw new IllegalArgumentException("device " + id + " already exists in this executor");
        }
        CudaDevice d = new CudaDevice(this, id, capacityBytes, context(id.gpu()));
        devices.put(id, d);
        return d;
    }

    @Override
    public synchronized void destroyDevice(Device device) {
        Objects.requireNonNull(device, "device");
        if (!(device instanceof CudaDevice cd) || cd.owner() != this || devices.get(cd.id()) != cd) {
            throw new IllegalArgumentException("device " + device + " does not belong to this executor");
        }
        if (cd.usedBytes() != 0) {
            throw new IllegalStateException("device " + cd.id() + " still holds " + cd.usedBytes()
                    + " bytes; close or release the pipelines placed on it first");
        }
        devices.remove(cd.id());
    }

    @Override
    public synchronized Pipeline createPipeline(ShardLayout layout, List<? extends Device> devices, int maxBatch) {
        Objects.requireNonNull(layout, "layout");
        Objects.requireNonNull(devices, "devices");
        checkOpen();
        int positions = layout.stages() * layout.shards();
        if (devices.size() != positions) {
            throw new IllegalArgumentException(layout + " has " + positions + " positions but " + devices.size()
                    + " devices were given (stage-major: index = stage * M + shard)");
        }
        if (maxBatch < 1) {
            throw new IllegalArgumentException("maxBatch must be >= 1, was " + maxBatch);
        }
        List<CudaDevice> cuda = new ArrayList<>(positions);
        for (int i = 0; i < positions; i++) {
            Device d = devices.get(i);
            if (!(d instanceof CudaDevice cd) || cd.owner() != this) {
                throw new IllegalArgumentException("device " + i + " (" + d + ") was not created by this executor");
            }
            cuda.add(cd);
        }
        CudaPipeline p = new CudaPipeline(this, layout, cuda, maxBatch);
        pipelines.add(p);
        return p;
    }

    synchronized void closed(CudaPipeline pipeline) {
        pipelines.remove(pipeline);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("executor " + name() + " is closed");
        }
    }

    @Override
    public void close() {
        List<CudaPipeline> open;
        synchronized (this) {
            if (closed) {
                return;
            }
            open = new ArrayList<>(pipelines);
        }
        for (CudaPipeline p : open) {
            p.close();
        }
        synchronized (this) {
            closed = true;
            for (CublasGemm g : cublas.values()) {
                g.close();
            }
            cublas.clear();
            for (CudaContext c : contexts.values()) {
                c.close();
            }
            contexts.clear();
        }
    }

    @Override
    public String toString() {
        return "CudaExecutor[" + name() + ", " + gpus + " GPU(s)]";
    }
}
