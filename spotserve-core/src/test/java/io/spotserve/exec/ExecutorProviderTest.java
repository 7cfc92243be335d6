package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.cpu.CpuExecutorProvider;
import org.junit.jupiter.api.Test;

class ExecutorProviderTest {
    @Test
    void cpuProviderIsFoundByServiceLoaderAndIsTheFallback() {
        assertTrue(ExecutorProvider.installed().stream().anyMatch(p -> p instanceof CpuExecutorProvider));
        ExecutorProvider best = ExecutorProvider.best();
        assertTrue(best.isUsable());
        assertTrue(best.rank() >= 0);
        try (Executor ex = new CpuExecutorProvider().create(ExecutorOptions.defaults().withThreads(1).withVector(false))) {
            assertEquals("cpu-scalar", ex.name());
            assertEquals(1, ex.options().threads());
        }
    }
}
