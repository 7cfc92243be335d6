package io.spotserve.exec.cpu;

import io.spotserve.exec.StoriesGreedyContract;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;

/**
 * {@link StoriesGreedyContract} with every layer matrix in the packed column-block layout (the test models are
 * smaller than {@link StageShard#PACK_MIN_COLUMNS}, so the default executor would keep them in plain rows).
 */
class CpuPackedLayoutStoriesGreedyTest extends StoriesGreedyContract {
    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CpuExecutor(options, 0);
    }
}
