package io.spotserve.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ExecutorProvider;
import io.spotserve.exec.cpu.CpuExecutorProvider;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Discovery through ServiceLoader and the fallback to the CPU executor when CUDA cannot run. */
class CudaProviderTest {
    @Test
    void cudaProviderIsDiscoveredAndRankedAboveCpu() {
        List<ExecutorProvider> installed = ExecutorProvider.installed();
        assertTrue(installed.get(0) instanceof CudaExecutorProvider, "highest rank first: " + installed);
        assertTrue(installed.stream().anyMatch(p -> p instanceof CpuExecutorProvider), installed.toString());
        assertEquals("cuda", installed.get(0).name());
        assertEquals(10, installed.get(0).rank());
    }

    @Test
    void withoutAGpuTheEngineFallsBackToCpuWithAReason() {
        CudaExecutorProvider cuda = new CudaExecutorProvider();
        Assumptions.assumeFalse(cuda.isUsable(), "a GPU is usable here; the fallback does not apply");
        assertFalse(CudaExecutorProvider.gpuAvailable());
        String reason = cuda.unusableReason();
        assertTrue(reason.contains("libcuda.so.1") || reason.contains("CUDA driver"), reason);
        ExecutorProvider best = ExecutorProvider.best();
        assertEquals("cpu", best.name());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> cuda.create(ExecutorOptions.defaults()));
        assertTrue(e.getMessage().contains("CUDA executor not usable here: " + reason), e.getMessage());
        assertThrows(IllegalStateException.class, () -> new CudaExecutor(ExecutorOptions.defaults()));
    }

    @Test
    void withAGpuCudaIsBest() {
        Assumptions.assumeTrue(CudaExecutorProvider.gpuAvailable(), "no usable GPU here");
        assertEquals("cuda", ExecutorProvider.best().name());
        assertEquals("usable", new CudaExecutorProvider().unusableReason());
    }
}
