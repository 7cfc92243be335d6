package io.spotserve.engine;

import io.spotserve.exec.Device;
import io.spotserve.exec.Pipeline;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * One serving pipeline of the current configuration, the devices it occupies and the requests it runs. A
 * pipeline that lost a position (its instance terminated) is <em>broken</em>: it no longer computes, but its
 * surviving positions keep their weights so the next reconfiguration can reuse them (SpotServe §3.3).
 */
final class PipelineSlot {
    final int id;
    final Pipeline pipeline;
    final List<Device> devices;
    final Set<String> instances = new LinkedHashSet<>();
    final List<LiveRequest> active = new ArrayList<>();
    /** Positions (stage · M + shard) whose device is gone. */
    final Set<Integer> lost = new HashSet<>();

    PipelineSlot(int id, Pipeline pipeline, List<Device> devices) {
        this.id = id;
        this.pipeline = pipeline;
        this.devices = List.copyOf(devices);
        for (Device d : devices) {
            instances.add(d.id().instance());
        }
    }

    boolean broken() {
        return !lost.isEmpty();
    }

    /** Whether position (stage, shard) still holds its context. */
    boolean alive(int stage, int shard) {
        return !lost.contains(stage * pipeline.layout().shards() + shard);
    }

    String describe() {
        return "P" + pipeline.layout().stages() + "M" + pipeline.layout().shards() + "@" + instances
                + (broken() ? "(broken)" : "");
    }
}
