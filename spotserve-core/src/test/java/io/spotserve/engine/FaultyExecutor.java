package io.spotserve.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.DeviceLostException;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.ModelWeights;
import io.spotserve.plan.DeviceId;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A fault-injecting executor around a real one (the CPU executor): the devices of one <em>victim</em> instance die
 * at a chosen moment, like a worker process that is killed. From then on every call that would use them throws
 * {@link DeviceLostException} the way a remote executor does, and is recorded as a violation (the engine must not
 * use a lost instance again); freeing calls (close, closeSequence, releaseSlice, destroyDevice) pass through, since
 * they only clean up. The failure that kills it is thrown wrapped in another exception, so the engine has to look
 * down the cause chain.
 */
final class FaultyExecutor implements Executor {
    /** When the victim dies. */
    enum Trigger {
        /** at the n-th forward step of a pipeline that has a position on the victim */
        FORWARD,
        /** at the first weight import or load into a pipeline that has a position on the victim (a migration) */
        WEIGHT_LOAD
    }

    private final Executor real;
    private final String victim;
    private final Trigger trigger;
    private final int failAtForward;
    private final AtomicInteger victimForwards = new AtomicInteger();
    private volatile boolean fired;
    private final List<String> violations = new CopyOnWriteArrayList<>();

    FaultyExecutor(Executor real, String victim, Trigger trigger, int failAtForward) {
        this.real = real;
        this.victim = victim;
        this.trigger = trigger;
        this.failAtForward = failAtForward;
    }

    /** Whether the victim died. */
    boolean fired() {
        return fired;
    }

    /** Uses of the victim after it died. */
    List<String> violations() {
        return List.copyOf(violations);
    }

    private DeviceLostException lost(List<DeviceId> devices, String what) {
        return new DeviceLostException(devices, "worker " + victim + " died during " + what, null);
    }

    private List<DeviceId> victimDevices(List<? extends Device> devices) {
        List<DeviceId> out = new ArrayList<>();
        for (Device d : devices) {
            if (d.id().instance().equals(victim) && !out.contains(d.id())) {
                out.add(d.id());
            }
        }
        return out;
    }

    /** A call using {@code devices}: refused once the victim is dead. */
    private void use(List<? extends Device> devices, String what) {
        List<DeviceId> mine = victimDevices(devices);
        if (fired && !mine.isEmpty()) {
            violations.add(what + " on " + mine);
            throw lost(mine, what);
        }
    }

    /** The victim dies now, in the middle of {@code what}; thrown wrapped, as an RPC layer might. */
    private RuntimeException die(List<DeviceId> mine, String what) {
        fired = true;
        return new IllegalStateException("call failed: " + what, lost(mine, what));
    }

    @Override
    public String name() {
        return "faulty-" + real.name();
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
    public Device createDevice(DeviceId id, long capacityBytes) {
        if (fired && id.instance().equals(victim)) {
            violations.add("createDevice " + id);
            throw lost(List.of(id), "createDevice");
        }
        return real.createDevice(id, capacityBytes);
    }

    @Override
    public void destroyDevice(Device device) {
        real.destroyDevice(device);
    }

    @Override
    public Pipeline createPipeline(ShardLayout layout, List<? extends Device> devices, int maxBatch) {
        use(devices, "createPipeline");
        return new Faulty(real.createPipeline(layout, devices, maxBatch), List.copyOf(devices));
    }

    @Override
    public void close() {
        real.close();
    }

    /** A pipeline of the real executor whose victim positions die with the victim. */
    private final class Faulty extends ForwardingPipeline {
        private final List<? extends Device> devices;
        private final List<DeviceId> mine;

        Faulty(Pipeline p, List<? extends Device> devices) {
            super(p);
            this.devices = devices;
            this.mine = victimDevices(devices);
        }

        private Device at(int stage, int shard) {
            return devices.get(stage * delegate.layout().shards() + shard);
        }

        private void weightsArrive(String what) {
            use(devices, what);
            if (trigger == Trigger.WEIGHT_LOAD && !fired && !mine.isEmpty()) {
                throw die(mine, what);
            }
        }

        @Override
        public void loadWeights(ModelWeights checkpoint) {
            weightsArrive("loadWeights");
            delegate.loadWeights(checkpoint);
        }

        @Override
        public boolean hasAllWeights(int stage, int shard) {
            use(List.of(at(stage, shard)), "hasAllWeights");
            return delegate.hasAllWeights(stage, shard);
        }

        @Override
        public byte[] exportSlice(int stage, int shard, ContextSlice slice) {
            use(List.of(at(stage, shard)), "exportSlice");
            return delegate.exportSlice(stage, shard, slice);
        }

        @Override
        public ContextSlice importSlice(int stage, int shard, byte[] bytes) {
            if (at(stage, shard).id().instance().equals(victim)) {
                weightsArrive("importSlice");
            }
            return delegate.importSlice(stage, shard, bytes);
        }

        @Override
        public void openSequence(long sequence, int capacity) {
            use(devices, "openSequence");
            delegate.openSequence(sequence, capacity);
        }

        @Override
        public void forward(long[] sequences, int[] tokens, int[] positions, int count, float[][] logits) {
            use(devices, "forward");
            if (trigger == Trigger.FORWARD && !mine.isEmpty() && victimForwards.incrementAndGet() == failAtForward) {
                throw die(mine, "forward step " + failAtForward);
            }
            delegate.forward(sequences, tokens, positions, count, logits);
        }
    }
}
