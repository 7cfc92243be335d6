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
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.add("-Djava.io.tmpdir=" + dir);
        // the model line (executor name) is logged at INFO; the test resources quiet it, this re-enables it
        cmd.add("-Dorg.slf4j.simpleLogger.log.io.spotserve.examples.GenerateCommand=info");
        cmd.addAll(jvmArgs);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(Main.class.getName());
        cmd.addAll(List.of(args));
        Path out = dir.resolve("out.txt");
        Path err = dir.resolve("err.txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
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
