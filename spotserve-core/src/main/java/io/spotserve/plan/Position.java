package io.spotserve.plan;

/**
 * A logical GPU position (d, p, m) of a parallel configuration: shard m of stage p of pipeline d
 * (all 0-based). The device mapper assigns one physical device to each position.
 */
public record Position(int pipeline, int stage, int shard) implements java.io.Serializable {
    public Position {
        if (pipeline < 0 || stage < 0 || shard < 0) {
            throw new IllegalArgumentException("position indices must be >= 0, was (" + pipeline + ", " + stage + ", " + shard + ")");
        }
    }

    @Override
    public String toString() {
        return "(" + pipeline + "," + stage + "," + shard + ")";
    }
}
