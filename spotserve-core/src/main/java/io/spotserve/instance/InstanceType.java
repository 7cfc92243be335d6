package io.spotserve.instance;

import java.util.Objects;

/**
 * What kind of machine an instance is: how many GPUs it has, how much memory each holds, what it costs and
 * whether the cloud may take it away. SpotServe treats every instance of a deployment as the same type
 * (the paper uses g4dn.12xlarge: 4× T4 16 GB, 3.9 USD/h on-demand vs 1.9 USD/h spot).
 *
 * @param name              the cloud's name for it, e.g. {@code g4dn.12xlarge}
 * @param gpus              devices per instance
 * @param memoryPerGpuBytes device memory capacity in bytes
 * @param pricePerHour      USD per instance-hour
 * @param market            spot (preemptible) or on-demand
 */
public record InstanceType(String name, int gpus, long memoryPerGpuBytes, double pricePerHour, Market market) {

    /** How an instance is bought. */
    public enum Market {
        /** Cheap, preemptible with a grace-period notice. */
        SPOT,
        /** Expensive, never preempted; released by us. */
        ON_DEMAND
    }

    public InstanceType {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(market, "market");
        if (name.isBlank()) {
            throw new IllegalArgumentException("instance type name must not be blank");
        }
        if (gpus < 1) {
            throw new IllegalArgumentException("gpus must be >= 1, was " + gpus);
        }
        if (memoryPerGpuBytes < 1) {
            throw new IllegalArgumentException("memoryPerGpuBytes must be >= 1, was " + memoryPerGpuBytes);
        }
        if (!(pricePerHour >= 0) || Double.isInfinite(pricePerHour)) {
            throw new IllegalArgumentException("pricePerHour must be a finite value >= 0, was " + pricePerHour);
        }
    }

    /** The same machine bought on the other market at the given price. */
    public InstanceType on(Market otherMarket, double otherPricePerHour) {
        return new InstanceType(name, gpus, memoryPerGpuBytes, otherPricePerHour, otherMarket);
    }

    /** Whether the cloud may preempt it. */
    public boolean preemptible() {
        return market == Market.SPOT;
    }
}
