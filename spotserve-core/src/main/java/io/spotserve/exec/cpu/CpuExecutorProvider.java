package io.spotserve.exec.cpu;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ExecutorProvider;

/** The always-usable, lowest-ranked provider: the pure-Java {@link CpuExecutor}. Registered via ServiceLoader. */
public final class CpuExecutorProvider implements ExecutorProvider {
    /** Public no-arg constructor for {@link java.util.ServiceLoader}. */
    public CpuExecutorProvider() {
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public int rank() {
        return 0;
    }

    @Override
    public boolean isUsable() {
        return true;
    }

    @Override
    public Executor create(ExecutorOptions options) {
        return new CpuExecutor(options);
    }
}
