package io.spotserve.bench;

import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.GgufModel;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.ModelWeights;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;

/**
 * Wall time, the calling thread's CPU time and its heap allocation per decode step of one configuration, in
 * rounds after a warm-up: the loaded-machine companion of {@link CpuDecodeBenchmark} and {@link Q8DecodeBenchmark}
 * for A/B runs of two jars one after the other (at one executor thread the whole step runs on the calling thread,
 * so its CPU time is the step's cost whatever the neighbours do). Prints one line per round.
 *
 * <pre>java --add-modules jdk.incubator.vector -Xmx2g -cp benchmarks/target/benchmarks.jar \
 *     io.spotserve.bench.StepCpuTime MODEL WEIGHTS THREADS BATCH [steps=3000] [rounds=6]</pre>
 *
 * MODEL: {@code 25M} (the random llama2.c checkpoint; with WEIGHTS {@code q8_0} or {@code fp32} the Q8_0 GGUF of
 * {@link Q8DecodeBenchmark}, as int8 blocks or dequantized) or {@code stories260K}; WEIGHTS: {@code fp32} or
 * {@code q8_0}; the first half of the steps is warm-up. Run from the repository root.
 */
public final class StepCpuTime {
    private StepCpuTime() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: StepCpuTime MODEL(25M|stories260K) WEIGHTS(fp32|q8_0) THREADS BATCH [steps] [rounds]");
            System.exit(2);
        }
        String model = args[0];
        String weights = args[1];
        int threads = Integer.parseInt(args[2]);
        int batch = Integer.parseInt(args[3]);
        int steps = args.length > 4 ? Integer.parseInt(args[4]) : 3000;
        int rounds = args.length > 5 ? Integer.parseInt(args[5]) : 6;
        ModelWeights w = switch (model) {
            case "25M" -> weights.equals("q8_0") ? GgufModel.load(Q8DecodeBenchmark.q8File("25M")).weights()
                    : DecodeWorkload.checkpoint25M();
            case "stories260K" -> LlamaCheckpoint.load(Path.of(System.getProperty("spotserve.shared.dir", "../shared"),
                    "models", "stories260K.bin"));
            default -> throw new IllegalArgumentException("model " + model + " unknown; expected 25M or stories260K");
        };
        ExecutorOptions o = new ExecutorOptions(threads, true).withWeights(WeightPrecision.parse(weights));
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long thread = Thread.currentThread().getId();
        try (DecodeWorkload d = new DecodeWorkload(new CpuExecutor(o), w, 1, batch)) {
            for (int s = 0; s < steps / 2; s++) {
                d.step();
            }
            int per = Math.max(1, steps / 2 / rounds);
            for (int r = 0; r < rounds; r++) {
                long a0 = mx.getThreadAllocatedBytes(thread);
                long c0 = mx.getCurrentThreadCpuTime();
                long t0 = System.nanoTime();
                for (int s = 0; s < per; s++) {
                    d.step();
                }
                System.out.printf("%s %s threads %d batch %d round %d: wall %.1f us/step, cpu %.1f us/step, "
                                + "alloc %d B/step, %.0f tok/s (wall)%n", model, weights, threads, batch, r,
                        (System.nanoTime() - t0) / 1e3 / per, (mx.getCurrentThreadCpuTime() - c0) / 1e3 / per,
                        (mx.getThreadAllocatedBytes(thread) - a0) / per, batch * per * 1e9 / (System.nanoTime() - t0));
            }
        }
    }
}
