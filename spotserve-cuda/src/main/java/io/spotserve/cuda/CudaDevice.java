package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;

import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.spi.ArenaDevice;
import io.spotserve.plan.DeviceId;
import java.util.ArrayList;
import java.util.List;
import jcuda.CudaException;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUresult;

/**
 * A memory arena on one GPU for one logical {@link DeviceId} (several ids may share a GPU, as in tests and
 * when a GPU is split): weights and KV caches are cuMemAlloc'ed from it only while the arena's capacity
 * allows, so the migration planner's memory bound (SpotServe §3.4, U_max) holds on the real device too. An
 * allocation is all-or-nothing; a driver out-of-memory error becomes {@link DeviceMemoryException}.
 */
final class CudaDevice extends ArenaDevice {
    final CudaContext context;

    CudaDevice(CudaExecutor owner, DeviceId id, long capacity, CudaContext context) {
        super(owner, id, capacity);
        this.context = context;
    }

    /**
     * Allocates one zeroed, accounted buffer per entry of {@code floats}, all or none.
     *
     * @throws DeviceMemoryException if they do not fit the arena (or the GPU); nothing is allocated then
     */
    synchronized DeviceBuffer[] allocate(String what, long... floats) {
        long bytes = bytesFor(what, floats);
        checkFits(what, bytes);
        List<DeviceBuffer> done = new ArrayList<>();
        try {
            for (long f : floats) {
                done.add(raw(this, context, f));
            }
        } catch (CudaException e) {
            for (DeviceBuffer b : done) {
                b.close(); // not yet accounted: close() calls released(), undone below
            }
            account(done.stream().mapToLong(b -> b.bytes).sum());
            if (e.getMessage() != null && e.getMessage().contains(CUresult.stringFor(CUresult.CUDA_ERROR_OUT_OF_MEMORY))) {
                throw new DeviceMemoryException(id(), what + " (the GPU itself is full)", bytes, usedBytes(),
                        capacityBytes());
            }
            throw e;
        }
        account(bytes);
        return done.toArray(new DeviceBuffer[0]);
    }

    /** Allocates one zeroed, accounted buffer. */
    DeviceBuffer allocate(String what, long floats) {
        return allocate(what, new long[] {floats})[0];
    }

    /** A zeroed buffer on {@code context}'s GPU, accounted to {@code device} when it is non-null. */
    static DeviceBuffer raw(CudaDevice device, CudaContext context, long floats) {
        context.makeCurrent();
        CUdeviceptr p = new CUdeviceptr();
        long bytes = floats * Float.BYTES;
        cuMemAlloc(p, Math.max(bytes, 4)); // a zero-byte request is invalid for the driver
        DeviceBuffer b = new DeviceBuffer(device, context, p, bytes);
        if (floats > 0) {
            cuMemsetD32Async(p, 0, floats, context.stream);
        }
        return b;
    }

    void released(long bytes) {
        account(-bytes);
    }

    @Override
    public String toString() {
        return "CudaDevice[" + id() + " on " + context + ", " + usedBytes() + "/" + capacityBytes() + " bytes]";
    }
}
