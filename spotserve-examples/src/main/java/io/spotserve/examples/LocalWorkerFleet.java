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
    private final java.util.Map<String, Process> byLabel = new java.util.LinkedHashMap<>();
    private Path tokenFile;
    private final Thread hook = new Thread(this::killAll, "spotserve-replay-workers");

    private LocalWorkerFleet(Path dir, RemoteInstanceProvider controller) {
        this.dir = dir;
        this.controller = controller;
    }

    /**
     * Starts {@code n} workers of {@code deviceMemory} bytes each, with the engine's clock dating their events, and
     * waits (at most {@code timeout}) until all have registered; {@code groupsSpanWorkers} as in {@link #open}.
     *
     * @throws IOException if a process cannot be started or the workers do not all register in time
     */
    static LocalWorkerFleet start(int n, long deviceMemory, Supplier<Duration> clock, Duration timeout,
                                  boolean groupsSpanWorkers) throws IOException, InterruptedException {
        LocalWorkerFleet fleet = open(clock, groupsSpanWorkers);
        try {
            for (int i = 0; i < n; i++) {
                fleet.launch("replay-" + i, deviceMemory, null);
            }
            fleet.awaitRegistered(n, timeout);
        } catch (IOException | InterruptedException | RuntimeException e) {
            fleet.close();
            throw e;
        }
        return fleet;
    }

    /**
     * A controller on loopback with a fresh random token in a private temporary folder, and no worker yet: {@link
     * #launch} starts them. {@code groupsSpanWorkers}: whether the engine may split a tensor group over workers.
     *
     * @throws IOException if the folder or the token file cannot be written
     */
    static LocalWorkerFleet open(Supplier<Duration> clock, boolean groupsSpanWorkers) throws IOException {
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
                .leaseTimeout(Duration.ofSeconds(20)).clock(clock).idPrefix("worker-")
                .tensorGroupsSpanWorkers(groupsSpanWorkers)
                .instanceType("worker", ReplayCommand.SPOT_PRICE, InstanceType.Market.SPOT).build();
        LocalWorkerFleet fleet = new LocalWorkerFleet(dir, controller);
        fleet.tokenFile = tokenFile;
        Runtime.getRuntime().addShutdownHook(fleet.hook);
        return fleet;
    }

    /**
     * Waits (at most {@code timeout}) until {@code n} workers are registered.
     *
     * @throws IOException if a worker exits before it registers or they do not register in time
     */
    void awaitRegistered(int n, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (controller.liveWorkers().size() < n) {
            synchronized (processes) {
                for (Process p : processes) {
                    if (!p.isAlive() && p.exitValue() != 0 && p.exitValue() != 143 && p.exitValue() != 137) {
                        throw new IOException("a worker JVM exited with status " + p.exitValue() + " before it "
                                + "registered; see its log in " + dir);
                    }
                }
            }
            if (System.nanoTime() > deadline) {
                throw new IOException(controller.liveWorkers().size() + " of " + n + " workers registered within "
                        + timeout.toSeconds() + " s; see their logs in " + dir);
            }
            Thread.sleep(20);
        }
    }

    /**
     * Starts worker {@code label} (one device of {@code deviceMemory} bytes); with a {@code noticeGrace} it takes a
     * SIGTERM ({@link #notice}) as its preemption notice with that grace, as {@code --notices signal} does on a VM.
     */
    void launch(String label, long deviceMemory, Duration noticeGrace) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        // no sun.misc.Unsafe warning lines from protobuf-java in every worker's log on JDK 24+ (the re-launch's rule)
        cmd.addAll(FastPathLauncher.unsafeOptions(Runtime.version().feature(), List.of()));
        cmd.addAll(List.of("-Xmx192m", "-XX:+UseSerialGC", "--add-modules", "jdk.incubator.vector",
                "-cp", System.getProperty("java.class.path"), WorkerMain.class.getName(),
                "--controller", controller.address(), "--devices", "1", "--device-memory", Long.toString(deviceMemory),
                "--token-file", tokenFile.toString(), "--label", label, "--threads", "1"));
        if (noticeGrace != null) {
            cmd.addAll(List.of("--notices", "signal", "--notice-grace",
                    Double.toString(noticeGrace.toNanos() / 1e9)));
        }
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve(label + ".log").toFile()).start();
        synchronized (processes) {
            processes.add(p);
            byLabel.put(label, p);
        }
    }

    /** SIGTERMs worker {@code label}: its preemption notice (when launched with a grace); false if it is not running. */
    boolean notice(String label) {
        Process p;
        synchronized (processes) {
            p = byLabel.get(label);
        }
        if (p == null || !p.isAlive()) {
            return false;
        }
        p.destroy();
        return true;
    }

    /** SIGKILLs worker {@code label}, as the cloud takes a VM at its deadline; false if it is not running. */
    boolean kill(String label) {
        Process p;
        synchronized (processes) {
            p = byLabel.get(label);
        }
        if (p == null || !p.isAlive()) {
            return false;
        }
        p.destroyForcibly();
        return true;
    }

    /** Worker JVMs started so far. */
    int launched() {
        synchronized (processes) {
            return processes.size();
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
