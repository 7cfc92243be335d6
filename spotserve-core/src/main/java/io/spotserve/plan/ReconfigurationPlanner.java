package io.spotserve.plan;

/**
 * The meta-context manager's planning between the parallelization controller's choice and the migration itself
 * (SpotServe §3.2–§3.3, DESIGN.md §1): the device mapping (which device of the target fleet takes each position of
 * the new configuration, and which in-flight batches keep their cache) and the migration plan (the order in which
 * context units move, under a per-instance buffer cap). A host may plug in its own; the engine
 * ({@code ServingEngine.Builder#reconfigurationPlanner}) uses {@link #kuhnMunkres()} by default. Implementations are
 * pure: the same inputs give the same plan.
 */
public interface ReconfigurationPlanner {
    /**
     * Maps the positions of {@code target}'s configuration onto its fleet, reusing as much of {@code old}'s context
     * as possible.
     */
    DeviceMapping map(ModelContext model, Deployment old, TargetFleet target);

    /**
     * The order of the context units of {@code mapping}'s migration, keeping every instance's buffer within
     * {@code bufferCapBytes}.
     *
     * @throws MigrationInfeasibleException if no order keeps every instance within the cap (the engine then moves
     *                                      the units in their natural order)
     */
    MigrationPlan plan(DeviceMapping mapping, long bufferCapBytes);

    /**
     * SpotServe's planner: {@link DeviceMapper} (maximum-weight matching by Kuhn-Munkres, most context kept in place)
     * and {@link MigrationPlanner} (Algorithm 2, progressive migration with a memory-optimized order).
     */
    static ReconfigurationPlanner kuhnMunkres() {
        return KuhnMunkresPlanner.INSTANCE;
    }

    /** The default planner as a named singleton (its string form names it in logs). */
    final class KuhnMunkresPlanner implements ReconfigurationPlanner {
        static final KuhnMunkresPlanner INSTANCE = new KuhnMunkresPlanner();

        private KuhnMunkresPlanner() {
        }

        @Override
        public DeviceMapping map(ModelContext model, Deployment old, TargetFleet target) {
            return DeviceMapper.map(model, old, target);
        }

        @Override
        public MigrationPlan plan(DeviceMapping mapping, long bufferCapBytes) {
            return MigrationPlanner.plan(mapping, bufferCapBytes);
        }

        @Override
        public String toString() {
            return "ReconfigurationPlanner.kuhnMunkres()";
        }
    }
}
