package io.spotserve.cuda;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.StagePipelineContract;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;

/**
 * Runs the executor contract {@link StagePipelineContract} (partial pipelines: a CUDA worker's stages of a pipeline
 * that spans workers) on the CUDA executor (tag "gpu"; skipped without a GPU).
 */
@Tag("gpu")
class CudaStagePipelineTest extends StagePipelineContract {
    @BeforeAll
    static void requireGpu() {
        Assumptions.assumeTrue(CudaExecutorProvider.gpuAvailable(), "no usable GPU: " + new CudaExecutorProvider().unusableReason());
    }

    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CudaExecutor(options);
    }
}
