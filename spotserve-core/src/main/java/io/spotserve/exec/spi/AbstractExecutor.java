package io.spotserve.exec.spi;

import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.IndexRange;
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
 * The backend-independent part of an {@link Executor}, for executor implementors: the registry of devices
 * (one arena per {@link DeviceId}, destroyed only when empty), the checks of {@link #createPipeline} (one
 * device of this executor per position, stage-major), the set of open pipelines and an orderly close. A
 * backend supplies how a device and a pipeline are made and what else it frees on close.
 *
 * @param <D> the backend's device type
 * @param <P> the backend's pipeline type
 */
public abstract class AbstractExecutor<D extends ArenaDevice, P extends Pipeline> implements Executor {
    private final ExecutorOptions options;
    private final Class<D> deviceType;
    private final Map<DeviceId, D> devices = new HashMap<>();
    private final Set<P> pipelines = Collections.newSetFromMap(new IdentityHashMap<>());
    private boolean closed;

    /** An open executor with {@code options} whose devices are instances of {@code deviceType}. */
    protected AbstractExecutor(ExecutorOptions options, Class<D> deviceType) {
        this.options = Objects.requireNonNull(options, "options");
        this.deviceType = deviceType;
    }

    /** A new, empty device arena owned by this executor. */
    protected abstract D newDevice(DeviceId id, long capacityBytes);

    /** A new pipeline over checked arguments: {@code devices} are this executor's, one per position. */
    protected abstract P newPipeline(ShardLayout layout, List<D> devices, int maxBatch);

    /**
     * A new partial pipeline hosting {@code stages} over checked arguments ({@link Executor#createStages}); the
     * default refuses, as a backend that cannot run one stage at a time.
     */
    protected P newStagePipeline(ShardLayout layout, IndexRange stages, List<D> devices, int maxBatch) {
        throw new UnsupportedOperationException(name() + " cannot build partial pipelines (stages " + stages + ")");
    }

    /**
     * A new pipeline hosting shards {@code shards} (a strict subset of the M) of {@code stages}, over checked arguments
     * ({@link Executor#createShardGroup}); the default refuses, as a backend that cannot split a tensor group.
     */
    protected P newGroupPipeline(ShardLayout layout, IndexRange stages, IndexRange shards, List<D> devices,
                                 int maxBatch) {
        throw new UnsupportedOperationException(name() + " cannot split tensor groups (stages " + stages + ", shards "
                + shards + ")");
    }

    /** Frees the backend's own resources after every pipeline is closed (called once, without the lock). */
    protected void closeResources() {
    }

    @Override
    public final ExecutorOptions options() {
        return options;
    }

    @Override
    public final synchronized Device createDevice(DeviceId id, long capacityBytes) {
        Objects.requireNonNull(id, "id");
        checkOpen();
        if (capacityBytes < 0) {
            throw new IllegalArgumentException("device " + id + " capacity must be >= 0 bytes, was " + capacityBytes);
        }
        if (devices.containsKey(id)) {
            throw new IllegalArgumentException("device " + id + " already exists in this executor");
        }
        D d = newDevice(id, capacityBytes);
        devices.put(id, d);
        return d;
    }

    @Override
    public final synchronized void destroyDevice(Device device) {
        Objects.requireNonNull(device, "device");
        if (!deviceType.isInstance(device) || !((ArenaDevice) device).ownedBy(this)
                || devices.get(device.id()) != device) {
            throw new IllegalArgumentException("device " + device + " does not belong to this executor");
        }
        if (device.usedBytes() != 0) {
            throw new IllegalStateException("device " + device.id() + " still holds " + device.usedBytes()
                    + " bytes; close or release the pipelines placed on it first");
        }
        devices.remove(device.id());
        destroyed(deviceType.cast(device));
    }

    /** Called after {@code device} was destroyed (it holds no bytes): the backend drops what it kept for it. */
    protected void destroyed(D device) {
    }

