package io.spotserve.plan;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The current deployment, the "old" side of a reconfiguration (SpotServe §3.3): the old configuration,
 * which live device holds which old position, and each old pipeline's in-flight batches.
 *
 * <p>Only positions whose device still holds its context appear in {@code placement}: a device of a
 * terminated instance is simply left out. A device listed here whose instance is not among the
 * {@link TargetFleet}'s instances is <em>source-only</em>: it is under a preemption notice and can still
 * send during the grace period, but receives no new position.
 *
 * @param config    old configuration C_t
 * @param placement old position → device still holding it
 * @param batches   old pipeline index → its in-flight batches (pipelines without requests may be absent)
 */
public record Deployment(ParallelConfig config, Map<Position, DeviceId> placement,
                         Map<Integer, List<InflightBatch>> batches) implements Serializable {

    public Deployment {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(placement, "placement");
        Objects.requireNonNull(batches, "batches");
        Map<DeviceId, Position> seen = new HashMap<>();
        for (Map.Entry<Position, DeviceId> e : placement.entrySet()) {
            Position p = Objects.requireNonNull(e.getKey(), "placement position");
            DeviceId d = Objects.requireNonNull(e.getValue(), "placement device of " + p);
            if (p.pipeline() >= config.dataParallel() || p.stage() >= config.pipelineStages()
                    || p.shard() >= config.tensorShards()) {
                throw new IllegalArgumentException("old position " + p + " does not exist in " + config);
            }
            Position other = seen.put(d, p);
            if (other != null) {
                throw new IllegalArgumentException("device " + d + " holds two old positions, " + other + " and " + p
                        + "; expected one position per device");
            }
        }
        Map<Integer, List<InflightBatch>> copy = new LinkedHashMap<>();
        for (Integer k : new java.util.TreeSet<>(batches.keySet())) {
            if (k < 0 || k >= config.dataParallel()) {
                throw new IllegalArgumentException("batches given for pipeline " + k + " but " + config + " has pipelines 0.."
                        + (config.dataParallel() - 1));
            }
            copy.put(k, List.copyOf(batches.get(k)));
        }
        placement = Collections.unmodifiableMap(new LinkedHashMap<>(placement));
        batches = Collections.unmodifiableMap(copy);
    }

    /**
     * The full deployment of {@code config} on {@code devices}, in position order (pipeline, stage, shard),
     * with no requests in flight.
     */
    public static Deployment packed(ParallelConfig config, List<DeviceId> devices) {
        if (devices.size() != config.gpus()) {
            throw new IllegalArgumentException(config + " needs " + config.gpus() + " devices, got " + devices.size());
        }
        Map<Position, DeviceId> placement = new LinkedHashMap<>();
        int i = 0;
        for (Position p : positions(config)) {
            placement.put(p, devices.get(i++));
        }
        return new Deployment(config, placement, Map.of());
    }

    /** The same deployment with these in-flight batches. */
    public Deployment withBatches(Map<Integer, List<InflightBatch>> inflight) {
        return new Deployment(config, placement, inflight);
    }

    /** The same deployment without the devices of {@code instance} (it was terminated). */
    public Deployment without(String instance) {
        Map<Position, DeviceId> left = new LinkedHashMap<>(placement);
        left.values().removeIf(d -> d.instance().equals(instance));
        return new Deployment(config, left, batches);
    }

    /** All positions of a configuration in (pipeline, stage, shard) order. */
    public static List<Position> positions(ParallelConfig c) {
        List<Position> out = new ArrayList<>(c.gpus());
        for (int d = 0; d < c.dataParallel(); d++) {
            for (int p = 0; p < c.pipelineStages(); p++) {
                for (int m = 0; m < c.tensorShards(); m++) {
                    out.add(new Position(d, p, m));
                }
            }
        }
        return out;
    }
}
