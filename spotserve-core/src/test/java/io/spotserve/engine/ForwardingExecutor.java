package io.spotserve.engine;

import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.plan.DeviceId;
import java.util.List;

/**
 * An executor that forwards every call to a real one; test executors override what they observe or change (as
 * {@link ForwardingPipeline} does for pipelines). {@link #close} does not close the real executor: its owner does.
 */
abstract class ForwardingExecutor implements Executor {
    protected final Executor real;

    ForwardingExecutor(Executor real) {
        this.real = real;
    }

    @Override
    public String name() {
        return real.name();
    }

    @Override
    public ExecutorOptions options() {
        return real.options();
    }

    @Override
    public int storedBytesPerWeight() {
        return real.storedBytesPerWeight();
    }

    @Override
    public double storedBytesPerWeightExact() {
        return real.storedBytesPerWeightExact();
    }

    @Override
    public Device createDevice(DeviceId id, long capacityBytes) {
        return real.createDevice(id, capacityBytes);
    }

    @Override
    public void destroyDevice(Device device) {
        real.destroyDevice(device);
    }

    @Override
    public Pipeline createPipeline(ShardLayout layout, List<? extends Device> devices, int maxBatch) {
        return real.createPipeline(layout, devices, maxBatch);
    }

    @Override
    public void close() {
    }
}
