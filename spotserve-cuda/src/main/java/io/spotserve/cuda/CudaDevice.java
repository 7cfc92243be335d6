package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemsetD8Async;

import io.spotserve.exec.DeviceMemoryException;
import io.spotserve.exec.spi.ArenaDevice;
import io.spotserve.plan.DeviceId;
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
     * Allocates one zeroed, accounted buffer of {@code elements} elements of {@code elementBytes} bytes (4: floats,
     * 2: fp16 weights).
     *
     * @throws DeviceMemoryException if it does not fit the arena (or the GPU); nothing is allocated then
     */
    synchronized DeviceBuffer allocate(String what, long elements, int elementBytes) {
        if (elements < 0) {
            throw new IllegalArgumentException("cannot allocate " + elements + " elements for " + what);
        }
        long bytes = elements * elementBytes;
        checkFits(what, bytes);
        DeviceBuffer b;
        try {
            b = raw(this, context, elements, elementBytes);
        } catch (CudaException e) {
            if (e.getMessage() != null && e.getMessage().contains(CUresult.stringFor(CUresult.CUDA_ERROR_OUT_OF_MEMORY))) {
                throw new DeviceMemoryException(id(), what + " (the GPU itself is full)", bytes, usedBytes(),
                        capacityBytes());
            }
            throw e;
        }
        account(bytes);
        return b;
    }

    /** Allocates one zeroed, accounted buffer of {@code floats} floats. */
    DeviceBuffer allocate(String what, long floats) {
        return allocate(what, floats, Float.BYTES);
    }

    /** A zeroed float buffer on {@code context}'s GPU, accounted to {@code device} when it is non-null. */
    static DeviceBuffer raw(CudaDevice device, CudaContext context, long floats) {
        return raw(device, context, floats, Float.BYTES);
    }

    /** A zeroed buffer of {@code elements} elements of {@code elementBytes} bytes on {@code context}'s GPU. */
    static DeviceBuffer raw(CudaDevice device, CudaContext context, long elements, int elementBytes) {
        context.makeCurrent();
        CUdeviceptr p = new CUdeviceptr();
        long bytes = elements * elementBytes;
        cuMemAlloc(p, Math.max(bytes, 4)); // a zero-byte request is invalid for the driver
        try {
            if (bytes > 0) {
                cuMemsetD8Async(p, (byte) 0, bytes, context.stream);
            }
        } catch (RuntimeException e) {
            cuMemFree(p);
            throw e;
        }
        return new DeviceBuffer(device, context, p, bytes, elementBytes);
    }

    void released(long bytes) {
        account(-bytes);
    }

    @Override
    public String toString() {
        return "CudaDevice[" + id() + " on " + context + ", " + usedBytes() + "/" + capacityBytes() + " bytes]";
    }
}
