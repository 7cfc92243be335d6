package io.spotserve.cuda;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.spi.AbstractExecutor;
import io.spotserve.plan.DeviceId;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.driver.CUdeviceptr;

/**
 * The GPU executor (DESIGN.md §2.5 behind the same SPI as the CPU one): a {@link DeviceId} maps to GPU
 * {@code gpu mod deviceCount}, each GPU gets one {@link CudaContext} (primary context, stream, kernel
 * module), and pipelines run the LLaMA forward pass with our PTX kernels. {@link ExecutorOptions#threads()}
 * and {@code useVector} do not apply to the GPU and are only reported.
 */
public final class CudaExecutor extends AbstractExecutor<CudaDevice, CudaPipeline> {
    /**
     * System property: {@code -Dspotserve.cuda.graphs=false} runs every step kernel by kernel (no CUDA graphs);
     * read at each step.
     */
    public static final String GRAPHS_PROPERTY = "spotserve.cuda.graphs";

    private final int gpus;
    private final Map<Integer, CudaContext> contexts = new HashMap<>();
    private final Map<Integer, CublasGemm> cublas = new HashMap<>();
    private final boolean useCublas;

    /**
     * An executor on this machine's GPUs.
     *
     * @throws IllegalStateException if CUDA is not usable here
     */
    public CudaExecutor(ExecutorOptions options) {
        super(options, CudaDevice.class);
        CudaProbe.Result probe = CudaProbe.get();
        if (!probe.usable()) {
            throw new IllegalStateException("CUDA executor not usable here: " + probe.reason());
        }
        this.gpus = probe.devices();
        this.useCublas = probe.cublas() && Boolean.getBoolean(CublasGemm.PROPERTY);
    }

    /**
     * fp16 weights are stored as halves (2 bytes), and so are Q8_0 ones (dequantized on upload and rounded to halves:
     * there is no Q8_0 kernel yet); fp32 ones as floats.
     */
    @Override
    public int storedBytesPerWeight() {
        return storesHalves(options().weights()) ? 2 : Float.BYTES;
    }

    /** Whether weights of {@code precision} live on the device as halves: fp16, and Q8_0 dequantized on upload. */
    static boolean storesHalves(io.spotserve.exec.WeightPrecision precision) {
        return precision == io.spotserve.exec.WeightPrecision.FP16 || precision == io.spotserve.exec.WeightPrecision.Q8_0;
    }

    @Override
    public String name() {
        return useCublas ? "cuda+cublas" : "cuda";
    }

    synchronized CudaContext context(int gpu) {
        return contexts.computeIfAbsent(Math.floorMod(gpu, gpus), CudaContext::new);
    }

    /**
     * out[b][r] = (accumulate ? out[b][r] : 0) + W[r]·x[b] for r < rows, b < batch, W fp16 when {@code half}:
     * cuBLAS for large fp32 batches when enabled, else our gemv kernels.
     */
    void gemv(CudaContext ctx, CUdeviceptr w, boolean half, int n, int rows, CUdeviceptr x, int xStride, int batch,
              CUdeviceptr out, int outStride, boolean accumulate) {
        if (useCublas && !half && batch >= CublasGemm.MIN_BATCH) {
            CublasGemm g;
            synchronized (this) {
                g = cublas.computeIfAbsent(ctx.ordinal, k -> new CublasGemm(ctx));
            }
            g.gemm(w, n, rows, x, xStride, batch, out, outStride, accumulate);
        } else {
            ctx.launch(half ? "gemv_f16" : "gemv_f32", Launch.gemv(rows), w, n, rows, x, xStride, batch, out, outStride,
                    accumulate ? 1 : 0);
        }
    }

    /** Whether the decode step may be captured into CUDA graphs (cuBLAS calls are left out of graphs). */
    boolean graphsAllowed() {
        return !useCublas && !"false".equalsIgnoreCase(System.getProperty(GRAPHS_PROPERTY));
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
        if (!(p instanceof CudaPipeline cp) || !isOpen(cp)) {
            throw new IllegalArgumentException(role + " pipeline " + p + " is not an open CUDA pipeline of this executor");
        }
        return cp;
    }

    @Override
    protected CudaDevice newDevice(DeviceId id, long capacityBytes) {
        return new CudaDevice(this, id, capacityBytes, context(id.gpu()));
    }

    @Override
    protected CudaPipeline newPipeline(ShardLayout layout, List<CudaDevice> devices, int maxBatch) {
        return new CudaPipeline(this, layout, devices, maxBatch);
    }

    @Override
    protected CudaPipeline newStagePipeline(ShardLayout layout, IndexRange stages, List<CudaDevice> devices,
                                            int maxBatch) {
        return new CudaPipeline(this, layout, stages, devices, maxBatch);
    }

    @Override
    protected CudaPipeline newGroupPipeline(ShardLayout layout, IndexRange stages, IndexRange shards,
                                            List<CudaDevice> devices, int maxBatch) {
        return new CudaPipeline(this, layout, stages, shards, devices, maxBatch);
    }

    void closed(CudaPipeline pipeline) {
        pipelineClosed(pipeline);
    }

    @Override
    protected synchronized void closeResources() {
        for (CublasGemm g : cublas.values()) {
            g.close();
        }
        cublas.clear();
        for (CudaContext c : contexts.values()) {
            c.close();
        }
        contexts.clear();
    }

    @Override
    public String toString() {
        return "CudaExecutor[" + name() + ", " + gpus + " GPU(s)]";
    }
}
