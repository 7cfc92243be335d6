package io.spotserve.bench;

import io.spotserve.plan.CostModel;
import io.spotserve.plan.Decision;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.PaperModel;
import io.spotserve.plan.ParallelConfigOptimizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * Decision time of Algorithm 1 ({@link ParallelConfigOptimizer}) for 12, 128 and 1,024 instances of 4 GPUs on
 * the artifact's real T4 profiles; the rate grows with the fleet (paper rate × N / 8) so the PAPER policy's
 * queueing search has real work to do. {@code decide} reuses a built optimizer (the online path);
 * {@code buildAndDecide} includes the per-workload precomputation of every shape's l_exe.
 *
 * <p>Run from the repository root (profiles are read from {@code ../shared}, or {@code -Dspotserve.shared.dir}):
 * <pre>
 * mvn -q -o -DskipTests package
 * java -jar benchmarks/target/benchmarks.jar OptimizerBenchmark -f 1 -wi 3 -i 5
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class OptimizerBenchmark {

    @Param({"12", "128", "1024"})
    public int instances;

    @Param({"PAPER", "ARTIFACT"})
    public ParallelConfigOptimizer.Policy policy;

    @Param({"OPT_6_7B", "GPT_20B"})
    public PaperModel model;

    private CostModel costModel;
    private ParallelConfigOptimizer optimizer;
    private double rate;

    @Setup
    public void setUp() {
        Path shared = Path.of(System.getProperty("spotserve.shared.dir", "../shared"));
        Path file = shared.resolve("profiles/T4-4x/" + model.profileName() + ".json");
        if (!Files.isRegularFile(file)) {
            throw new IllegalStateException("profile not found: " + file.toAbsolutePath()
                    + "; run from the repository root or pass -Dspotserve.shared.dir");
        }
        costModel = CostModel.of(model, LatencyProfile.read(file));
        optimizer = builder().build();
        double paperRate = model == PaperModel.OPT_6_7B ? 1.5 : 0.35;
        rate = paperRate * instances / 8;
        Decision check = optimizer.decide(instances, rate);
        if (check.choice().isEmpty()) {
            throw new IllegalStateException("no configuration for " + instances + " instances: " + check.reason());
        }
    }

    private ParallelConfigOptimizer.Builder builder() {
        return ParallelConfigOptimizer.builder(costModel).policy(policy).maxBatch(4);
    }

    @Benchmark
    public Decision decide() {
        return optimizer.decide(instances, rate);
    }

    @Benchmark
    public Decision buildAndDecide() {
        return builder().build().decide(instances, rate);
    }
}
