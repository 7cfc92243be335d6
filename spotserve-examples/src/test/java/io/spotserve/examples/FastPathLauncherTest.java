package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fast path by default: the examples main started by a plain {@code java} (no {@code --add-modules}) runs the
 * Vector API kernels through its re-launch, forwarding output and exit code; with the re-launch switched off it
 * runs the scalar kernels and says so in exactly one WARN line naming the flag.
 */
class FastPathLauncherTest {
    @TempDir
    Path dir;

    private record Result(int code, String out, String err) {
    }

    /** {@code java [jvmArgs] -cp <test class path> Main args}, without the Vector API module, at most 120 s. */
    private Result java(List<String> jvmArgs, String... args) throws IOException, InterruptedException {
        List<String> all = new ArrayList<>(jvmArgs);
        all.add("-cp");
        all.add(System.getProperty("java.class.path"));
        return javaIn(dir, all, args);
    }

    /** {@code java [jvmArgs] Main args} in {@code cwd} ({@code jvmArgs} give the class path), at most 120 s. */
    private Result javaIn(Path cwd, List<String> jvmArgs, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.add("-Djava.io.tmpdir=" + dir);
        // the model line (executor name) is logged at INFO; the test resources quiet it, this re-enables it
        cmd.add("-Dorg.slf4j.simpleLogger.log.io.spotserve.examples.GenerateCommand=info");
        cmd.addAll(jvmArgs);
        cmd.add(Main.class.getName());
        cmd.addAll(List.of(args));
        Path out = dir.resolve("out.txt");
        Path err = dir.resolve("err.txt");
        Process p = new ProcessBuilder(cmd).directory(cwd.toFile()).redirectOutput(out.toFile())
                .redirectError(err.toFile()).start();
        try {
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "timed out: " + cmd);
        } finally {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                Files.readString(err, StandardCharsets.UTF_8));
    }

    private static long lines(String text, String fragment) {
        return text.lines().filter(l -> l.contains(fragment)).count();
    }

    @Test
    void plainJavaRunsTheVectorKernelsAndTheOptOutWarnsOnceHowToEnableThem() throws Exception {
        String[] gen = {"generate", "--prompt", "Once upon a time", "--steps", "24", "--temperature", "0", "--threads", "1"};
        Result fast = java(List.of(), gen);
        assertEquals(0, fast.code, fast.err);
        assertTrue(fast.err.contains("executor cpu-vector"), fast.err);
        assertEquals(0, lines(fast.err, "] WARN "), fast.err);

        Result scalar = java(List.of("-Dspotserve.relaunch=false"), gen);
        assertEquals(0, scalar.code, scalar.err);
        assertTrue(scalar.err.contains("executor cpu-scalar"), scalar.err);
        assertEquals(1, lines(scalar.err, "] WARN "), scalar.err);
        assertEquals(1, lines(scalar.err, "--add-modules jdk.incubator.vector"), scalar.err);
        // the child's standard output reaches the caller unchanged: the same greedy text as the scalar kernels
        assertFalse(fast.out.isBlank());
        assertEquals(scalar.out, fast.out);
    }

    @Test
    void theChildsExitCodeIsForwarded() throws Exception {
        Result bad = java(List.of(), "generate", "--steps", "-1");
        assertEquals(2, bad.code, bad.err);
        assertTrue(bad.err.contains("--steps"), bad.err);
    }

    @Test
    void theArchiveWrittenThroughARelativeClassPathServesRunsFromOtherFolders() throws Exception {
        Path jar = ThinJar.build(dir.resolve("cli.jar"));
        Path archive = dir.resolve("cli.jsa");
        Path sub = Files.createDirectories(dir.resolve("sub"));
        Result first = javaIn(dir, List.of("-Dspotserve.cds=true", "-cp", "cli.jar"), "--version");
        assertEquals(0, first.code, first.err);
        assertTrue(Files.isRegularFile(archive), "no archive beside the jar");
        Path log = dir.resolve("classes-%p.txt");
        Result second = javaIn(sub, List.of("-Dspotserve.cds=true", "-Xlog:class+load:file=" + log, "-cp",
                "../cli.jar"), "--version");
        assertEquals(0, second.code, second.err);
        assertTrue(second.out.startsWith("SpotServe-J "), second.out);
        String classes;
        try (var files = Files.list(dir)) {
            classes = String.join("\n", files.filter(f -> f.getFileName().toString().startsWith("classes-"))
                    .map(f -> {
                        try {
                            return Files.readString(f);
                        } catch (IOException e) {
                            throw new java.io.UncheckedIOException(e);
                        }
                    }).toList());
        }
        assertTrue(classes.contains("io.spotserve.examples.Main$Top source: shared objects file (top)"),
                "the child did not use the archive");

        // a truncated archive (a full disk) would crash every JVM that maps it: never installed
        String javaCmd = ProcessHandle.current().info().command().orElse("java");
        assertTrue(FastPathLauncher.mappable(javaCmd, archive, jar.toString()));
        Path cut = dir.resolve("cut.jsa");
        byte[] bytes = Files.readAllBytes(archive);
        Files.write(cut, java.util.Arrays.copyOf(bytes, bytes.length / 3));
        assertFalse(FastPathLauncher.mappable(javaCmd, cut, jar.toString()));
    }

    @Test
    void classPathsAreMadeAbsolute() {
        String sep = System.getProperty("path.separator");
        String abs = FastPathLauncher.absolute("a.jar" + sep + "lib/../b.jar");
        Path cwd = Path.of("").toAbsolutePath();
        assertEquals(cwd.resolve("a.jar") + sep + cwd.resolve("b.jar"), abs);
    }

    @Test
    void theArchiveLivesBesideASingleJarOrInTheTempFolder() {
        Path jar = dir.resolve("x.jar");
        assertEquals(dir.resolve("x.jsa"), FastPathLauncher.archivePath(jar.toString()));
        Path other = FastPathLauncher.archivePath("a.jar" + System.getProperty("path.separator") + "b.jar");
        assertTrue(other.getFileName().toString().startsWith("spotserve-"), other.toString());
        assertTrue(other.toString().endsWith(".jsa"), other.toString());
    }

    @Test
    void theChildGetsTheSerialCollectorAndASmallYoungGenerationUnlessTheUserChose() {
        assertEquals(List.of("-XX:+UseSerialGC", "-Xmn8m"), FastPathLauncher.heapOptions(List.of("-Xmx2g")));
        assertEquals(List.of("-XX:+UseSerialGC"), FastPathLauncher.heapOptions(List.of("-Xmn64m")));
        assertEquals(List.of("-XX:+UseSerialGC"), FastPathLauncher.heapOptions(List.of("-XX:NewRatio=2")));
        assertEquals(List.of(), FastPathLauncher.heapOptions(List.of("-XX:+UseG1GC")));
        assertEquals(List.of(), FastPathLauncher.heapOptions(List.of("-XX:+UseParallelGC", "-Xmn4m")));
    }
}
