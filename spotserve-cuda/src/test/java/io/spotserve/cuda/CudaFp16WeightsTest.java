package io.spotserve.cuda;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Fp16WeightsContract;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;

/** Runs {@link Fp16WeightsContract} on the CUDA executor, which stores fp16 weights as halves (tag "gpu"). */
@Tag("gpu")
class CudaFp16WeightsTest extends Fp16WeightsContract {
    @BeforeAll
    static void requireGpu() {
        Assumptions.assumeTrue(CudaExecutorProvider.gpuAvailable(), "no usable GPU: "
                + new CudaExecutorProvider().unusableReason());
    }

    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CudaExecutor(options);
    }

    @Override
    protected int storedBytesPerFp16Weight() {
        return 2;
    }
}
