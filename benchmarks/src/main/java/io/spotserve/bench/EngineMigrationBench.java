package io.spotserve.bench;

import io.spotserve.clock.SystemEngineClock;
import io.spotserve.engine.Reconfiguration;
import io.spotserve.engine.ServingEngine;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import io.spotserve.worker.RemoteExecutor;
import io.spotserve.worker.RemoteInstanceProvider;
import io.spotserve.worker.WireSecurity;
import io.spotserve.worker.WorkerMain;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Issue 13's migration benchmark on the engine's own path: a {@link ServingEngine} serving the 25M model on one worker
 * process (P1M1) is told that its worker will be preempted (SIGTERM = notice) while a fresh worker has just joined, so
 * the engine re-plans onto the fresh worker and migrates all weights worker to worker during the grace period. Per
 * round: the reconfiguration's bytes moved over its pause (planning, pipeline creation, the migration itself: what a
 * user waits for), against a plain loopback socket copy of the same bytes in the same run.
 * {@code java --add-modules jdk.incubator.vector -cp benchmarks/target/benchmarks.jar
 * io.spotserve.bench.EngineMigrationBench [ROUNDS]} (default 6; the first round is a warm-up and not counted). The old
 * path (every piece staged at its source and sent alone) for comparison: {@code -Dspotserve.worker.batchTransfers=false}
 * (passed to the controller, i.e. this process); without the fresh workers' migration warm-up:
 * {@code -Dbench.migrationWarmUp=0}; extra JVM options for the workers: {@code -Dbench.workerJvm="..."}.
 */
public final class EngineMigrationBench {
    private static final String TOKEN = "bench-token-0123456789abcdef";

    private EngineMigrationBench() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 6;
        LlamaCheckpoint ckpt = DecodeWorkload.checkpoint25M();
        Path shared = Path.of(System.getProperty("spotserve.shared.dir", "../shared"));
        Tokenizer tok = Tokenizer.load(shared.resolve("models/tok512.bin"), ckpt.config().vocabSize());
        Path token = Files.createTempFile("spotserve-bench", ".token");
        Files.writeString(token, TOKEN);
        List<Process> workers = new ArrayList<>();
        SystemEngineClock clock = new SystemEngineClock();
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(WireSecurity.token(TOKEN))
                .leaseTimeout(Duration.ofSeconds(10)).clock(clock::now).build()) {
            RemoteExecutor ex = controller.executor();
            workers.add(launch(controller, token));
            String serving = awaitNewWorker(controller, List.of());
            try (ServingEngine engine = ServingEngine.builder().model(ckpt, tok).instances(controller).executor(ex)
                    .clock(clock).parallelism(1, 1).maxBatch(1).build()) {
                awaitServing(engine, serving, 60);
                double[] engineMbs = new double[rounds];
                double[] socketMbs = new double[rounds];
                long[] pauseMs = new long[rounds];
                long bytes = 0;
                for (int r = -1; r < rounds; r++) {
                    List<String> before = controller.liveWorkers();
                    workers.add(launch(controller, token));
                    String fresh = awaitNewWorker(controller, before);
                    int seen = engine.metrics().reconfigurations().size();
                    long calls0 = ex.peerTransfers();
                    long slices0 = ex.peerSlices();
                    workers.get(workers.size() - 2).destroy(); // SIGTERM: the serving worker's notice
                    Reconfiguration moved = awaitMigration(engine, seen, fresh, 60);
                    long calls = ex.peerTransfers() - calls0;
                    long slices = ex.peerSlices() - slices0;
                    Process old = workers.get(workers.size() - 2);
                    old.destroyForcibly();
                    old.waitFor(10, TimeUnit.SECONDS);
                    bytes = moved.bytesMigrated();
                    double sec = moved.pause().toNanos() / 1e9;
                    System.out.printf("round %d: %s -> %s, %.1f MB in %d slices / %d calls, pause %.0f ms (%s)%n", r,
                            moved.from(), moved.to(), bytes / 1e6, slices, calls, sec * 1e3, moved.reason());
                    if (r >= 0) {
                        engineMbs[r] = bytes / sec / 1e6;
                        pauseMs[r] = Math.round(sec * 1e3);
                        socketMbs[r] = WorkerWireBench.socketCopy(bytes);
                    }
                }
                double e = median(engineMbs);
                double s = median(socketMbs);
                System.out.printf("engine migration (batched transfers %s): %.1f MB per notice; %.0f MB/s through the "
                        + "engine (median of %d), plain socket copy %.0f MB/s; ratio %.2f; rounds engine %s socket %s "
                        + "pause ms %s%n", ex.batchesTransfers() ? "on" : "off", bytes / 1e6, e, rounds, s, e / s,
                        Arrays.toString(round(engineMbs)), Arrays.toString(round(socketMbs)),
                        Arrays.toString(pauseMs));
            }
        } finally {
            for (Process p : workers) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
            }
            Files.deleteIfExists(token);
        }
    }

    private static Process launch(RemoteInstanceProvider controller, Path token) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-Xmx1g", "-cp", System.getProperty("java.class.path"),
                WorkerMain.class.getName(), "--controller", controller.address(), "--devices", "1", "--device-memory",
                "512m", "--token-file", token.toString(), "--executor", "cpu", "--notices", "signal", "--notice-grace",
                "60"));
        // extra JVM options for the worker processes only: -Dbench.workerJvm="..."
        String extra = System.getProperty("bench.workerJvm", "").trim();
        if (!extra.isEmpty()) {
            cmd.addAll(1, List.of(extra.split("\\s+")));
        }
        // the workers' migration warm-up (--migration-warm-up SECONDS, 0 = off; absent = the worker's default)
        String warm = System.getProperty("bench.migrationWarmUp");
        if (warm != null) {
            cmd.addAll(List.of("--migration-warm-up", warm));
        }
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
    }

    private static String awaitNewWorker(RemoteInstanceProvider controller, List<String> before) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            for (String id : controller.liveWorkers()) {
                if (!before.contains(id)) {
                    return id;
                }
            }
            Thread.sleep(20);
        }
        throw new IllegalStateException("no new worker registered within 60 s");
    }

    private static void awaitServing(ServingEngine engine, String worker, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!engine.configuration().contains(worker)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the engine does not serve on " + worker + ": "
                        + engine.configuration());
            }
            Thread.sleep(20);
        }
    }

    /** The first reconfiguration after index {@code seen} that moved bytes onto {@code fresh}. */
    private static Reconfiguration awaitMigration(ServingEngine engine, int seen, String fresh, int seconds)
            throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            List<Reconfiguration> all = engine.metrics().reconfigurations();
            for (int i = seen; i < all.size(); i++) {
                Reconfiguration r = all.get(i);
                if (r.bytesMigrated() > 0 && r.to().contains(fresh) && !r.from().contains(fresh)) {
                    return r;
                }
            }
            Thread.sleep(20);
        }
        throw new IllegalStateException("no migration onto " + fresh + " within " + seconds + " s: "
                + engine.metrics().reconfigurations());
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static double[] round(double[] v) {
        return Arrays.stream(v).map(Math::rint).toArray();
    }
}
