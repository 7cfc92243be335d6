package io.spotserve.cuda;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ShardGroupContract;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;

/**
 * Runs the executor contract {@link ShardGroupContract} (a CUDA worker's part of a tensor group split over workers)
 * on the CUDA executor (tag "gpu"; skipped without a GPU).
 */
@Tag("gpu")
class CudaShardGroupTest extends ShardGroupContract {
    @BeforeAll
    static void requireGpu() {
        Assumptions.assumeTrue(CudaExecutorProvider.gpuAvailable(), "no usable GPU: " + new CudaExecutorProvider().unusableReason());
    }

    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CudaExecutor(options);
    }
}
