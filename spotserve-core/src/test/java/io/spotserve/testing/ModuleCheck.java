package io.spotserve.testing;

import java.lang.module.Configuration;
import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Checks a library module's {@code module-info.java} the way a host application on the module path would meet it:
 * tests run on the class path, so this resolves the compiled module, with the jars of the classes it depends on, in
 * a layer of its own, and reads what it exports.
 */
public final class ModuleCheck {
    private ModuleCheck() {
    }

    /** The directory or jar a class was loaded from. */
    public static Path origin(Class<?> c) {
        try {
            return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * A layer holding the named module, resolved against the modules of the classes in {@code dependencies} (their
     * jars or class directories) and the JDK; fails if a module it requires is missing.
     */
    public static ModuleLayer layer(String module, Class<?>... dependencies) {
        Path[] paths = Arrays.stream(dependencies).map(ModuleCheck::origin).distinct().toArray(Path[]::new);
        Configuration cf = ModuleLayer.boot().configuration().resolveAndBind(ModuleFinder.of(paths), ModuleFinder.of(),
                Set.of(module));
        return ModuleLayer.boot().defineModulesWithOneLoader(cf, ClassLoader.getPlatformClassLoader());
    }

    /** The packages {@code descriptor} exports: unqualified ones by name, qualified ones as "name to a, b". */
    public static Set<String> exports(ModuleDescriptor descriptor) {
        return descriptor.exports().stream()
                .map(e -> e.isQualified() ? e.source() + " to " + String.join(", ", new TreeSet<>(e.targets()))
                        : e.source())
                .collect(Collectors.toCollection(TreeSet::new));
    }
}
