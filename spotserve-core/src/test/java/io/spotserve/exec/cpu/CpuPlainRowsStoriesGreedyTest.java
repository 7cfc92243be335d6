package io.spotserve.exec.cpu;

import io.spotserve.exec.StoriesGreedyContract;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;

/**
 * {@link StoriesGreedyContract} with every layer matrix in plain rows for the vector kernels (the default executor packs
 * every matrix of at least {@link StageShard#PACK_MIN_COLUMNS} columns, which covers the test models).
 */
class CpuPlainRowsStoriesGreedyTest extends StoriesGreedyContract {
    @Override
    protected Executor executor(ExecutorOptions options) {
        return new CpuExecutor(options, Integer.MAX_VALUE);
    }
}
