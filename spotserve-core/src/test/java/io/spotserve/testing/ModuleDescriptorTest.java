package io.spotserve.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.cpu.CpuExecutor;
import java.lang.module.ModuleDescriptor;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The core module as a host application on the module path meets it. */
class ModuleDescriptorTest {
    @Test
    void coreResolvesWithItsDependenciesAndExportsItsApi() throws Exception {
        ModuleLayer layer = ModuleCheck.layer("io.spotserve.core", CpuExecutor.class, org.slf4j.Logger.class,
                com.google.gson.Gson.class);
        Module core = layer.findModule("io.spotserve.core").orElseThrow();
        ModuleDescriptor d = core.getDescriptor();
        assertEquals(new TreeSet<>(Set.of("io.spotserve.clock", "io.spotserve.engine", "io.spotserve.exec", "io.spotserve.exec.cpu",
                "io.spotserve.instance", "io.spotserve.model", "io.spotserve.model.jinja", "io.spotserve.plan", "io.spotserve.trace",
                "io.spotserve.exec.spi to io.spotserve.cuda, io.spotserve.worker")), ModuleCheck.exports(d));
        assertTrue(d.packages().containsAll(Set.of("io.spotserve.exec.spi", "io.spotserve.engine")));

        // the CPU executor is found through the module's own provides clause, not META-INF/services
        Class<?> spi = core.getClassLoader().loadClass("io.spotserve.exec.ExecutorProvider");
        Set<String> providers = ServiceLoader.load(layer, spi).stream().map(p -> p.type().getName())
                .collect(Collectors.toSet());
        assertEquals(Set.of("io.spotserve.exec.cpu.CpuExecutorProvider"), providers);

        // the Vector API is not in the descriptor (modules compiled against core never resolve an incubator module);
        // tests run with --add-modules jdk.incubator.vector, and then the CPU executor reads it and runs its kernels
        assertTrue(d.requires().stream().noneMatch(r -> r.name().startsWith("jdk.incubator")), d.requires()::toString);
        Module vector = ModuleLayer.boot().findModule("jdk.incubator.vector").orElseThrow();
        assertFalse(core.canRead(vector));
        ClassLoader loader = core.getClassLoader();
        Class<?> options = loader.loadClass("io.spotserve.exec.ExecutorOptions");
        Class<?> cpu = loader.loadClass("io.spotserve.exec.cpu.CpuExecutor");
        try (AutoCloseable executor = (AutoCloseable) cpu.getConstructor(options)
                .newInstance(options.getMethod("defaults").invoke(null))) {
            assertTrue(core.canRead(vector), "the CPU executor reads the Vector API when the application adds it");
            assertTrue(executor.toString().contains("vector"), executor::toString);
        }
    }
}
