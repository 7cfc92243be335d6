package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code spotserve} script at the repository root: one JVM with the fast path (no re-launch), run.c's exact
 * text, the exit code of the command, and the class-data-sharing archive it writes beside the jar on first use,
 * re-uses from any folder, and writes again when the jar is newer.
 */
class LauncherScriptTest {
    private static final Path SCRIPT = Path.of("..", "spotserve").toAbsolutePath().normalize();

    @TempDir
    Path dir;

    private record Result(int code, byte[] out, String err) {
    }

    /** {@code sh spotserve args} in {@code cwd} with the given environment additions, at most 120 s. */
    private Result run(Path cwd, Map<String, String> env, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("/bin/sh", SCRIPT.toString()));
        cmd.addAll(List.of(args));
        Path out = dir.resolve("out.bin");
        Path err = dir.resolve("err.txt");
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(cwd.toFile())
                .redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().remove("JAVA_OPTS");
        pb.environment().remove("JDK_JAVA_OPTIONS");
        pb.environment().remove("SPOTSERVE_CDS");
        pb.environment().put("JAVA_HOME", Path.of(System.getProperty("java.home")).toString());
        pb.environment().putAll(env);
        Process p = pb.start();
        try {
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "timed out: " + cmd);
        } finally {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        return new Result(p.exitValue(), Files.readAllBytes(out), Files.readString(err, StandardCharsets.UTF_8));
    }

    @Test
    void runsTheVectorKernelsInOneJvmWithRuncsTextAndAnArchiveUsableFromAnyFolder() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/bin/sh")), "needs /bin/sh");
        assertTrue(Files.isRegularFile(SCRIPT), "no script at " + SCRIPT);
        Path jar = ThinJar.build(dir.resolve("cli.jar"));
        Path archive = dir.resolve("cli.jsa");
        RuncReferences.Case ref = RuncReferences.find("greedy-once-128");
        String info = "-Dorg.slf4j.simpleLogger.log.io.spotserve.examples.GenerateCommand=info";
        String[] gen = {"generate", "--prompt", ref.prompt(), "--steps", String.valueOf(ref.steps()),
                "--temperature", "0", "--threads", "1"};

        Result first = run(dir, Map.of("SPOTSERVE_JAR", jar.toString(), "JAVA_OPTS", info, "SPOTSERVE_CDS", "true"),
                gen);
        assertEquals(0, first.code, first.err);
        assertArrayEquals(ref.stdoutBytes(), first.out, first.err);
        assertTrue(first.err.contains("executor cpu-vector"), first.err);
        assertFalse(first.err.contains("] WARN "), first.err);
        assertFalse(first.err.contains("CompileCommand"), first.err);
        assertTrue(Files.isRegularFile(archive) && Files.size(archive) > 0, "no archive written beside the jar");
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(), files.filter(f -> f.toString().endsWith(".tmp")).toList());
        }

        // from another folder: the same text, the application's classes come from the archive, one JVM only
        Path elsewhere = Files.createDirectories(dir.resolve("elsewhere"));
        Path log = dir.resolve("classes-%p.txt");
        Result second = run(elsewhere, Map.of("SPOTSERVE_JAR", jar.toString(), "SPOTSERVE_CDS", "true",
                "JAVA_OPTS", info + " -Xlog:class+load:file=" + log), gen);
        assertEquals(0, second.code, second.err);
        assertArrayEquals(ref.stdoutBytes(), second.out, second.err);
        List<Path> logs;
        try (Stream<Path> files = Files.list(dir)) {
            logs = files.filter(f -> f.getFileName().toString().startsWith("classes-")).toList();
        }
        assertEquals(1, logs.size(), "expected one JVM, logs: " + logs);
        String classes = Files.readString(logs.get(0));
        assertTrue(classes.contains("io.spotserve.examples.GenerateCommand source: shared objects file (top)"),
                "GenerateCommand was not loaded from the archive");

        // a rebuilt jar makes the archive stale: the next run writes it again
        FileTime built = Files.getLastModifiedTime(jar);
        Files.setLastModifiedTime(archive, FileTime.fromMillis(built.toMillis() - 60_000));
        Result version = run(dir, Map.of("SPOTSERVE_JAR", jar.toString(), "SPOTSERVE_CDS", "true"), "--version");
        assertEquals(0, version.code, version.err);
        assertTrue(new String(version.out, StandardCharsets.UTF_8).startsWith("SpotServe-J "), version.err);
        assertTrue(Files.getLastModifiedTime(archive).compareTo(Files.getLastModifiedTime(jar)) > 0,
                "the stale archive was not written again");
    }

    @Test
    void anArchiveNoJvmCanMapIsNeverInstalled() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/bin/sh")), "needs /bin/sh");
        Path jar = ThinJar.build(dir.resolve("cli.jar"));
        // a JDK whose java writes truncated archives, as on a full disk (JDK 17 dies of SIGBUS mapping one)
        Path home = Files.createDirectories(dir.resolve("jdk/bin"));
        Path java = home.resolve("java");
        Files.writeString(java, "#!/bin/sh\n"
                + "\"" + Path.of(System.getProperty("java.home"), "bin", "java") + "\" \"$@\"\n"
                + "code=$?\n"
                + "for a in \"$@\"; do case $a in -XX:ArchiveClassesAtExit=*) f=${a#*=}; "
                + "head -c 100000 \"$f\" > \"$f.cut\" && mv \"$f.cut\" \"$f\";; esac; done\n"
                + "exit $code\n");
        assertTrue(java.toFile().setExecutable(true));
        Map<String, String> env = Map.of("SPOTSERVE_JAR", jar.toString(), "JAVA_HOME", home.getParent().toString(),
                "SPOTSERVE_CDS", "true");
        for (int run = 0; run < 2; run++) {
            Result r = run(dir, env, "--version");
            assertEquals(0, r.code, r.err);
            assertTrue(new String(r.out, StandardCharsets.UTF_8).startsWith("SpotServe-J "), r.err);
            assertFalse(Files.exists(dir.resolve("cli.jsa")), "a truncated archive was installed");
            try (Stream<Path> files = Files.list(dir)) {
                assertEquals(List.of(), files.filter(f -> f.toString().endsWith(".tmp")).toList());
            }
        }
    }

    @Test
    void forwardsTheExitCodeAndSaysHowToBuildAMissingJar() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/bin/sh")), "needs /bin/sh");
        assertTrue(Files.isRegularFile(SCRIPT), "no script at " + SCRIPT);
        Path jar = ThinJar.build(dir.resolve("cli.jar"));
        Result bad = run(dir, Map.of("SPOTSERVE_JAR", jar.toString()), "generate", "--steps", "-1");
        assertEquals(2, bad.code, bad.err);
        assertTrue(bad.err.contains("--steps"), bad.err);
        assertFalse(Files.exists(dir.resolve("cli.jsa")), "the default (no SPOTSERVE_CDS) wrote an archive");

        Result missing = run(dir, Map.of("SPOTSERVE_JAR", dir.resolve("none.jar").toString()), "--version");
        assertEquals(1, missing.code, missing.err);
        assertTrue(missing.err.contains("mvn -q -DskipTests package"), missing.err);
    }

    @Test
    void passesTheSameJvmOptionsAsTheRelaunch() throws IOException {
        String script = Files.readString(SCRIPT);
        for (String option : FastPathLauncher.JIT_OPTIONS) {
            assertTrue(script.contains(option), "the script lacks " + option);
        }
        for (String option : FastPathLauncher.heapOptions(List.of())) {
            assertTrue(script.contains(option), "the script lacks " + option);
        }
        assertTrue(script.contains("--add-modules jdk.incubator.vector"));
        assertTrue(script.contains(FastPathLauncher.UNSAFE_ALLOW), "the script lacks " + FastPathLauncher.UNSAFE_ALLOW);
    }

    @Test
    void allowsUnsafeMemoryAccessOnlyWhereTheJdkKnowsTheOptionAndTheUserDidNotSetIt() {
        assertEquals(List.of(), FastPathLauncher.unsafeOptions(17, List.of()));
        assertEquals(List.of(), FastPathLauncher.unsafeOptions(23, List.of()));
        assertEquals(List.of(FastPathLauncher.UNSAFE_ALLOW), FastPathLauncher.unsafeOptions(24, List.of("-Xmx1g")));
        assertEquals(List.of(), FastPathLauncher.unsafeOptions(25, List.of("--sun-misc-unsafe-memory-access=warn")));
    }
}
