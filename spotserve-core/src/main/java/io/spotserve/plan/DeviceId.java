package io.spotserve.plan;

import java.util.Objects;

/**
 * A physical GPU: the {@code gpu}-th device of cloud instance {@code instance}. Instances are what the
 * cloud gives and takes away; devices are what the device mapper places.
 */
public record DeviceId(String instance, int gpu) implements Comparable<DeviceId>, java.io.Serializable {
    public DeviceId {
        Objects.requireNonNull(instance, "instance");
        if (gpu < 0) {
            throw new IllegalArgumentException("gpu index must be >= 0, was " + gpu);
        }
    }

    @Override
    public int compareTo(DeviceId o) {
        int c = instance.compareTo(o.instance);
        return c != 0 ? c : Integer.compare(gpu, o.gpu);
    }

    @Override
    public String toString() {
        return instance + "/" + gpu;
    }
}
