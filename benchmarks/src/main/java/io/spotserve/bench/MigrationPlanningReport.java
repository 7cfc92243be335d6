package io.spotserve.bench;

import io.spotserve.plan.DeviceId;
import io.spotserve.plan.DeviceMapper;
import io.spotserve.plan.DeviceMapping;
import io.spotserve.plan.Deployment;
import io.spotserve.plan.InflightBatch;
import io.spotserve.plan.MigrationInfeasibleException;
import io.spotserve.plan.MigrationPlan;
import io.spotserve.plan.MigrationPlanner;
import io.spotserve.plan.ModelContext;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.TargetFleet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Prints the bytes and buffer peaks of the GPT-20B reconfiguration of §6.2 ((2,2,8) on 8 four-GPU
 * instances, instance i5 under notice → (2,3,4) on the other 7): what the device mapper reuses and moves,
 * per-instance traffic (T_mig input), and Algorithm 2's peak buffer use with no cap vs the minimum cap.
 *
 * <p>Run: {@code java -cp benchmarks/target/benchmarks.jar io.spotserve.bench.MigrationPlanningReport}
 */
public final class MigrationPlanningReport {
    private MigrationPlanningReport() {
    }

    public static void main(String[] args) {
        ModelContext model = ModelContext.gpt20b();
        List<DeviceId> devices = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            for (int g = 0; g < 4; g++) {
                devices.add(new DeviceId("i" + i, g));
            }
        }
        Deployment old = Deployment.packed(ParallelConfig.of(2, 2, 8, 4), devices).withBatches(Map.of(
                0, List.of(new InflightBatch("a", 4, 512, 100)), 1, List.of(new InflightBatch("b", 4, 512, 20))));
        List<TargetFleet.Instance> live = new ArrayList<>(TargetFleet.uniform("i", 8, 4));
        live.remove(5);
        DeviceMapping m = DeviceMapper.map(model, old, new TargetFleet(ParallelConfig.of(2, 3, 4, 4), live));
        double gib = 1L << 30;
        System.out.printf("reused %.2f GiB, moved %.2f GiB, reloaded %.2f GiB, %d transfers%n",
                m.bytesReused() / gib, m.bytesMoved() / gib, m.bytesReloaded() / gib, m.transfers().size());
        m.trafficPerInstance().forEach((k, v) -> System.out.printf("  %s sent %.2f, received %.2f, intra-instance %.2f GiB%n",
                k, v.sentBytes() / gib, v.receivedBytes() / gib, v.intraInstanceBytes() / gib));
        MigrationPlan sequential = MigrationPlanner.plan(m, Long.MAX_VALUE);
        System.out.printf("no cap (sequential order): max instance peak %.2f GiB%n", sequential.maxPeakBufferBytes() / gib);
        try {
            MigrationPlanner.plan(m, 0);
        } catch (MigrationInfeasibleException e) {
            MigrationPlan tight = MigrationPlanner.plan(m, e.minimumFeasibleCap());
            System.out.printf("minimum feasible U_max: %.2f GiB; order %s%n", e.minimumFeasibleCap() / gib, tight.order());
        }
    }
}
