package io.spotserve.cuda;

import static jcuda.jcublas.JCublas2.cublasCreate;
import static jcuda.jcublas.JCublas2.cublasDestroy;
import static jcuda.jcublas.JCublas2.cublasSetStream;
import static jcuda.jcublas.JCublas2.cublasSgemm;

import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasOperation;
import jcuda.runtime.cudaStream_t;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The optional cuBLAS path for the batched matrix products (prefill blocks, large decode batches). JCublas
 * 12.0.0 binds libcublas.so.12, which CUDA-13-only machines lack, so this is used only when {@link #probe()}
 * loads it and {@code -Dspotserve.cuda.cublas=true} asks for it; otherwise our PTX gemv kernels do the work.
 */
final class CublasGemm implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(CublasGemm.class);
    /** System property enabling cuBLAS when it loads. */
    static final String PROPERTY = "spotserve.cuda.cublas";
    /** Batches at least this large go to cuBLAS (smaller ones are weight-bandwidth bound: our gemv is as fast). */
    static final int MIN_BATCH = 8;

    private static final Pointer ONE = Pointer.to(new float[] {1f});
    private static final Pointer ZERO = Pointer.to(new float[] {0f});

    private final CudaContext context;
    private final cublasHandle handle = new cublasHandle();

    /** Whether JCublas2's native library (and so libcublas.so.12) loads here. */
    static boolean probe() {
        try {
            JCublas2.setExceptionsEnabled(true);
            JCublas2.initialize();
            return true;
        } catch (LinkageError | CudaException e) {
            LOG.debug("cuBLAS not loadable: {}", e.toString());
            return false;
        }
    }

    CublasGemm(CudaContext context) {
        this.context = context;
        context.makeCurrent();
        cublasCreate(handle);
        cublasSetStream(handle, new cudaStream_t(context.stream));
    }

    /**
     * out[b·outStride + r] = (accumulate ? out[b·outStride + r] : 0) + Σ_k w[r·n + k] · x[b·xStride + k]: with row-major w seen as a column-major n × rows
     * matrix, this is C = Wᵀ·X in cuBLAS's column-major terms.
     */
    void gemm(CUdeviceptr w, int n, int rows, CUdeviceptr x, int xStride, int batch, CUdeviceptr out, int outStride,
              boolean accumulate) {
        cublasSgemm(handle, cublasOperation.CUBLAS_OP_T, cublasOperation.CUBLAS_OP_N, rows, batch, n, ONE, w, n, x,
                xStride, accumulate ? ONE : ZERO, out, outStride);
    }

    @Override
    public void close() {
        context.makeCurrent();
        cublasDestroy(handle);
    }
}
