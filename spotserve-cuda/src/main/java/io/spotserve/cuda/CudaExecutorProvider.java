package io.spotserve.cuda;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ExecutorProvider;

/**
 * Registers the {@link CudaExecutor} with {@link ExecutorProvider#best()} (rank 10, above the CPU's 0). On a
 * machine without a loadable CUDA driver, a GPU, or a driver able to JIT our PTX, {@link #isUsable()} is
 * false with the reason in {@link #unusableReason()}, and the engine falls back to the CPU executor.
 */
public final class CudaExecutorProvider implements ExecutorProvider {
    /** Public no-arg constructor for {@link java.util.ServiceLoader}. */
    public CudaExecutorProvider() {
    }

    /** Whether a GPU can run the CUDA executor in this JVM (probed once). Tests use it as their assumption. */
    public static boolean gpuAvailable() {
        return CudaProbe.get().usable();
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public int rank() {
        return 10;
    }

    @Override
    public boolean isUsable() {
        return gpuAvailable();
    }

    @Override
    public String unusableReason() {
        CudaProbe.Result r = CudaProbe.get();
        return r.usable() ? "usable" : r.reason();
    }

    /**
     * Creates a CUDA executor.
     *
     * @throws IllegalStateException if CUDA is not usable here (check {@link #isUsable()} first)
     */
    @Override
    public Executor create(ExecutorOptions options) {
        if (!isUsable()) {
            throw new IllegalStateException("CUDA executor not usable here: " + unusableReason());
        }
        return new CudaExecutor(options);
    }
}
