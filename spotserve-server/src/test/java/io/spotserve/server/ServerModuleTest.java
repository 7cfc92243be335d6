package io.spotserve.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.spotserve.testing.ModuleCheck;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** module-info.java as an application on the module path meets it: it resolves and exports only the server. */
class ServerModuleTest {
    @Test
    void resolvesWithItsDependenciesAndExportsItsPackage() {
        ModuleLayer layer = ModuleCheck.layer("io.spotserve.server", SpotServeServer.class,
                io.spotserve.metrics.SpotServeMetrics.class, io.spotserve.engine.ServingEngine.class,
                org.slf4j.Logger.class, com.google.gson.Gson.class, io.micrometer.core.instrument.MeterRegistry.class,
                io.micrometer.prometheusmetrics.PrometheusMeterRegistry.class);
        assertEquals(Set.of("io.spotserve.server"),
                ModuleCheck.exports(layer.findModule("io.spotserve.server").orElseThrow().getDescriptor()));
    }
}
