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
    /** Bytes of one element: 4 for floats and ints, 2 for fp16 weights. */
    final int elementBytes;
    private boolean freed;

    DeviceBuffer(CudaDevice device, CudaContext context, CUdeviceptr ptr, long bytes, int elementBytes) {
        this.device = device;
        this.context = context;
        this.ptr = ptr;
        this.bytes = bytes;
        this.elementBytes = elementBytes;
    }

    /** Address {@code elements} elements into the buffer. */
    CUdeviceptr at(long elements) {
        return elements == 0 ? ptr : ptr.withByteOffset(elements * elementBytes);
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
