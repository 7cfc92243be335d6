package io.spotserve.exec.cpu;

import io.spotserve.exec.SliceMigrationContract;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;

/** Runs the executor contract {@link SliceMigrationContract} on the CPU executor. */
class CpuSliceMigrationTest extends SliceMigrationContract {
    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CpuExecutor(options);
    }
}
