package io.spotserve.worker;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import io.spotserve.exec.Device;
import io.spotserve.exec.Pipeline;
import io.spotserve.plan.DeviceId;
import io.spotserve.worker.proto.DeviceRef;
import io.spotserve.worker.proto.DeviceState;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * What a worker holds for its controller: the devices and pipelines it created, the instance id it registered as,
 * and whether the controller declared it dead (fenced). Every call checks {@link #checkLive} first; a unary call's
 * refusal travels back as its gRPC status ({@link WorkerService#error}).
 */
final class WorkerState {
    final Map<DeviceId, Device> devices = new ConcurrentHashMap<>();
    final Map<Long, Pipeline> pipelines = new ConcurrentHashMap<>();
    volatile String instanceId;
    volatile boolean fenced;

    /** Runs {@code body} once the worker is known to be live and answers its reply, or its refusal as a status. */
    <R> void unary(StreamObserver<R> out, Supplier<R> body) {
        R reply;
        try {
            checkLive();
            reply = body.get();
        } catch (RuntimeException e) {
            out.onError(WorkerService.error(e));
            return;
        }
        out.onNext(reply);
        out.onCompleted();
    }

    void checkLive() {
        if (fenced) {
            throw new StatusRuntimeException(Status.FAILED_PRECONDITION.withDescription(
                    "this worker was declared dead by its controller (fenced); it serves nothing more"));
        }
    }

    Pipeline pipeline(long id) {
        Pipeline p = pipelines.get(id);
        if (p == null) {
            throw new IllegalArgumentException("pipeline " + id + " does not exist on this worker");
        }
        return p;
    }

    Device device(DeviceRef ref) {
        DeviceId id = Wire.id(ref);
        Device d = devices.get(id);
        if (d == null) {
            throw new IllegalArgumentException("device " + id + " does not exist on this worker");
        }
        return d;
    }

    static DeviceState state(Device d) {
        return DeviceState.newBuilder().setDevice(Wire.ref(d.id())).setCapacityBytes(d.capacityBytes())
                .setUsedBytes(d.usedBytes()).build();
    }
}
