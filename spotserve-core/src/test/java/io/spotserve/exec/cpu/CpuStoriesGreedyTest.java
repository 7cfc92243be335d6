package io.spotserve.exec.cpu;

import io.spotserve.exec.StoriesGreedyContract;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;

/** Runs the executor contract {@link StoriesGreedyContract} on the CPU executor. */
class CpuStoriesGreedyTest extends StoriesGreedyContract {
    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CpuExecutor(options);
    }
}
