package io.spotserve.bench;

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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A tensor group split over two worker processes against the same group inside one worker and inside this process,
 * in one run: greedy batch-1 decode of the 25M model with P = 1, M = 2, (a) both shards on worker 0 (the group
 * reduces in-process there), (b) shard 0 on worker 0 and shard 1 on worker 1 (partials exchanged at each of the
 * 1 + 2 x layers reduce points: raw frames on the workers' step sockets, or {@code Peer/PartialsStream} with
 * {@code stream}), (c) the CPU executor here (the anchor). Prints the median and mean microseconds per step, the
 * workers' CPU time per step (both processes, from {@link ProcessHandle.Info#totalCpuDuration}) of (a) and (b), and
 * the partial bytes per step of (b).
 * {@code java --add-modules jdk.incubator.vector -cp benchmarks/target/benchmarks.jar io.spotserve.bench.GroupStepBench
 * [STEPS [WARM [THREADS [socket|stream]]]]} (defaults 200, 500, the workers' default kernel threads, socket)
 */
public final class GroupStepBench {
    private static final String TOKEN = "bench-token-0123456789abcdef";

    private GroupStepBench() {
    }

    public static void main(String[] args) throws Exception {
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : 200;
        int warm = args.length > 1 ? Integer.parseInt(args[1]) : 500;
        String threads = args.length > 2 ? args[2] : null;
        String exchange = args.length > 3 ? args[3] : "socket";
        if (!exchange.equals("socket") && !exchange.equals("stream")) {
            throw new IllegalArgumentException("the exchange is socket or stream, got " + exchange);
        }
        LlamaCheckpoint ckpt = DecodeWorkload.checkpoint25M();
        Path token = Files.createTempFile("spotserve-bench", ".token");
        Files.writeString(token, TOKEN);
        List<Process> workers = new ArrayList<>();
        try (RemoteInstanceProvider controller = RemoteInstanceProvider.builder().security(WireSecurity.token(TOKEN))
                .leaseTimeout(java.time.Duration.ofSeconds(10)).build()) {
            for (int i = 0; i < 2; i++) {
                List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                        .toString(), "--add-modules", "jdk.incubator.vector", "-Xmx1g", "-cp",
                        System.getProperty("java.class.path"), WorkerMain.class.getName(), "--controller",
                        controller.address(), "--devices", "2", "--device-memory", "512m", "--token-file",
                        token.toString(), "--executor", "cpu", "--bulk-transfer", exchange.equals("socket") ? "on" : "off"));
                if (threads != null) {
                    cmd.addAll(List.of("--threads", threads));
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
            List<String> ids = controller.liveWorkers();
            RemoteExecutor ex = controller.executor();
            ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 2);
            double[] inWorker = remote(ex, ckpt, layout, new DeviceId(ids.get(0), 0), new DeviceId(ids.get(0), 1),
                    steps, warm, workers);
            long reduce0 = ex.reduceBytes();
            double[] split = remote(ex, ckpt, layout, new DeviceId(ids.get(0), 0), new DeviceId(ids.get(1), 0),
                    steps, warm, workers);
            double reducePerStep = (ex.reduceBytes() - reduce0) / (double) (steps + warm);
            double[] local;
            ExecutorOptions options = threads == null ? ExecutorOptions.defaults()
                    : ExecutorOptions.defaults().withThreads(Integer.parseInt(threads));
            try (Executor cpu = new CpuExecutor(options)) {
                Pipeline p = cpu.createPipeline(layout, List.of(cpu.createDevice(new DeviceId("local", 0), 512L << 20),
                        cpu.createDevice(new DeviceId("local", 1), 512L << 20)), 1);
                p.loadWeights(ckpt);
                local = perStep(p, steps, warm);
                p.close();
            }
            System.out.printf("decode 25M, P=1 M=2, batch 1, %d steps after %d warm-up, exchange %s, threads %s: "
                    + "median/mean us per step: one process %.0f / %.0f; group in one worker %.0f / %.0f; group split "
                    + "over two workers %.0f / %.0f (%.0f B of partials per step, %d reduce points); split / in-worker "
                    + "%.2fx (medians); workers' CPU us per step: in one worker %.0f, split %.0f%n", steps, warm,
                    exchange, threads == null ? "default" : threads, local[0], local[1], inWorker[0], inWorker[1],
                    split[0], split[1], reducePerStep, 1 + 2 * ckpt.config().layers(), split[0] / inWorker[0],
                    inWorker[2], split[2]);
        } finally {
            for (Process p : workers) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
            }
            Files.deleteIfExists(token);
        }
    }

    /** {median, mean, workers' CPU} microseconds per step (CPU over the timed steps and the warm-up). */
    private static double[] remote(RemoteExecutor ex, LlamaCheckpoint ckpt, ShardLayout layout, DeviceId a, DeviceId b,
                                   int steps, int warm, List<Process> workers) {
        Device da = ex.createDevice(a, 256L << 20);
        Device db = ex.createDevice(b, 256L << 20);
        Pipeline p = ex.createPipeline(layout, List.of(da, db), 1);
        p.loadWeights(ckpt);
        long cpu0 = cpuNanos(workers);
        double[] timed = perStep(p, steps, warm);
        double[] out = {timed[0], timed[1], (cpuNanos(workers) - cpu0) / 1e3 / (steps + warm)};
        p.close();
        ex.destroyDevice(da);
        ex.destroyDevice(db);
        return out;
    }

    private static long cpuNanos(List<Process> ps) {
        long total = 0;
        for (Process p : ps) {
            total += p.info().totalCpuDuration().orElseThrow().toNanos();
        }
        return total;
    }

    /** {median, mean} microseconds per greedy decode step over {@code steps} steps after {@code warm}. */
    private static double[] perStep(Pipeline p, int steps, int warm) {
        int window = p.layout().config().seqLen();
        double[] us = new double[steps];
        int token = 1;
        long seq = 1;
        int pos = 0;
        p.openSequence(seq, window);
        for (int i = 0; i < warm + steps; i++, pos++) {
            if (pos == window) {
                p.closeSequence(seq);
                p.openSequence(++seq, window);
                pos = 0;
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
        double[] sorted = us.clone();
        Arrays.sort(sorted);
        return new double[] {sorted[steps / 2], Arrays.stream(us).average().orElse(0)};
    }
}
