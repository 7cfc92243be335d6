package io.spotserve.worker;

import io.spotserve.exec.Device;
import io.spotserve.plan.DeviceId;
import io.spotserve.worker.proto.WorkerGrpc;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A device arena that lives in a worker process; its usage is asked of the worker. */
final class RemoteDevice implements Device {
    final RemoteExecutor executor;
    final DeviceId id;
    final long capacity;
    final RemoteInstanceProvider.WorkerLink worker;

    RemoteDevice(RemoteExecutor executor, DeviceId id, long capacity, RemoteInstanceProvider.WorkerLink worker) {
        this.executor = executor;
        this.id = id;
        this.capacity = capacity;
        this.worker = worker;
    }

    @Override
    public DeviceId id() {
        return id;
    }

    @Override
    public long capacityBytes() {
        return capacity;
    }

    @Override
    public long usedBytes() {
        return executor.call(List.of(worker), worker, ch -> WorkerGrpc.newBlockingStub(ch)
                .withDeadlineAfter(10, TimeUnit.SECONDS).deviceUsage(Wire.ref(id))).getUsedBytes();
    }

    @Override
    public String toString() {
        return "RemoteDevice[" + id + " @ " + worker.address + "]";
    }
}
