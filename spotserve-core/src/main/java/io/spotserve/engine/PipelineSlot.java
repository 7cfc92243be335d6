package io.spotserve.engine;

import io.spotserve.exec.Device;
import io.spotserve.exec.Pipeline;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** One serving pipeline of the current configuration, the devices it occupies and the requests it runs. */
final class PipelineSlot {
    final int id;
    final Pipeline pipeline;
    final List<Device> devices;
    final Set<String> instances = new LinkedHashSet<>();
    final List<LiveRequest> active = new ArrayList<>();

    PipelineSlot(int id, Pipeline pipeline, List<Device> devices) {
        this.id = id;
        this.pipeline = pipeline;
        this.devices = List.copyOf(devices);
        for (Device d : devices) {
            instances.add(d.id().instance());
        }
    }

    String describe() {
        return "P" + pipeline.layout().stages() + "M" + pipeline.layout().shards() + "@" + instances;
    }
}
