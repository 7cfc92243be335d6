package io.spotserve.exec.cpu;

import io.spotserve.exec.BatchDecodeContract;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;

/** Runs the executor contract {@link BatchDecodeContract} on the CPU executor. */
class CpuBatchDecodeTest extends BatchDecodeContract {
    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CpuExecutor(options);
    }
}
