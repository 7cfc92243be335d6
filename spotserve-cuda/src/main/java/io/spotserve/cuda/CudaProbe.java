package io.spotserve.cuda;

import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuInit;

import jcuda.CudaException;
import jcuda.driver.CUdevice;
import jcuda.driver.JCudaDriver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finds out once per JVM whether the CUDA driver loads, sees a GPU and JIT-compiles our PTX, and whether the
 * optional cuBLAS binding loads. Only linkage errors (missing libcuda.so.1 / libcublas.so.12, or JCuda natives
 * for another platform) and CUDA errors count as "not usable"; anything else is a bug and propagates.
 */
final class CudaProbe {
    private static final Logger LOG = LoggerFactory.getLogger(CudaProbe.class);

    /** The outcome: usable or not, why not, and what was found. */
    record Result(boolean usable, String reason, int devices, int driverVersion, String device0, boolean cublas) {
    }

    private static volatile Result result;

    private CudaProbe() {
    }

    static Result get() {
        Result r = result;
        if (r == null) {
            synchronized (CudaProbe.class) {
                r = result;
                if (r == null) {
                    r = run();
                    result = r;
                }
            }
        }
        return r;
    }

    private static Result run() {
        int count;
        int version;
        String name;
        try {
            JCudaDriver.setExceptionsEnabled(true);
            cuInit(0);
            int[] n = new int[1];
            cuDeviceGetCount(n);
            count = n[0];
            int[] v = new int[1];
            cuDriverGetVersion(v);
            version = v[0];
            if (count == 0) {
                return new Result(false, "the CUDA driver (version " + version + ") sees no GPU", 0, version, null, false);
            }
            CUdevice d = new CUdevice();
            cuDeviceGet(d, 0);
            byte[] buf = new byte[256];
            cuDeviceGetName(buf, buf.length, d);
            name = cString(buf);
            // the kernels must JIT on this driver: a driver older than the PTX ISA fails here, not mid-serving
            try (CudaContext ctx = new CudaContext(0)) {
                ctx.makeCurrent();
            }
        } catch (LinkageError e) {
            return new Result(false, "CUDA driver library not loadable (" + firstLine(e) + "); a machine needs the "
                    + "NVIDIA driver's libcuda.so.1", 0, 0, null, false);
        } catch (CudaException e) {
            return new Result(false, "CUDA driver error: " + firstLine(e), 0, 0, null, false);
        }
        boolean cublas = CublasGemm.probe();
        LOG.info("CUDA usable: {} GPU(s), device 0 {}, driver API {}, cuBLAS {}", count, name, version,
                cublas ? "available" : "not loadable (using our PTX GEMV)");
        return new Result(true, "", count, version, name, cublas);
    }

    /** JCuda's load errors carry every attempted path and nested traces; the first line says what failed. */
    static String firstLine(Throwable e) {
        String m = e.getClass().getSimpleName() + ": " + e.getMessage();
        int nl = m.indexOf('\n');
        m = nl < 0 ? m : m.substring(0, nl);
        return m.length() > 200 ? m.substring(0, 200) + "..." : m;
    }

    private static String cString(byte[] b) {
        int n = 0;
        while (n < b.length && b[n] != 0) {
            n++;
        }
        return new String(b, 0, n, java.nio.charset.StandardCharsets.US_ASCII);
    }
}
