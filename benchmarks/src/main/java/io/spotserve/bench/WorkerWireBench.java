package io.spotserve.bench;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import io.spotserve.worker.RemoteExecutor;
import io.spotserve.worker.RemoteInstanceProvider;
import io.spotserve.worker.WireSecurity;
import io.spotserve.worker.WorkerMain;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Worker processes on loopback against their in-process anchors, in one run (issue 13's benchmarks 1 and 2):
 * <ol>
 *   <li>migration: every weight slice of the 25M model moved worker to worker ({@code RemoteExecutor.transfer}),
 *       against a plain TCP socket copy of the same number of bytes on the same loopback;</li>
 *   <li>decode: greedy batch-1 decode with P = 2 stages on two worker processes, against the same P = 2 layout on
 *       the CPU executor in this process; the difference per step is the wire's overhead.</li>
 * </ol>
 * Every measurement runs after a warm-up, since fresh worker JVMs run gRPC's per-call code interpreted for the
 * first few thousand calls (a cold unary call costs about 1 ms on a 2-vCPU VM, a warm one about 0.15 ms): one
 * unmeasured migration round, {@code warm} unmeasured unary calls and decode steps.
 * {@code java --add-modules jdk.incubator.vector -cp benchmarks/target/benchmarks.jar io.spotserve.bench.WorkerWireBench
 * [ROUNDS [STEPS [WARM [WORKER_WARMUP [WORKER_WARMUP_SECONDS]]]]]} (defaults 3, 128, 2000; WARM 32 reproduces the cold numbers of the first
 * runs; WORKER_WARMUP is passed to the workers as {@code --warm-up}, their own warm-up calls before they register,
 * 0 = off, absent = the worker's default; WORKER_WARMUP_SECONDS its time bound, {@code --warm-up-time})
 */
public final class WorkerWireBench {
    private static final String TOKEN = "bench-token-0123456789abcdef";

    private WorkerWireBench() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 128;
        int warm = args.length > 2 ? Integer.parseInt(args[2]) : 2000;
        // the workers' own warm-up calls before they register (--warm-up); absent: the worker's default
        String workerWarmUp = args.length > 3 ? args[3] : null;
        String workerWarmUpTime = args.length > 4 ? args[4] : null; // seconds (--warm-up-time)
        LlamaCheckpoint ckpt = DecodeWorkload.checkpoint25M();
        Path token = Files.createTempFile("spotserve-bench", ".token");
        Files.writeString(token, TOKEN);
        List<Process> workers = new ArrayList<>();
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(WireSecurity.token(TOKEN))
                .leaseTimeout(java.time.Duration.ofSeconds(10)).build()) {
            long launched = System.nanoTime();
            for (int i = 0; i < 2; i++) {
                List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                        .toString(), "--add-modules", "jdk.incubator.vector", "-Xmx1g", "-cp",
                        System.getProperty("java.class.path"), WorkerMain.class.getName(), "--controller",
                        controller.address(), "--devices", "2", "--device-memory", "512m", "--token-file",
                        token.toString(), "--executor", "cpu"));
                // extra JVM options for the worker processes only (A/B of executor settings): -Dbench.workerJvm="..."
                String extra = System.getProperty("bench.workerJvm", "").trim();
                if (!extra.isEmpty()) {
                    cmd.addAll(1, List.of(extra.split("\\s+")));
                }
                if (workerWarmUp != null) {
                    cmd.addAll(List.of("--warm-up", workerWarmUp));
                }
                if (workerWarmUpTime != null) {
                    cmd.addAll(List.of("--warm-up-time", workerWarmUpTime));
                }
                workers.add(new ProcessBuilder(cmd).inheritIO().start());
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (controller.liveWorkers().size() < 2) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("the two worker processes did not register within 60 s");
                }
                Thread.sleep(50);
            }
            System.out.printf("workers: both registered %d ms after launch (worker warm-up %s calls, %s s)%n",
                    (System.nanoTime() - launched) / 1_000_000, workerWarmUp == null ? "default" : workerWarmUp,
                    workerWarmUpTime == null ? "default" : workerWarmUpTime);
            List<String> ids = controller.liveWorkers();
            RemoteExecutor ex = controller.executor();
            int blocks = Integer.getInteger("bench.decodeAB", 0);
            if (blocks > 0) { // only the interleaved decode comparison
                decodeInterleaved(ex, ckpt, ids, steps, warm, blocks);
                return;
            }
            migration(ex, ckpt, ids, rounds, workers);
            ping(ex, ckpt, ids, 500, Math.max(50, warm));
            decode(ex, ckpt, ids, steps, warm, workers);
        } finally {
            for (Process p : workers) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
            }
            Files.deleteIfExists(token);
        }
    }

    private static void migration(RemoteExecutor ex, LlamaCheckpoint ckpt, List<String> ids, int rounds,
                                  List<Process> workers) throws Exception {
        ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
        Device a = ex.createDevice(new DeviceId(ids.get(0), 0), 512L << 20);
        Device b = ex.createDevice(new DeviceId(ids.get(1), 0), 512L << 20);
        Pipeline from = ex.createPipeline(layout, List.of(a), 1);
        Pipeline to = ex.createPipeline(layout, List.of(b), 1);
        from.loadWeights(ckpt);
        List<ContextSlice> slices = layout.weightSlices(0, 0);
        double[] wire = new double[rounds];
        double[] batched = new double[rounds];
        double[] socket = new double[rounds];
        double[][] cpu = new double[2][rounds]; // both workers' CPU seconds per round, per mode
        long bytes = 0;
        for (int r = -1; r < rounds; r++) { // round -1 warms the data path up and is not measured
            // one slice per call (the SPI's transfer), then all slices in one call (transferAll: export, stream and
            // import of consecutive slices overlap), then the socket copy of the same bytes
            for (int mode = 0; mode < 2; mode++) {
                long before = ex.sliceBytes();
                double cpu0 = cpuSeconds(workers);
                long t0 = System.nanoTime();
                if (mode == 0) {
                    for (ContextSlice s : slices) {
                        ex.transfer(from, 0, 0, s, to, 0, 0);
                    }
                } else {
                    ex.transferAll(from, 0, 0, slices, to, 0, 0);
                }
                double sec = (System.nanoTime() - t0) / 1e9;
                bytes = ex.sliceBytes() - before;
                if (r >= 0) {
                    (mode == 0 ? wire : batched)[r] = bytes / sec / 1e6;
                    cpu[mode][r] = cpuSeconds(workers) - cpu0;
                }
                for (ContextSlice s : slices) {
                    to.releaseSlice(0, 0, s);
                }
            }
            if (r >= 0) {
                socket[r] = socketCopy(bytes);
            }
        }
        from.close();
        to.close();
        ex.destroyDevice(a);
        ex.destroyDevice(b);
        double w = median(wire);
        double bt = median(batched);
        double s = median(socket);
        System.out.printf("migration: %d weight slices, %.1f MB per round; worker-to-worker %.0f MB/s one slice per "
                + "transfer, %.0f MB/s with transferAll; plain socket copy %.0f MB/s (median of %d); ratio %.2f per "
                + "slice, %.2f transferAll; rounds per slice %s transferAll %s socket %s%n", slices.size(), bytes / 1e6,
                w, bt, s, rounds, w / s, bt / s, Arrays.toString(round(wire)), Arrays.toString(round(batched)),
                Arrays.toString(round(socket)));
        System.out.printf("migration CPU of the two worker JVMs per round (all their threads, median of %d): %.3f s one "
                + "slice per transfer, %.3f s transferAll (%.2f / %.2f s per GB); rounds per slice %s transferAll %s%n",
                rounds, median(cpu[0]), median(cpu[1]), median(cpu[0]) / bytes * 1e9, median(cpu[1]) / bytes * 1e9,
                Arrays.toString(Arrays.stream(cpu[0]).map(v -> Math.round(v * 1000) / 1000.0).toArray()),
                Arrays.toString(Arrays.stream(cpu[1]).map(v -> Math.round(v * 1000) / 1000.0).toArray()));
    }

    /** User + system CPU seconds the processes have used so far (0 where the platform does not say). */
    private static double cpuSeconds(List<Process> processes) {
        double s = 0;
        for (Process p : processes) {
            s += p.toHandle().info().totalCpuDuration().map(d -> d.toNanos() / 1e9).orElse(0.0);
        }
        return s;
    }

    /**
     * The floor under every remote step: median microseconds of one unary call, controller to one worker, timed as
     * opening and closing a sequence on a pipeline there ({@code calls} pairs after 50 warm-up pairs).
     */
    private static void ping(RemoteExecutor ex, LlamaCheckpoint ckpt, List<String> ids, int calls, int warm) {
        Device d = ex.createDevice(new DeviceId(ids.get(0), 0), 64L << 20);
        Pipeline p = ex.createPipeline(ShardLayout.of(ckpt.config(), 1, 1), List.of(d), 1);
        double[] us = new double[calls];
        for (int i = 0; i < warm + calls; i++) {
            long t0 = System.nanoTime();
            p.openSequence(i + 1, 8);
            p.closeSequence(i + 1);
            if (i >= warm) {
                us[i - warm] = (System.nanoTime() - t0) / 2e3;
            }
        }
        p.close();
        ex.destroyDevice(d);
        double[] sorted = us.clone();
        Arrays.sort(sorted);
        System.out.printf("unary call, controller to one worker (openSequence / closeSequence): median %.0f us, "
                + "p10 %.0f us, p90 %.0f us over %d calls%n", median(us), sorted[calls / 10], sorted[calls * 9 / 10],
                calls);
    }

    /** MB/s of copying {@code bytes} over a loopback TCP connection in 4 MiB writes, reader in another thread. */
    static double socketCopy(long bytes) throws Exception {
        byte[] buf = new byte[4 << 20];
        Arrays.fill(buf, (byte) 7);
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            Thread reader = new Thread(() -> {
                try (Socket s = server.accept(); InputStream in = s.getInputStream()) {
                    byte[] rb = new byte[4 << 20];
                    long got = 0;
                    while (got < bytes) {
                        int n = in.read(rb);
                        if (n < 0) {
                            break;
                        }
                        got += n;
                    }
                    s.getOutputStream().write(1);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            reader.start();
            long t0 = System.nanoTime();
            try (Socket c = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort());
                 OutputStream out = c.getOutputStream()) {
                long sent = 0;
                while (sent < bytes) {
                    int n = (int) Math.min(buf.length, bytes - sent);
                    out.write(buf, 0, n);
                    sent += n;
                }
                out.flush();
                if (c.getInputStream().read() != 1) {
                    throw new IllegalStateException("reader did not confirm");
                }
            }
            double sec = (System.nanoTime() - t0) / 1e9;
            reader.join();
            return bytes / sec / 1e6;
        }
    }

    private static double ownCpuSeconds() {
        return ProcessHandle.current().info().totalCpuDuration().map(d -> d.toNanos() / 1e9).orElse(0.0);
    }

    private static void decode(RemoteExecutor ex, LlamaCheckpoint ckpt, List<String> ids, int steps, int warm,
                               List<Process> workers) {
        ShardLayout layout = ShardLayout.of(ckpt.config(), 2, 1);
        List<Device> devices = List.of(ex.createDevice(new DeviceId(ids.get(0), 1), 512L << 20),
                ex.createDevice(new DeviceId(ids.get(1), 1), 512L << 20));
        Pipeline remote = ex.createPipeline(layout, devices, 1);
        remote.loadWeights(ckpt);
        long[] before = new long[3];
        double[] cpuBefore = new double[2]; // the workers', this JVM's (controller) CPU seconds
        StepTimes remoteTimes = perStep(remote, steps, warm, () -> {
            before[0] = ex.steps();
            before[1] = ex.stepComputeNanos();
            before[2] = ex.stepHandlerNanos();
            cpuBefore[0] = cpuSeconds(workers);
            cpuBefore[1] = ownCpuSeconds();
        });
        double workerCpuUs = (cpuSeconds(workers) - cpuBefore[0]) * 1e6 / steps;
        double controllerCpuUs = (ownCpuSeconds() - cpuBefore[1]) * 1e6 / steps;
        double remoteUs = remoteTimes.medianUs();
        double remoteMeanUs = remoteTimes.meanUs();
        long n = ex.steps() - before[0];
        double computeUs = (ex.stepComputeNanos() - before[1]) / 1e3 / n;
        double handlerUs = (ex.stepHandlerNanos() - before[2]) / 1e3 / n;
        remote.close();
        double localUs;
        double localMeanUs;
        double localCpuUs;
        try (Executor cpu = new CpuExecutor(ExecutorOptions.defaults())) {
            List<Device> ds = List.of(cpu.createDevice(new DeviceId("local", 0), 512L << 20),
                    cpu.createDevice(new DeviceId("local", 1), 512L << 20));
            Pipeline local = cpu.createPipeline(layout, ds, 1);
            local.loadWeights(ckpt);
            double[] localBefore = new double[1];
            StepTimes localTimes = perStep(local, steps, warm, () -> localBefore[0] = ownCpuSeconds());
            localCpuUs = (ownCpuSeconds() - localBefore[0]) * 1e6 / steps;
            localUs = localTimes.medianUs();
            localMeanUs = localTimes.meanUs();
            local.close();
        }
        System.out.printf("decode 25M, P=2, batch 1, %d steps after %d warm-up steps: two worker processes %.1f tok/s (%.0f us/step), one "
                + "process %.1f tok/s (%.0f us/step); ratio %.2f, wire overhead %.0f us/step%n", steps, warm, 1e6 / remoteUs,
                remoteUs, 1e6 / localUs, localUs, localUs / remoteUs, remoteUs - localUs);
        System.out.printf("decode on the workers, means per step: whole step %.0f us; forward passes %.0f us (both "
                + "stages; one process: %.0f us per whole step), step handlers %.0f us (forward passes + decode, checks, "
                + "encode), the rest %.0f us (network, thread hand-offs, the controller's side)%n", remoteMeanUs,
                computeUs, localMeanUs, handlerUs, remoteMeanUs - handlerUs);
        System.out.printf("decode CPU per step (user + system, all threads, JIT and GC included): two worker processes "
                + "%.0f us + controller %.0f us = %.0f us; one process %.0f us%n", workerCpuUs, controllerCpuUs,
                workerCpuUs + controllerCpuUs, localCpuUs);
    }

    /**
     * Decode 25M, P = 2, batch 1, in {@code blocks} rounds of three interleaved blocks of {@code steps} steps each: in
     * one process, on the two workers with the last stage's logits collected straight from its worker, and relayed
     * back through the first worker ({@code RemotePipeline.directLogits}, set by reflection). All three pipelines are
     * warmed up first ({@code warm} steps each) and stay open, so every block runs on warm JIT code and the three
     * see the same machine state over the run; prints each block's median and the medians over blocks.
     */
    private static void decodeInterleaved(RemoteExecutor ex, LlamaCheckpoint ckpt, List<String> ids, int steps,
                                          int warm, int blocks) throws Exception {
        ShardLayout layout = ShardLayout.of(ckpt.config(), 2, 1);
        Pipeline remote = ex.createPipeline(layout, List.of(ex.createDevice(new DeviceId(ids.get(0), 1), 512L << 20),
                ex.createDevice(new DeviceId(ids.get(1), 1), 512L << 20)), 1);
        remote.loadWeights(ckpt);
        java.lang.reflect.Field direct = Class.forName("io.spotserve.worker.RemotePipeline")
                .getDeclaredField("directLogits");
        direct.setAccessible(true);
        boolean defaultDirect = direct.getBoolean(null);
        try (Executor cpu = new CpuExecutor(ExecutorOptions.defaults())) {
            Pipeline local = cpu.createPipeline(layout, List.of(cpu.createDevice(new DeviceId("local", 0), 512L << 20),
                    cpu.createDevice(new DeviceId("local", 1), 512L << 20)), 1);
            local.loadWeights(ckpt);
            perStep(local, 1, warm, () -> { });
            direct.setBoolean(null, true);
            perStep(remote, 1, warm / 2, () -> { });
            direct.setBoolean(null, false);
            perStep(remote, 1, warm / 2, () -> { });
            String[] names = {"one process", "workers, logits direct", "workers, logits relayed"};
            double[][] med = new double[3][blocks];
            for (int b = 0; b < blocks; b++) {
                med[0][b] = perStep(local, steps, 0, () -> { }).medianUs();
                direct.setBoolean(null, true);
                med[1][b] = perStep(remote, steps, 0, () -> { }).medianUs();
                direct.setBoolean(null, false);
                med[2][b] = perStep(remote, steps, 0, () -> { }).medianUs();
                System.out.printf("block %d: one process %.0f us, direct %.0f us (%.2f), relayed %.0f us (%.2f)%n", b,
                        med[0][b], med[1][b], med[0][b] / med[1][b], med[2][b], med[0][b] / med[2][b]);
            }
            double[] m = new double[3];
            for (int k = 0; k < 3; k++) {
                double[] sorted = med[k].clone();
                Arrays.sort(sorted);
                m[k] = sorted[blocks / 2];
            }
            System.out.printf("decode interleaved, %d blocks x %d steps: medians %s %.0f us, %s %.0f us (ratio %.2f), "
                    + "%s %.0f us (ratio %.2f)%n", blocks, steps, names[0], m[0], names[1], m[1], m[0] / m[1], names[2],
                    m[2], m[0] / m[2]);
            local.close();
        } finally {
            direct.setBoolean(null, defaultDirect);
            remote.close();
        }
    }

    /**
     * Microseconds per greedy decode step over {@code steps} steps after {@code warm} warm-up steps;
     * {@code measuredFromHere} runs just before the first measured step.
     */
    private static StepTimes perStep(Pipeline p, int steps, int warm, Runnable measuredFromHere) {
        int window = p.layout().config().seqLen();
        int token = 1;
        double[] us = new double[steps];
        int pos = 0;
        long seq = 1;
        p.openSequence(seq, window);
        for (int i = 0; i < warm + steps; i++, pos++) {
            if (pos == window) { // a long warm-up restarts the sequence instead of running past the context window
                p.closeSequence(seq);
                p.openSequence(++seq, window);
                pos = 0;
            }
            if (i == warm) {
                measuredFromHere.run();
            }
            long t0 = System.nanoTime();
            float[] logits = p.decode(new long[] {seq}, new int[] {token}, new int[] {pos})[0];
            if (i >= warm) {
                us[i - warm] = (System.nanoTime() - t0) / 1e3;
            }
            int best = 0;
            for (int v = 1; v < logits.length; v++) {
                if (logits[v] > logits[best]) {
                    best = v;
                }
            }
            token = best;
        }
        p.closeSequence(seq);
        return new StepTimes(median(us), Arrays.stream(us).average().orElse(Double.NaN));
    }

    /** Microseconds per measured decode step: their median and their mean. */
    private record StepTimes(double medianUs, double meanUs) {
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    private static double[] round(double[] v) {
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = Math.round(v[i]);
        }
        return out;
    }
}
