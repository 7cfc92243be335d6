package io.spotserve.exec.cpu;

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

/**
 * The pure-Java executor: devices are byte budgets in the JVM heap, kernels are scalar or Vector API, and
 * one {@link WorkerPool} of {@link ExecutorOptions#threads()} threads runs every pipeline's parallel loops
 * (pipelines driven from different threads take turns on it).
 */
public final class CpuExecutor implements Executor {
    private final ExecutorOptions options;
    private final Kernels kernels;
    private final WorkerPool pool;
    private final Map<DeviceId, CpuDevice> devices = new HashMap<>();
    private final Set<CpuPipeline> pipelines = Collections.newSetFromMap(new IdentityHashMap<>());
    private boolean closed;

    /** An executor with the given options; the vector kernels are used when allowed and the module is present. */
    public CpuExecutor(ExecutorOptions options) {
        this.options = Objects.requireNonNull(options, "options");
        this.kernels = Kernels.create(options.useVector());
        this.pool = new WorkerPool(options.threads(), "spotserve-cpu");
    }

    @Override
    public String name() {
        return "cpu-" + kernels.name();
    }

    @Override
    public ExecutorOptions options() {
        return options;
    }

    /** Whether the Vector API kernels are in use. */
    public boolean vectorized() {
        return !(kernels instanceof ScalarKernels);
    }

    Kernels kernels() {
        return kernels;
    }

    WorkerPool pool() {
        return pool;
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
        CpuDevice d = new CpuDevice(this, id, capacityBytes);
        devices.put(id, d);
        return d;
    }

    @Override
    public synchronized void destroyDevice(Device device) {
        Objects.requireNonNull(device, "device");
        if (!(device instanceof CpuDevice cd) || cd.owner() != this || devices.get(cd.id()) != cd) {
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
        List<CpuDevice> cpu = new ArrayList<>(positions);
        for (int i = 0; i < positions; i++) {
            Device d = devices.get(i);
            if (!(d instanceof CpuDevice cd) || cd.owner() != this) {
                throw new IllegalArgumentException("device " + i + " (" + d + ") was not created by this executor");
            }
            cpu.add(cd);
        }
        CpuPipeline p = new CpuPipeline(this, layout, cpu, maxBatch);
        pipelines.add(p);
        return p;
    }

    synchronized void closed(CpuPipeline pipeline) {
        pipelines.remove(pipeline);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("executor " + name() + " is closed");
        }
    }

    @Override
    public void close() {
        List<CpuPipeline> open;
        synchronized (this) {
            if (closed) {
                return;
            }
            open = new ArrayList<>(pipelines);
        }
        for (CpuPipeline p : open) {
            p.close();
        }
        synchronized (this) {
            closed = true;
        }
        pool.close();
    }

    @Override
    public String toString() {
        return "CpuExecutor[" + name() + ", " + options.threads() + " threads]";
    }
}