    @Override
    public final synchronized Pipeline createPipeline(ShardLayout layout, List<? extends Device> devices, int maxBatch) {
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
        List<D> own = new ArrayList<>(positions);
        for (int i = 0; i < positions; i++) {
            Device d = devices.get(i);
            if (!deviceType.isInstance(d) || !((ArenaDevice) d).ownedBy(this)) {
                throw new IllegalArgumentException("device " + i + " (" + d + ") was not created by this executor");
            }
            own.add(deviceType.cast(d));
        }
        P p = newPipeline(layout, own, maxBatch);
        pipelines.add(p);
        return p;
    }

    @Override
    public final synchronized Pipeline createStages(ShardLayout layout, IndexRange stages, List<? extends Device> devices,
                                                    int maxBatch) {
        Objects.requireNonNull(layout, "layout");
        Objects.requireNonNull(stages, "stages");
        Objects.requireNonNull(devices, "devices");
        checkOpen();
        if (stages.isEmpty() || stages.to() > layout.stages()) {
            throw new IllegalArgumentException("hosted stages " + stages + " must be a non-empty range inside [0, "
                    + layout.stages() + ") of " + layout);
        }
        P p = newStagePipeline(layout, stages, ownDevices(layout, stages, new IndexRange(0, layout.shards()), devices,
                maxBatch), maxBatch);
        pipelines.add(p);
        return p;
    }

    @Override
    public final synchronized Pipeline createShardGroup(ShardLayout layout, IndexRange stages, IndexRange shards,
                                                        List<? extends Device> devices, int maxBatch) {
        Objects.requireNonNull(layout, "layout");
        Objects.requireNonNull(stages, "stages");
        Objects.requireNonNull(shards, "shards");
        Objects.requireNonNull(devices, "devices");
        checkOpen();
        if (stages.isEmpty() || stages.to() > layout.stages()) {
            throw new IllegalArgumentException("hosted stages " + stages + " must be a non-empty range inside [0, "
                    + layout.stages() + ") of " + layout);
        }
        if (shards.isEmpty() || shards.to() > layout.shards()) {
            throw new IllegalArgumentException("hosted shards " + shards + " must be a non-empty range inside [0, "
                    + layout.shards() + ") of " + layout);
        }
        List<D> own = ownDevices(layout, stages, shards, devices, maxBatch);
        P p = shards.length() == layout.shards() ? newStagePipeline(layout, stages, own, maxBatch)
                : newGroupPipeline(layout, stages, shards, own, maxBatch);
        pipelines.add(p);
        return p;
    }

    /** Checks a partial pipeline's devices (one of this executor's per hosted position) and maxBatch. */
    private List<D> ownDevices(ShardLayout layout, IndexRange stages, IndexRange shards, List<? extends Device> devices,
                               int maxBatch) {
        int positions = stages.length() * shards.length();
        if (devices.size() != positions) {
            throw new IllegalArgumentException("stages " + stages + (shards.length() == layout.shards() ? ""
                    : " x shards " + shards) + " of " + layout + " have " + positions + " positions but "
                    + devices.size() + " devices were given (stage-major from stage " + stages.from() + ")");
        }
        if (maxBatch < 1) {
            throw new IllegalArgumentException("maxBatch must be >= 1, was " + maxBatch);
        }
        List<D> own = new ArrayList<>(positions);
        for (int i = 0; i < positions; i++) {
            Device d = devices.get(i);
            if (!deviceType.isInstance(d) || !((ArenaDevice) d).ownedBy(this)) {
                throw new IllegalArgumentException("device " + i + " (" + d + ") was not created by this executor");
            }
            own.add(deviceType.cast(d));
        }
        return own;
    }

    /** Forgets a pipeline that has closed itself. */
    protected final synchronized void pipelineClosed(P pipeline) {
        pipelines.remove(pipeline);
    }

    /** Whether {@code pipeline} is an open pipeline of this executor. */
    protected final synchronized boolean isOpen(Pipeline pipeline) {
        return pipelines.contains(pipeline);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("executor " + name() + " is closed");
        }
    }

    @Override
    public final void close() {
        List<P> open;
        synchronized (this) {
            if (closed) {
                return;
            }
            open = new ArrayList<>(pipelines);
        }
        for (P p : open) {
            p.close();
        }
        synchronized (this) {
            closed = true;
        }
        closeResources();
    }
}
