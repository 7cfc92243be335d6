package io.spotserve.exec.cpu;

import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.spi.AbstractExecutor;
import io.spotserve.plan.DeviceId;
import java.util.List;

/**
 * The pure-Java executor: devices are byte budgets in the JVM heap, kernels are scalar or Vector API, and
 * one {@link WorkerPool} of {@link ExecutorOptions#threads()} threads runs every pipeline's parallel loops
 * (pipelines driven from different threads take turns on it).
 */
public final class CpuExecutor extends AbstractExecutor<CpuDevice, CpuPipeline> {
    private final Kernels kernels;
    private final WorkerPool pool;
    private final int packMinColumns;

    /** An executor with the given options; the vector kernels are used when allowed and the module is present. */
    public CpuExecutor(ExecutorOptions options) {
        this(options, StageShard.PACK_MIN_COLUMNS);
    }

    /** Tests: vector-kernel layer matrices with at least {@code packMinColumns} columns use the packed layout. */
    CpuExecutor(ExecutorOptions options, int packMinColumns) {
        super(options, CpuDevice.class);
        this.packMinColumns = packMinColumns;
        this.kernels = Kernels.create(options.useVector());
        this.pool = new WorkerPool(options.threads(), "spotserve-cpu");
    }

    @Override
    public String name() {
        return "cpu-" + kernels.name();
    }

    /**
     * 4 for fp32 and fp16 weights (the CPU computes fp16-precision weights from floats); for
     * {@link io.spotserve.exec.WeightPrecision#Q8_0}, 2: the exact 34 / 32 rounded up for callers that count whole
     * bytes ({@link #storedBytesPerWeightExact()} gives 1.0625).
     */
    @Override
    public int storedBytesPerWeight() {
        return (int) Math.ceil(storedBytesPerWeightExact());
    }

    /** 4, or 1.0625 with {@link io.spotserve.exec.WeightPrecision#Q8_0} weights (34 bytes per 32 weights). */
    @Override
    public double storedBytesPerWeightExact() {
        return options().weights() == io.spotserve.exec.WeightPrecision.Q8_0
                ? io.spotserve.exec.WeightPrecision.Q8_0.bytesPerWeight() : Float.BYTES;
    }

    /** Whether the Vector API kernels are in use. */
    public boolean vectorized() {
        return !(kernels instanceof ScalarKernels);
    }

    Kernels kernels() {
        return kernels;
    }

    int packMinColumns() {
        return packMinColumns;
    }

    WorkerPool pool() {
        return pool;
    }

    @Override
    protected CpuDevice newDevice(DeviceId id, long capacityBytes) {
        return new CpuDevice(this, id, capacityBytes);
    }

    @Override
    protected void destroyed(CpuDevice device) {
        device.dropSpares();
    }

    @Override
    protected CpuPipeline newPipeline(ShardLayout layout, List<CpuDevice> devices, int maxBatch) {
        return new CpuPipeline(this, layout, devices, maxBatch);
    }

    @Override
    protected CpuPipeline newStagePipeline(ShardLayout layout, IndexRange stages, List<CpuDevice> devices, int maxBatch) {
        return new CpuPipeline(this, layout, stages, devices, maxBatch);
    }

    @Override
    protected CpuPipeline newGroupPipeline(ShardLayout layout, IndexRange stages, IndexRange shards,
                                           List<CpuDevice> devices, int maxBatch) {
        return new CpuPipeline(this, layout, stages, shards, devices, maxBatch);
    }

    void closed(CpuPipeline pipeline) {
        pipelineClosed(pipeline);
    }

    @Override
    protected void closeResources() {
        pool.close();
    }

    @Override
    public String toString() {
        return "CpuExecutor[" + name() + ", " + options().threads() + " threads]";
    }
}
