package io.spotserve.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.StagedSlice;
import io.spotserve.model.ModelWeights;
import io.spotserve.plan.DeviceId;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A real executor seen through a meter: after every call that allocates device memory (weight loads and imports,
 * staged imports, sequences opened) it samples every device's used bytes and keeps each device's peak. With
 * {@code batches} it also says {@link Executor#batchesTransfers} and records the size of every {@link #transferAll}
 * call, moving the slices one by one underneath (sampled after each), so a migration can be compared with the staged
 * one slice at a time on the same devices.
 */
final class MeteredExecutor extends ForwardingExecutor {
    private final boolean batches;
    private final List<Device> devices = new ArrayList<>();
    private final Map<DeviceId, Long> peaks = new LinkedHashMap<>();
    private final List<Integer> transferCalls = new ArrayList<>();
    private int kvSlicesTransferred;

    MeteredExecutor(Executor real, boolean batches) {
        super(real);
        this.batches = batches;
    }

    /** Each device's highest used bytes seen after an allocating call. */
    Map<DeviceId, Long> peaks() {
        return Map.copyOf(peaks);
    }

    /** The number of slices of each {@link #transferAll} call, in order. */
    List<Integer> transferCalls() {
        return List.copyOf(transferCalls);
    }

    /** KV-cache slices among those {@link #transferAll} moved. */
    int kvSlicesTransferred() {
        return kvSlicesTransferred;
    }

    /** Forgets the peaks seen so far (call after setting up the old deployment). */
    void resetPeaks() {
        peaks.clear();
        sample();
    }

    private void sample() {
        for (Device d : devices) {
            peaks.merge(d.id(), d.usedBytes(), Math::max);
        }
    }

    @Override
    public Device createDevice(DeviceId id, long capacityBytes) {
        Device d = real.createDevice(id, capacityBytes);
        devices.add(d);
        return d;
    }

    @Override
    public void destroyDevice(Device device) {
        devices.remove(device);
        real.destroyDevice(device);
    }

    @Override
    public Pipeline createPipeline(ShardLayout layout, List<? extends Device> devs, int maxBatch) {
        Pipeline p = new Metered(real.createPipeline(layout, devs, maxBatch));
        sample();
        return p;
    }

    @Override
    public boolean batchesTransfers() {
        return batches;
    }

    @Override
    public List<ContextSlice> transferAll(Pipeline from, int fromStage, int fromShard, List<ContextSlice> slices,
                                          Pipeline to, int toStage, int toShard) {
        transferCalls.add(slices.size());
        for (ContextSlice s : slices) {
            if (s instanceof ContextSlice.KvCache) {
                kvSlicesTransferred++;
            }
        }
        return super.transferAll(from, fromStage, fromShard, slices, to, toStage, toShard);
    }

    private final class Metered extends ForwardingPipeline {
        Metered(Pipeline p) {
            super(p);
        }

        @Override
        public void loadWeights(ModelWeights checkpoint) {
            delegate.loadWeights(checkpoint);
            sample();
        }

        @Override
        public ContextSlice importSlice(int stage, int shard, byte[] bytes) {
            ContextSlice s = delegate.importSlice(stage, shard, bytes);
            sample();
            return s;
        }

        @Override
        public ContextSlice importStaged(int stage, int shard, StagedSlice staged) {
            ContextSlice s = delegate.importStaged(stage, shard, staged);
            sample();
            return s;
        }

        @Override
        public void openSequence(long sequence, int capacity) {
            delegate.openSequence(sequence, capacity);
            sample();
        }
    }
}
