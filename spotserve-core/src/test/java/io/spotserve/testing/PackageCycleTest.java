package io.spotserve.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Core's packages depend on each other without cycles (read from the sources: imports and fully qualified names),
 * so each can be understood, and one day split out, on its own.
 */
class PackageCycleTest {
    private static final Pattern PACKAGE = Pattern.compile("^package ([\\w.]+);", Pattern.MULTILINE);
    private static final Pattern USE = Pattern.compile("\\b(io\\.spotserve(?:\\.[a-z]\\w*)+)\\.[A-Z]");

    /** Package to the packages it uses, for every source file under src/main/java. */
    static Map<String, Set<String>> graph(Path sources) throws IOException {
        Map<String, Set<String>> uses = new TreeMap<>();
        List<Path> files;
        try (Stream<Path> s = Files.walk(sources)) {
            files = s.filter(p -> p.toString().endsWith(".java")).toList();
        }
        for (Path f : files) {
            String text = Files.readString(f);
            Matcher pm = PACKAGE.matcher(text);
            if (!pm.find()) {
                continue; // module-info.java
            }
            String pkg = pm.group(1);
            Set<String> out = uses.computeIfAbsent(pkg, k -> new TreeSet<>());
            // code only: javadoc may name any class
            String code = text.replaceAll("(?s)/\\*.*?\\*/", "").replaceAll("//[^\\n]*", "");
            Matcher um = USE.matcher(code);
            while (um.find()) {
                if (!um.group(1).equals(pkg)) {
                    out.add(um.group(1));
                }
            }
        }
        return uses;
    }

    /** One cycle through {@code start}, or an empty list. */
    static List<String> cycleThrough(String start, Map<String, Set<String>> g) {
        List<String> path = new ArrayList<>(List.of(start));
        return dfs(start, start, g, path, new HashSet<>()) ? path : List.of();
    }

    private static boolean dfs(String at, String start, Map<String, Set<String>> g, List<String> path,
                               Set<String> seen) {
        for (String next : g.getOrDefault(at, Set.of())) {
            if (next.equals(start)) {
                path.add(next);
                return true;
            }
            if (seen.add(next)) {
                path.add(next);
                if (dfs(next, start, g, path, seen)) {
                    return true;
                }
                path.remove(path.size() - 1);
            }
        }
        return false;
    }

    @Test
    void corePackagesFormNoCycle() throws IOException {
        Map<String, Set<String>> g = graph(Path.of("src/main/java"));
        assertTrue(g.containsKey("io.spotserve.engine") && g.containsKey("io.spotserve.clock"), g::toString);
        assertTrue(g.get("io.spotserve.engine").contains("io.spotserve.instance"), "the scan sees real imports");
        for (String pkg : g.keySet()) {
            assertEquals(List.of(), cycleThrough(pkg, g), "package cycle through " + pkg);
        }
    }

    @Test
    void theCycleFinderFindsCycles() {
        Map<String, Set<String>> g = Map.of("a", Set.of("b"), "b", Set.of("c"), "c", Set.of("a"), "d", Set.of("a"));
        assertEquals(List.of("a", "b", "c", "a"), cycleThrough("a", g));
        assertEquals(List.of(), cycleThrough("d", g));
    }
}
