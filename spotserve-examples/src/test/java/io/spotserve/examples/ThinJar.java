package io.spotserve.examples;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.stream.Stream;

/**
 * An executable jar of the CLI for tests that start it like a user would ({@code java -jar}, the {@code spotserve}
 * script): the shaded jar is only built after the tests, so this one holds the class folders of the test class
 * path (not the test classes) and names its jars in the manifest's {@code Class-Path}, so that every class path
 * entry is a jar, as class-data sharing requires. Service files of several folders are merged.
 */
final class ThinJar {
    private ThinJar() {
    }

    static Path build(Path jar) throws IOException {
        Map<String, byte[]> files = new LinkedHashMap<>();
        List<String> jars = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path").split(System.getProperty("path.separator"))) {
            Path p = Path.of(entry).toAbsolutePath();
            if (Files.isDirectory(p) && !p.getFileName().toString().equals("test-classes")) {
                try (Stream<Path> walk = Files.walk(p)) {
                    for (Path f : walk.filter(Files::isRegularFile).toList()) {
                        String name = p.relativize(f).toString().replace('\\', '/');
                        if (name.equals("META-INF/MANIFEST.MF") || name.equals("module-info.class")) {
                            continue;
                        }
                        byte[] bytes = Files.readAllBytes(f);
                        if (name.startsWith("META-INF/services/") && files.containsKey(name)) {
                            byte[] old = files.get(name);
                            byte[] merged = new byte[old.length + 1 + bytes.length];
                            System.arraycopy(old, 0, merged, 0, old.length);
                            merged[old.length] = '\n';
                            System.arraycopy(bytes, 0, merged, old.length + 1, bytes.length);
                            bytes = merged;
                        } else if (files.containsKey(name)) {
                            continue;
                        }
                        files.put(name, bytes);
                    }
                }
            } else if (Files.isRegularFile(p) && entry.endsWith(".jar")) {
                jars.add(p.toUri().toString());
            }
        }
        Manifest manifest = new Manifest();
        Attributes main = manifest.getMainAttributes();
        main.put(Attributes.Name.MANIFEST_VERSION, "1.0");
        main.put(Attributes.Name.MAIN_CLASS, Main.class.getName());
        main.put(Attributes.Name.CLASS_PATH, String.join(" ", jars));
        try (OutputStream os = Files.newOutputStream(jar); JarOutputStream out = new JarOutputStream(os, manifest)) {
            for (Map.Entry<String, byte[]> e : files.entrySet()) {
                out.putNextEntry(new JarEntry(e.getKey()));
                out.write(e.getValue());
                out.closeEntry();
            }
        }
        return jar;
    }
}
