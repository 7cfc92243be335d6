package io.spotserve.bench.gpu;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD8;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.util.Arrays;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/**
 * The device-memory bandwidth a decode step can at best use, measured on the GPU the benchmark runs on: a
 * {@code cuMemcpyDtoDAsync} of {@code bytesCopied} bytes between two buffers, timed with CUDA events (driver
 * API through JCuda, so no toolkit is needed). A copy of N bytes reads N and writes N bytes, so the memory
 * moved {@link #readWrittenBytes()} = 2N per copy; {@link #readWrittenBytesPerSecond()} is the rate the memory
 * system sustains, and the one the decode bound uses as its read-only equivalent (a step's weight reads are
 * that many bytes of DRAM traffic).
 *
 * @param bytesCopied bytes of one copy
 * @param samplesMs   time of each timed copy, in milliseconds
 */
public record CopyBandwidth(long bytesCopied, double[] samplesMs) {
    public CopyBandwidth {
        if (bytesCopied <= 0) {
            throw new IllegalArgumentException("bytes copied must be > 0, was " + bytesCopied);
        }
        if (samplesMs.length == 0) {
            throw new IllegalArgumentException("a bandwidth needs at least one timed copy, got none");
        }
        samplesMs = samplesMs.clone();
    }

    /** Median time of one copy, in milliseconds. */
    public double medianMs() {
        return Stats.median(samplesMs);
    }

    /** Bytes one copy reads plus writes: 2 × {@link #bytesCopied()}. */
    public long readWrittenBytes() {
        return 2 * bytesCopied;
    }

    /** Bytes read + written per second at the median time: the read-only-equivalent bandwidth. */
    public double readWrittenBytesPerSecond() {
        return readWrittenBytes() / (medianMs() / 1e3);
    }

    /** Bytes copied per second (half the memory traffic). */
    public double copyBytesPerSecond() {
        return bytesCopied / (medianMs() / 1e3);
    }

    /**
     * Measures on GPU {@code ordinal}: {@code warmups} untimed then {@code samples} timed copies, alternating
     * direction, between two {@code bytes}-byte buffers of the device's primary context.
     *
     * @throws jcuda.CudaException on any driver error (no GPU, out of memory)
     */
    public static CopyBandwidth measure(int ordinal, long bytes, int warmups, int samples) {
        if (bytes <= 0 || samples < 1 || warmups < 0) {
            throw new IllegalArgumentException("need bytes > 0, samples >= 1, warmups >= 0; got bytes " + bytes
                    + ", samples " + samples + ", warmups " + warmups);
        }
        JCudaDriver.setExceptionsEnabled(true);
        cuInit(0);
        CUdevice device = new CUdevice();
        cuDeviceGet(device, ordinal);
        CUcontext context = new CUcontext();
        cuDevicePrimaryCtxRetain(context, device);
        CUdeviceptr a = new CUdeviceptr();
        CUdeviceptr b = new CUdeviceptr();
        CUstream stream = new CUstream();
        CUevent start = new CUevent();
        CUevent stop = new CUevent();
        int made = 0; // how many of stream, start, stop, a, b exist (created in that order)
        try {
            cuCtxSetCurrent(context);
            cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING);
            made++;
            cuEventCreate(start, CUevent_flags.CU_EVENT_DEFAULT);
            made++;
            cuEventCreate(stop, CUevent_flags.CU_EVENT_DEFAULT);
            made++;
            cuMemAlloc(a, bytes);
            made++;
            cuMemAlloc(b, bytes);
            made++;
            cuMemsetD8(a, (byte) 1, bytes);
            cuMemsetD8(b, (byte) 2, bytes);
            for (int i = 0; i < warmups; i++) {
                cuMemcpyDtoDAsync(i % 2 == 0 ? b : a, i % 2 == 0 ? a : b, bytes, stream);
            }
            cuStreamSynchronize(stream);
            double[] ms = new double[samples];
            float[] elapsed = new float[1];
            for (int i = 0; i < samples; i++) {
                cuEventRecord(start, stream);
                cuMemcpyDtoDAsync(i % 2 == 0 ? b : a, i % 2 == 0 ? a : b, bytes, stream);
                cuEventRecord(stop, stream);
                cuEventSynchronize(stop);
                cuEventElapsedTime(elapsed, start, stop);
                ms[i] = elapsed[0];
            }
            return new CopyBandwidth(bytes, ms);
        } finally {
            if (made > 4) {
                cuMemFree(b);
            }
            if (made > 3) {
                cuMemFree(a);
            }
            if (made > 2) {
                cuEventDestroy(stop);
            }
            if (made > 1) {
                cuEventDestroy(start);
            }
            if (made > 0) {
                cuStreamDestroy(stream);
            }
            cuDevicePrimaryCtxRelease(device);
        }
    }

    /**
     * The name and memory of GPU {@code ordinal} as the driver reports them, e.g. "NVIDIA H100 80GB HBM3, 79.1 GiB".
     *
     * @throws jcuda.CudaException on any driver error
     */
    public static String describeDevice(int ordinal) {
        JCudaDriver.setExceptionsEnabled(true);
        cuInit(0);
        CUdevice device = new CUdevice();
        cuDeviceGet(device, ordinal);
        byte[] name = new byte[256];
        cuDeviceGetName(name, name.length, device);
        int n = 0;
        while (n < name.length && name[n] != 0) {
            n++;
        }
        long[] total = new long[1];
        cuDeviceTotalMem(total, device);
        return new String(name, 0, n, java.nio.charset.StandardCharsets.US_ASCII)
                + String.format(java.util.Locale.ROOT, ", %.1f GiB", total[0] / (double) (1L << 30));
    }

    @Override
    public String toString() {
        return "CopyBandwidth[" + bytesCopied + " B, median " + medianMs() + " ms of " + Arrays.toString(samplesMs) + "]";
    }
}
