package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuMemFree;

import jcuda.driver.CUdeviceptr;

/**
 * One cuMemAlloc'ed block of GPU memory, owned by exactly one holder and freed by {@link #close()} (which also
 * returns its bytes to the {@link CudaDevice} arena when it was accounted there). Closing twice is harmless.
 */
final class DeviceBuffer implements AutoCloseable {
    private final CudaDevice device; // null for unaccounted scratch
    private final CudaContext context;
    final CUdeviceptr ptr;
    final long bytes;
    private boolean freed;

    DeviceBuffer(CudaDevice device, CudaContext context, CUdeviceptr ptr, long bytes) {
        this.device = device;
        this.context = context;
        this.ptr = ptr;
        this.bytes = bytes;
    }

    /** Address {@code floats} floats into the buffer. */
    CUdeviceptr at(long floats) {
        return floats == 0 ? ptr : ptr.withByteOffset(floats * Float.BYTES);
    }

    /** The GPU this buffer lives on. */
    CudaContext context() {
        return context;
    }

    @Override
    public void close() {
        if (freed) {
            return;
        }
        freed = true;
        context.makeCurrent();
        cuMemFree(ptr);
        if (device != null) {
            device.released(bytes);
        }
    }
}
