package io.spotserve.bench;

import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.GgufModel;
import java.lang.management.ManagementFactory;
import java.util.Arrays;

/**
 * The loaded-machine companion of {@link Q8DecodeBenchmark}: the <em>CPU time</em> and the heap allocation of one
 * batch-1 decode step of the 25M model, fp32 (dequantized) and Q8_0 (int8 blocks) served from the same Q8_0 GGUF,
 * at one executor thread, so the whole step runs on the calling thread and that thread's CPU time is the step's
 * cost. Wall-clock tokens/s on a machine shared with other builds measure the neighbours; CPU time mostly does not
 * (it still rises a little with cache and memory-bandwidth contention, more for fp32's 24.7 MB of weights per token
 * than for Q8_0's 6.6 MB). The two precisions are stepped in alternating rounds after a warm-up, in one JVM.
 *
 * <pre>java --add-modules jdk.incubator.vector -Xmx2g -cp benchmarks/target/benchmarks.jar \
 *     io.spotserve.bench.DecodeCpuTime [rounds=12] [steps=200] [warmup=1500]</pre>
 *
 * Run from the repository root (it reads {@code ../shared/models/tok512.bin}, as the JMH benchmark does).
 */
public final class DecodeCpuTime {
    private DecodeCpuTime() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 12;
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 200;
        int warmup = args.length > 2 ? Integer.parseInt(args[2]) : 1500;
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        GgufModel g = GgufModel.load(Q8DecodeBenchmark.q8File("25M"));
        String[] kinds = {"fp32", "q8_0"};
        DecodeWorkload[] w = new DecodeWorkload[kinds.length];
        for (int i = 0; i < kinds.length; i++) {
            ExecutorOptions o = new ExecutorOptions(1, true).withWeights(WeightPrecision.parse(kinds[i]));
            w[i] = new DecodeWorkload(new CpuExecutor(o), g.weights(), 1, 1);
        }
        long thread = Thread.currentThread().getId();
        try {
            for (int i = 0; i < kinds.length; i++) {
                for (int s = 0; s < warmup; s++) {
                    w[i].step();
                }
            }
            double[][] cpu = new double[kinds.length][rounds];
            double[][] wall = new double[kinds.length][rounds];
            double[][] alloc = new double[kinds.length][rounds];
            for (int r = 0; r < rounds; r++) {
                for (int i = 0; i < kinds.length; i++) {
                    long a0 = mx.getThreadAllocatedBytes(thread);
                    long c0 = mx.getCurrentThreadCpuTime();
                    long t0 = System.nanoTime();
                    for (int s = 0; s < steps; s++) {
                        w[i].step();
                    }
                    wall[i][r] = (System.nanoTime() - t0) / 1e3 / steps;
                    cpu[i][r] = (mx.getCurrentThreadCpuTime() - c0) / 1e3 / steps;
                    alloc[i][r] = (double) (mx.getThreadAllocatedBytes(thread) - a0) / steps;
                }
            }
            for (int i = 0; i < kinds.length; i++) {
                double[] c = sorted(cpu[i]);
                double[] t = sorted(wall[i]);
                double[] a = sorted(alloc[i]);
                System.out.printf("%s: CPU us/step min %.0f median %.0f (tok/s of CPU time %.0f / %.0f); "
                                + "wall us/step min %.0f median %.0f; allocated B/step median %.0f%n", kinds[i], c[0],
                        c[rounds / 2], 1e6 / c[0], 1e6 / c[rounds / 2], t[0], t[rounds / 2], a[rounds / 2]);
            }
            System.out.printf("q8_0 / fp32 speed-up (CPU time): min %.2fx, median %.2fx%n",
                    sorted(cpu[0])[0] / sorted(cpu[1])[0], sorted(cpu[0])[rounds / 2] / sorted(cpu[1])[rounds / 2]);
        } finally {
            for (DecodeWorkload x : w) {
                x.close();
            }
        }
    }

    private static double[] sorted(double[] a) {
        double[] b = a.clone();
        Arrays.sort(b);
        return b;
    }
}
