package io.spotserve.examples;

import io.spotserve.clock.EngineClock;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaConfig;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/**
 * The {@code --instances N --gpus G} options of the commands that serve on local spot instances (a picocli mixin),
 * and the instances they describe, checked against the heap before any is launched.
 */
final class LocalInstances {
    /** Largest --instances: a demo on one machine. */
    static final int MAX_INSTANCES = 256;
    /** Largest --gpus: the biggest cloud instances have 8 to 16 GPUs. */
    static final int MAX_GPUS = 64;

    @Option(names = "--instances", paramLabel = "N", description = "local spot instances (default 2, at most 256)")
    int instances = 2;
    @Option(names = "--gpus", paramLabel = "G", description = "devices per instance (default 2, at most 64)")
    int gpus = 2;

    /** The launched instances and their provider. */
    record Launched(LocalInstanceProvider provider, List<Instance> instances) {
    }

    /**
     * Checks the options and launches the instances on a new provider, after checking that every device can hold
     * a whole copy of the model's weights and the KV caches of {@code maxBatch} full sequences.
     */
    Launched launch(String command, LlamaConfig model, int maxBatch, EngineClock clock) throws UsageException {
        Ranges.within(command, "--instances", instances, 1, MAX_INSTANCES);
        Ranges.within(command, "--gpus", gpus, 1, MAX_GPUS);
        double perDevice = model.parameterCount() * 4.0 + (double) maxBatch * model.seqLen() * model.kvBytesPerPosition();
        Ranges.fitsInHeap(command, "--instances " + instances + " x --gpus " + gpus, perDevice * instances * gpus);
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        InstanceType type = new InstanceType("local." + gpus + "x", gpus, 64L << 20, 1.9, InstanceType.Market.SPOT);
        List<Instance> launched = new ArrayList<>();
        for (int i = 0; i < instances; i++) {
            launched.add(provider.add(type));
        }
        return new Launched(provider, launched);
    }
}
