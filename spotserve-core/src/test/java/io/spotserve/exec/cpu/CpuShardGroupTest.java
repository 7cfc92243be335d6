package io.spotserve.exec.cpu;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ShardGroupContract;

/** Runs the executor contract {@link ShardGroupContract} (tensor groups split over pipelines) on the CPU executor. */
class CpuShardGroupTest extends ShardGroupContract {
    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CpuExecutor(options);
    }
}
