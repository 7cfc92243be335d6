package io.spotserve.plan;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * The "new" side of a reconfiguration: configuration C_{t+1} and the instances that may receive positions
 * — survivors and freshly acquired, empty instances (SpotServe §3.3). Instances under a preemption notice
 * are not listed here (they can only send; see {@link Deployment}).
 *
 * @param config    new configuration
 * @param instances available instances, in preference order for leftover positions
 */
public record TargetFleet(ParallelConfig config, List<Instance> instances) implements Serializable {

    /**
     * One available instance and its GPU count; its devices are {@code (name, 0..gpus-1)}.
     *
     * @param name instance identifier (matches {@link DeviceId#instance()})
     * @param gpus number of GPUs
     */
    public record Instance(String name, int gpus) implements Serializable {
        public Instance {
            Objects.requireNonNull(name, "name");
            if (gpus < 1) {
                throw new IllegalArgumentException("instance " + name + " must have >= 1 GPU, had " + gpus);
            }
        }
    }

    public TargetFleet {
        Objects.requireNonNull(config, "config");
        instances = List.copyOf(instances);
        Set<String> names = new HashSet<>();
        int gpus = 0;
        for (Instance i : instances) {
            if (!names.add(i.name())) {
                throw new IllegalArgumentException("instance " + i.name() + " is listed twice");
            }
            gpus += i.gpus();
        }
        if (gpus < config.gpus()) {
            throw new IllegalArgumentException("new configuration " + config + " needs " + config.gpus()
                    + " GPUs but the target instances offer " + gpus);
        }
    }

    /** {@code count} instances named {@code prefix0..} with {@code gpus} GPUs each. */
    public static List<Instance> uniform(String prefix, int count, int gpus) {
        List<Instance> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(new Instance(prefix + i, gpus));
        }
        return out;
    }

    /** Whether {@code instance} is a target. */
    public boolean contains(String instance) {
        return instances.stream().anyMatch(i -> i.name().equals(instance));
    }
}
