package io.spotserve.exec.cpu;

import io.spotserve.exec.RandomModelParityContract;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;

/** Runs the executor contract {@link RandomModelParityContract} on the CPU executor. */
class CpuRandomModelParityTest extends RandomModelParityContract {
    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CpuExecutor(options);
    }
}
