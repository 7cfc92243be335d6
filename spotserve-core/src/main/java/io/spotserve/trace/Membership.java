package io.spotserve.trace;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Replays events one by one and checks that the history they describe is possible: times never go back,
 * nothing follows the end marker, only absent nodes are added (names are never reused) and only present
 * nodes are removed. Shared by the parsers (which add file:line) and {@link AvailabilityTrace#of}.
 */
final class Membership {
    private final Map<String, Long> addedAt = new LinkedHashMap<>();
    private final Map<String, Long> removedAt = new LinkedHashMap<>();
    private int present;
    private long lastTime = -1;
    private long endTime = -1;

    /** Applies {@code e}, or returns what is wrong with it (and changes nothing). */
    String apply(TraceEvent e) {
        long t = e.timeMillis();
        if (endTime >= 0) {
            return e.kind() + " event at " + t + " ms after the end marker at " + endTime
                    + " ms; expected the end marker to be the last event";
        }
        if (t < lastTime) {
            return "time " + t + " ms is before the previous event's " + lastTime
                    + " ms; expected times that never decrease";
        }
        switch (e.kind()) {
            case ADD -> {
                for (String node : e.nodes()) {
                    if (removedAt.containsKey(node)) {
                        return "add of node '" + node + "', which was removed at " + removedAt.get(node)
                                + " ms; expected a new node (names are never reused)";
                    }
                    if (addedAt.containsKey(node)) {
                        return "add of node '" + node + "', which is already present since " + addedAt.get(node)
                                + " ms; expected a node not in the cluster";
                    }
                }
                for (String node : e.nodes()) {
                    addedAt.put(node, t);
                }
                present += e.nodes().size();
            }
            case REMOVE -> {
                for (String node : e.nodes()) {
                    if (removedAt.containsKey(node)) {
                        return "remove of node '" + node + "', which was already removed at "
                                + removedAt.get(node) + " ms; expected a node in the cluster";
                    }
                    if (!addedAt.containsKey(node)) {
                        return "remove of unknown node '" + node + "'; expected a node in the cluster ("
                                + present + " present)";
                    }
                }
                for (String node : e.nodes()) {
                    removedAt.put(node, t);
                }
                present -= e.nodes().size();
            }
            case END -> endTime = t;
            case RATE -> {
                // no membership change
            }
        }
        lastTime = t;
        return null;
    }

    Map<String, Long> addedAt() {
        return addedAt;
    }

    Map<String, Long> removedAt() {
        return removedAt;
    }
}
