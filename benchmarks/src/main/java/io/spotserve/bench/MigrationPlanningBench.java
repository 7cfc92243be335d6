package io.spotserve.bench;

import io.spotserve.plan.DeviceId;
import io.spotserve.plan.DeviceMapper;
import io.spotserve.plan.DeviceMapping;
import io.spotserve.plan.Deployment;
import io.spotserve.plan.InflightBatch;
import io.spotserve.plan.MigrationPlan;
import io.spotserve.plan.MigrationPlanner;
import io.spotserve.plan.ModelContext;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.TargetFleet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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
 * Control-plane cost of a reconfiguration at paper scale (SpotServe §3.3–§3.4): device mapping (two-level
 * Kuhn-Munkres + transfer list) and migration planning (Algorithm 2, exact fallback) for GPT-20B.
 *
 * <p>Scenarios: {@code preempt} = (2,2,8) on 8 four-GPU instances, one instance under notice → (2,3,4) on
 * the 7 others (§6.2 narrative); {@code flat48} = (3,2,8) on 48 single-GPU instances, 8 lost → (2,3,4)
 * on the remaining 40 (one 40×24 matching).
 *
 * <p>Run: {@code java -jar benchmarks/target/benchmarks.jar MigrationPlanning -f 1 -wi 3 -i 5}
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class MigrationPlanningBench {

    @Param({"preempt", "flat48"})
    public String scenario;

    private ModelContext model;
    private Deployment old;
    private TargetFleet fleet;
    private DeviceMapping mapping;
    private long tightCap;

    @Setup
    public void setup() {
        model = ModelContext.gpt20b();
        Map<Integer, List<InflightBatch>> batches = Map.of(
                0, List.of(new InflightBatch("a", 4, 512, 100)), 1, List.of(new InflightBatch("b", 4, 512, 20)));
        if (scenario.equals("preempt")) {
            old = Deployment.packed(ParallelConfig.of(2, 2, 8, 4), devices(8, 4)).withBatches(batches);
            List<TargetFleet.Instance> live = new ArrayList<>(TargetFleet.uniform("i", 8, 4));
            live.remove(5);
            fleet = new TargetFleet(ParallelConfig.of(2, 3, 4, 4), live);
        } else {
            Deployment d = Deployment.packed(ParallelConfig.of(3, 2, 8, 4), devices(48, 1)).withBatches(batches);
            for (int i = 40; i < 48; i++) {
                d = d.without("i" + i);
            }
            old = d;
            fleet = new TargetFleet(ParallelConfig.of(2, 3, 4, 4), TargetFleet.uniform("i", 40, 1));
        }
        mapping = DeviceMapper.map(model, old, fleet);
        try {
            MigrationPlanner.plan(mapping, 0);
            tightCap = 0;
        } catch (io.spotserve.plan.MigrationInfeasibleException e) {
            tightCap = e.minimumFeasibleCap();
        }
    }

    private static List<DeviceId> devices(int instances, int gpus) {
        List<DeviceId> out = new ArrayList<>();
        for (int i = 0; i < instances; i++) {
            for (int g = 0; g < gpus; g++) {
                out.add(new DeviceId("i" + i, g));
            }
        }
        return out;
    }

    /** Mapping: matching plus the full transfer and free lists. */
    @Benchmark
    public DeviceMapping map() {
        return DeviceMapper.map(model, old, fleet);
    }

    /** Planning with no cap: the paper's sequential order. */
    @Benchmark
    public MigrationPlan planUncapped() {
        return MigrationPlanner.plan(mapping, Long.MAX_VALUE);
    }

    /** Planning at the minimum feasible cap (forces the exact search when the greedy order exceeds it). */
    @Benchmark
    public MigrationPlan planTightCap() {
        return MigrationPlanner.plan(mapping, tightCap);
    }
}
