package io.spotserve.exec.cpu;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.StagePipelineContract;

/** Runs the executor contract {@link StagePipelineContract} (partial pipelines) on the CPU executor. */
class CpuStagePipelineTest extends StagePipelineContract {
    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CpuExecutor(options);
    }
}
