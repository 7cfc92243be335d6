package io.spotserve.plan;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The result of {@link DeviceMapper#map}: which device takes each position of the new configuration
 * (SpotServe §3.3), which old pipeline's requests each new pipeline inherits, which batches lost their
 * cache, every context transfer needed (what, from, to, bytes) and what each old holder frees.
 *
 * @param model          byte model used
 * @param oldConfig      C_t
 * @param newConfig      C_{t+1}
 * @param placement      new position → device, in position order
 * @param inheritedFrom  new pipeline → old pipelines whose requests (and KV cache) it takes over; several
 *                       when D shrinks and B_new leaves room (continuous batching)
 * @param keptBatches    new pipeline → batches it resumes
 * @param droppedBatches batches whose cache is abandoned (to be recomputed from committed tokens)
 * @param transfers      all transfers, KV cache first, then by unit (embedding, layers, classifier)
 * @param frees          device → old slices it no longer needs (freed once sent); a KV_CACHE entry whose
 *                       range the device keeps stands for the share of the dropped batches (its bytes)
 * @param bytesReused    context bytes that stay where they are
 * @param bytesMoved     bytes sent device to device
 * @param bytesReloaded  bytes reloaded from the checkpoint
 */
public record DeviceMapping(ModelContext model, ParallelConfig oldConfig, ParallelConfig newConfig,
                            Map<Position, DeviceId> placement, Map<Integer, List<Integer>> inheritedFrom,
                            Map<Integer, List<InflightBatch>> keptBatches, List<InflightBatch> droppedBatches,
                            List<Transfer> transfers, Map<DeviceId, List<PlannedSlice>> frees,
                            long bytesReused, long bytesMoved, long bytesReloaded) implements Serializable {

    public DeviceMapping {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(oldConfig, "oldConfig");
        Objects.requireNonNull(newConfig, "newConfig");
        placement = Collections.unmodifiableMap(new LinkedHashMap<>(placement));
        Map<Integer, List<Integer>> inh = new TreeMap<>();
        inheritedFrom.forEach((k, v) -> inh.put(k, List.copyOf(v)));
        inheritedFrom = Collections.unmodifiableMap(inh);
        Map<Integer, List<InflightBatch>> kept = new TreeMap<>();
        keptBatches.forEach((k, v) -> kept.put(k, List.copyOf(v)));
        keptBatches = Collections.unmodifiableMap(kept);
        droppedBatches = List.copyOf(droppedBatches);
        transfers = List.copyOf(transfers);
        Map<DeviceId, List<PlannedSlice>> f = new TreeMap<>();
        frees.forEach((k, v) -> f.put(k, List.copyOf(v)));
        frees = Collections.unmodifiableMap(f);
    }

    /** Device of new position {@code p}. */
    public DeviceId deviceOf(Position p) {
        DeviceId d = placement.get(p);
        if (d == null) {
            throw new IllegalArgumentException("position " + p + " does not exist in " + newConfig);
        }
        return d;
    }

    /** New position of {@code device}, or null when it takes none. */
    public Position positionOf(DeviceId device) {
        for (Map.Entry<Position, DeviceId> e : placement.entrySet()) {
            if (e.getValue().equals(device)) {
                return e.getKey();
            }
        }
        return null;
    }

    /** Bytes that must arrive: moved plus reloaded. */
    public long bytesTransferred() {
        return bytesMoved + bytesReloaded;
    }

    /** Transfers whose target is one of the devices of new pipeline {@code d}, stage {@code p}. */
    public List<Transfer> transfersInto(int pipeline, int stage) {
        List<Transfer> out = new ArrayList<>();
        for (Transfer t : transfers) {
            Position p = positionOf(t.target());
            if (p != null && p.pipeline() == pipeline && p.stage() == stage) {
                out.add(t);
            }
        }
        return out;
    }

    /**
     * Bytes sent and received per instance, the input of the T_mig estimate; sorted by instance name.
     */
    public Map<String, InstanceTraffic> trafficPerInstance() {
        Map<String, InstanceTraffic> out = new TreeMap<>();
        for (Transfer t : transfers) {
            String to = t.target().instance();
            long b = t.bytes();
            if (t.isReload()) {
                out.merge(to, InstanceTraffic.NONE.plus(0, 0, 0, b), DeviceMapping::sum);
            } else if (t.intraInstance()) {
                out.merge(to, InstanceTraffic.NONE.plus(0, 0, b, 0), DeviceMapping::sum);
            } else {
                out.merge(t.source().instance(), InstanceTraffic.NONE.plus(b, 0, 0, 0), DeviceMapping::sum);
                out.merge(to, InstanceTraffic.NONE.plus(0, b, 0, 0), DeviceMapping::sum);
            }
        }
        return Collections.unmodifiableMap(out);
    }

    private static InstanceTraffic sum(InstanceTraffic a, InstanceTraffic b) {
        return a.plus(b.sentBytes(), b.receivedBytes(), b.intraInstanceBytes(), b.reloadedBytes());
    }
}
