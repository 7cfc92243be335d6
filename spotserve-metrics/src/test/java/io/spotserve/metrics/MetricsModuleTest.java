package io.spotserve.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.ModuleCheck;
import java.lang.module.ModuleDescriptor;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** module-info.java as an application on the module path meets it: it resolves and exports only the binder. */
class MetricsModuleTest {
    @Test
    void resolvesWithCoreAndMicrometerAndExportsItsPackage() {
        ModuleLayer layer = ModuleCheck.layer("io.spotserve.metrics", SpotServeMetrics.class,
                io.spotserve.engine.ServingEngine.class, org.slf4j.Logger.class, com.google.gson.Gson.class,
                io.micrometer.core.instrument.MeterRegistry.class);
        ModuleDescriptor d = layer.findModule("io.spotserve.metrics").orElseThrow().getDescriptor();
        assertEquals(Set.of("io.spotserve.metrics"), ModuleCheck.exports(d));
        // a host that requires io.spotserve.metrics reads core and Micrometer through it
        assertTrue(d.requires().stream().anyMatch(r -> r.name().equals("io.spotserve.core")
                && r.modifiers().contains(ModuleDescriptor.Requires.Modifier.TRANSITIVE)), d::toString);
    }
}
