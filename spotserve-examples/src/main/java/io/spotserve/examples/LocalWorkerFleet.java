package io.spotserve.examples;

import io.spotserve.instance.InstanceType;
import io.spotserve.worker.RemoteInstanceProvider;
import io.spotserve.worker.WireSecurity;
import io.spotserve.worker.WorkerMain;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * {@code replay --workers N}: N worker JVMs ({@link WorkerMain}, one one-device instance each) started on this
 * machine, registered with a controller that listens on loopback and authenticates them with a fresh random token,
 * and {@link #killOne} to SIGKILL one of them mid-replay, the way a spot VM disappears without notice. Their output
 * goes to log files in a temporary folder. {@link #close} kills whatever still runs and removes the folder; a
 * shutdown hook does the same if the CLI is interrupted.
 */
final class LocalWorkerFleet implements AutoCloseable {
    private final Path dir;
    private final RemoteInstanceProvider controller;
    private final List<Process> processes = new ArrayList<>();
    private final Thread hook = new Thread(this::killAll, "spotserve-replay-workers");

    private LocalWorkerFleet(Path dir, RemoteInstanceProvider controller) {
        this.dir = dir;
        this.controller = controller;
    }

    /**
     * Starts {@code n} workers of {@code deviceMemory} bytes each, with the engine's clock dating their events, and
     * waits (at most {@code timeout}) until all have registered.
     *
     * @throws IOException if a process cannot be started or the workers do not all register in time
     */
    static LocalWorkerFleet start(int n, long deviceMemory, Supplier<Duration> clock, Duration timeout)
            throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("spotserve-replay-workers");
        byte[] secret = new byte[24];
        new SecureRandom().nextBytes(secret);
        String token = HexFormat.of().formatHex(secret);
        Path tokenFile = dir.resolve("token");
        Files.writeString(tokenFile, token + "\n", StandardCharsets.US_ASCII);
        try {
            Files.setPosixFilePermissions(tokenFile, PosixFilePermissions.fromString("rw-------"));
        } catch (UnsupportedOperationException ignored) {
            // not a POSIX file system: the folder is private to this user anyway
        }
        RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(WireSecurity.token(token))
                .leaseTimeout(Duration.ofSeconds(6)).clock(clock).idPrefix("worker-")
                .instanceType("worker", ReplayCommand.SPOT_PRICE, InstanceType.Market.SPOT).build();
        LocalWorkerFleet fleet = new LocalWorkerFleet(dir, controller);
        Runtime.getRuntime().addShutdownHook(fleet.hook);
        try {
            for (int i = 0; i < n; i++) {
                fleet.launch(i, tokenFile, deviceMemory);
            }
            long deadline = System.nanoTime() + timeout.toNanos();
            while (controller.liveWorkers().size() < n) {
                for (Process p : fleet.processes) {
                    if (!p.isAlive()) {
                        throw new IOException("a worker JVM exited with status " + p.exitValue() + " before it "
                                + "registered; see its log in " + dir);
                    }
                }
                if (System.nanoTime() > deadline) {
                    throw new IOException(controller.liveWorkers().size() + " of " + n + " workers registered within "
                            + timeout.toSeconds() + " s; see their logs in " + dir);
                }
                Thread.sleep(20);
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            fleet.close();
            throw e;
        }
        return fleet;
    }

    private void launch(int i, Path tokenFile, long deviceMemory) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(List.of("-Xmx192m", "-XX:+UseSerialGC", "--add-modules", "jdk.incubator.vector",
                "-cp", System.getProperty("java.class.path"), WorkerMain.class.getName(),
                "--controller", controller.address(), "--devices", "1", "--device-memory", Long.toString(deviceMemory),
                "--token-file", tokenFile.toString(), "--label", "replay-" + i));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("worker-" + i + ".log").toFile()).start();
        synchronized (processes) {
            processes.add(p);
        }
    }

    /** The controller: the engine's instance provider, and its executor. */
    RemoteInstanceProvider controller() {
        return controller;
    }

    /**
     * SIGKILLs one running worker (the second started, or the first when it is the only one left) and waits until the
     * controller has declared it dead; returns its instance id.
     */
    String killOne(Duration timeout) throws IOException, InterruptedException {
        List<String> before = controller.liveWorkers();
        Process victim;
        synchronized (processes) {
            victim = processes.stream().filter(Process::isAlive).skip(processes.size() > 1 ? 1 : 0).findFirst()
                    .orElseThrow(() -> new IOException("no worker is running"));
        }
        victim.destroyForcibly();
        if (!victim.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new IOException("the killed worker (pid " + victim.pid() + ") did not exit within " + timeout);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            List<String> gone = new ArrayList<>(before);
            gone.removeAll(controller.liveWorkers());
            if (!gone.isEmpty()) {
                return gone.get(0);
            }
            if (System.nanoTime() > deadline) {
                throw new IOException("the controller did not notice the killed worker within " + timeout);
            }
            Thread.sleep(10);
        }
    }

    private void killAll() {
        List<Process> all;
        synchronized (processes) {
            all = new ArrayList<>(processes);
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

    @Override
    public void close() {
        killAll();
        controller.close();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException ignored) {
            // the JVM is shutting down: the hook runs (or ran) anyway
        }
        try (var files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.deleteIfExists(f);
            }
            Files.deleteIfExists(dir);
        } catch (IOException ignored) {
            // a temporary folder left behind is harmless
        }
    }
}
