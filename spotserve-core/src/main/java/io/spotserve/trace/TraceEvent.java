package io.spotserve.trace;

import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.OptionalDouble;
import java.util.Set;

/**
 * One line of an availability trace: at {@code time} after the start of the trace, {@code nodes} joined
 * ({@link Kind#ADD}) or were preempted ({@link Kind#REMOVE}), the required throughput changed
 * ({@link Kind#RATE}), or the experiment ended ({@link Kind#END}). Node names are opaque instance ids.
 *
 * @param time               offset from the start of the trace, ≥ 0, whole milliseconds in the file formats
 * @param kind               what happened
 * @param nodes              the instances that joined or left (ADD, REMOVE: at least one; RATE, END: none)
 * @param requiredThroughput new required throughput in requests/s, if the line sets one (always for RATE;
 *                           SpotServe's workload traces also attach it to REMOVE lines)
 */
public record TraceEvent(Duration time, Kind kind, List<String> nodes, OptionalDouble requiredThroughput) {

    /** What a trace line records. */
    public enum Kind {
        /** Spot instances joined the cluster. */
        ADD,
        /** Spot instances were preempted or reclaimed. */
        REMOVE,
        /** No membership change; the required throughput changed (SpotServe's "other"). */
        RATE,
        /** End of the experiment (SpotServe's "DONE"). */
        END
    }

    /**
     * @throws IllegalArgumentException if the time is negative, a node name is null or blank or repeated, or
     *                                  the nodes / throughput do not fit the kind
     */
    public TraceEvent {
        Objects.requireNonNull(time, "time");
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(nodes, "nodes");
        Objects.requireNonNull(requiredThroughput, "requiredThroughput");
        if (time.isNegative()) {
            throw new IllegalArgumentException("time is " + time.toMillis() + " ms; expected >= 0");
        }
        Set<String> seen = new HashSet<>();
        for (String node : nodes) {
            if (node == null || node.isBlank()) {
                throw new IllegalArgumentException("node name is " + (node == null ? "null" : "'" + node + "'")
                        + "; expected a non-blank instance id");
            }
            if (!seen.add(node)) {
                throw new IllegalArgumentException("node '" + node + "' is listed twice in one " + kind
                        + " event; expected each node once");
            }
        }
        nodes = List.copyOf(nodes);
        boolean membership = kind == Kind.ADD || kind == Kind.REMOVE;
        if (membership && nodes.isEmpty()) {
            throw new IllegalArgumentException(kind + " event has no nodes; expected at least one");
        }
        if (!membership && !nodes.isEmpty()) {
            throw new IllegalArgumentException(kind + " event lists nodes " + nodes + "; expected none");
        }
        if (kind == Kind.RATE && requiredThroughput.isEmpty()) {
            throw new IllegalArgumentException("RATE event has no required throughput; expected one");
        }
        if (kind == Kind.END && requiredThroughput.isPresent()) {
            throw new IllegalArgumentException("END event sets a required throughput; expected none");
        }
        if (requiredThroughput.isPresent()) {
            double r = requiredThroughput.getAsDouble();
            if (!(r >= 0) || Double.isInfinite(r)) {
                throw new IllegalArgumentException("required throughput is " + r + "; expected a finite number >= 0");
            }
        }
    }

    /** Nodes joining at {@code time}. */
    public static TraceEvent add(Duration time, String... nodes) {
        return new TraceEvent(time, Kind.ADD, List.of(nodes), OptionalDouble.empty());
    }

    /** Nodes preempted at {@code time}. */
    public static TraceEvent remove(Duration time, String... nodes) {
        return new TraceEvent(time, Kind.REMOVE, List.of(nodes), OptionalDouble.empty());
    }

    /** Required throughput (requests/s) changing at {@code time}. */
    public static TraceEvent rate(Duration time, double requiredThroughput) {
        return new TraceEvent(time, Kind.RATE, List.of(), OptionalDouble.of(requiredThroughput));
    }

    /** End of the trace at {@code time}. */
    public static TraceEvent end(Duration time) {
        return new TraceEvent(time, Kind.END, List.of(), OptionalDouble.empty());
    }

    /** {@link #time()} in milliseconds. */
    public long timeMillis() {
        return time.toMillis();
    }
}
