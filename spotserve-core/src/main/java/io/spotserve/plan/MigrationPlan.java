package io.spotserve.plan;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * An ordered, memory-bounded migration plan (SpotServe §3.4, Algorithm 2): one {@link Migrate} step for the
 * KV cache of all layers first, then one per context unit (embedding, block, classifier) in the
 * memory-optimized order, with {@link StartStage} markers right after the last step that delivers anything
 * to a new (pipeline, stage) — from there that stage may serve while later layers are still in flight.
 *
 * <p>Serializable (records of serializable values, immutable collections) so it can be shipped to remote
 * workers with {@link java.io.ObjectOutputStream}. (No JSON form yet: reading the sealed {@link Step}
 * hierarchy back with Gson would need a type adapter.)
 *
 * @param steps           the plan, in execution order
 * @param order           context units in migration order (KV first when it moves anything)
 * @param peakBufferBytes instance → peak extra memory during migration over its memory before it
 *                        (received bytes are counted before the step's frees, senders free after sending)
 * @param bufferCapBytes  U_max the plan was made for
 */
public record MigrationPlan(List<Step> steps, List<ContextUnit> order, Map<String, Long> peakBufferBytes,
                            long bufferCapBytes) implements Serializable {

    /** One element of a plan. */
    public sealed interface Step extends Serializable permits Migrate, StartStage {
    }

    /**
     * Move one context unit: all its transfers (asynchronously, as one batch), then the listed releases.
     *
     * @param unit      what is migrated
     * @param transfers transfers of this unit
     * @param releases  old slices of this unit freed after the transfers
     */
    public record Migrate(ContextUnit unit, List<Transfer> transfers, List<Release> releases) implements Step {
        public Migrate {
            Objects.requireNonNull(unit, "unit");
            transfers = List.copyOf(transfers);
            releases = List.copyOf(releases);
        }

        /** Bytes arriving in this step. */
        public long bytes() {
            return transfers.stream().mapToLong(Transfer::bytes).sum();
        }
    }

    /**
     * Every slice the devices of new pipeline {@code pipeline}, stage {@code stage} need has arrived.
     *
     * @param pipeline new pipeline index
     * @param stage    new stage index
     */
    public record StartStage(int pipeline, int stage) implements Step {
    }

    /**
     * A device frees an old slice.
     *
     * @param device the device
     * @param slice  what it frees
     */
    public record Release(DeviceId device, PlannedSlice slice) implements Serializable {
        public Release {
            Objects.requireNonNull(device, "device");
            Objects.requireNonNull(slice, "slice");
        }
    }

    public MigrationPlan {
        steps = List.copyOf(steps);
        order = List.copyOf(order);
        peakBufferBytes = Collections.unmodifiableMap(new TreeMap<>(peakBufferBytes));
    }

    /** The highest per-instance peak. */
    public long maxPeakBufferBytes() {
        return peakBufferBytes.values().stream().mapToLong(Long::longValue).max().orElse(0);
    }

    /** All transfers in plan order. */
    public List<Transfer> transfers() {
        List<Transfer> out = new ArrayList<>();
        for (Step s : steps) {
            if (s instanceof Migrate m) {
                out.addAll(m.transfers());
            }
        }
        return out;
    }
}
