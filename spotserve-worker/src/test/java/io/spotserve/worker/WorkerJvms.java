package io.spotserve.worker;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Starts real worker JVMs ({@link WorkerMain}) on loopback for tests, with the test's class path, logs in
 * target/worker-logs; {@link #close} kills every one still running (use it in {@code @AfterEach}/{@code @AfterAll},
 * so a failing test leaves no process behind).
 */
final class WorkerJvms implements AutoCloseable {
    private final List<Process> started = new ArrayList<>();
    private final Path logs;

    WorkerJvms(String testName) throws IOException {
        logs = Path.of("target", "worker-logs", testName);
        Files.createDirectories(logs);
    }

    /** A token file with {@code token} in target/. */
    Path tokenFile(String name, String token) throws IOException {
        Path f = logs.resolve(name);
        Files.writeString(f, token + "\n", StandardCharsets.US_ASCII);
        return f;
    }

    /** Starts {@code java WorkerMain args...}; its output goes to {@code label}.log. */
    Process start(String label, String... args) throws IOException {
        return start(List.of(), label, args);
    }

    /** Starts {@code java jvmArgs... WorkerMain args...}; its output goes to {@code label}.log. */
    Process start(List<String> jvmArgs, String label, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx192m");
        cmd.add("-XX:+UseSerialGC");
        cmd.add("--add-modules");
        cmd.add("jdk.incubator.vector");
        cmd.add("-Dorg.slf4j.simpleLogger.defaultLogLevel=info");
        cmd.addAll(jvmArgs);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(WorkerMain.class.getName());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(logs.resolve(label + ".log").toFile());
        Process p = pb.start();
        synchronized (started) {
            started.add(p);
        }
        return p;
    }

    String log(String label) throws IOException {
        File f = logs.resolve(label + ".log").toFile();
        return f.exists() ? Files.readString(f.toPath()) : "";
    }

    @Override
    public void close() {
        List<Process> all;
        synchronized (started) {
            all = new ArrayList<>(started);
            started.clear();
        }
        for (Process p : all) {
            p.destroyForcibly();
        }
        for (Process p : all) {
            try {
                p.waitFor(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
