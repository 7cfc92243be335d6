package io.spotserve.trace;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Set;
import java.util.TreeMap;

/**
 * An immutable, validated spot-instance availability trace: the sequence of joins, preemptions, workload
 * changes and the end marker that SpotServe's evaluation (§6) replays, plus the queries a trace-driven
 * instance provider and the evaluation need (cluster size over time, when each node joins and leaves).
 *
 * <p>Times are offsets from the start of the trace. Several events may share a timestamp; every query
 * "at time t" sees the state after all events at t. Read one with {@link TraceReader} or build one with
 * {@link #of}.
 */
public final class AvailabilityTrace {
    private final String source;
    private final List<TraceEvent> events;
    private final NavigableMap<Long, Integer> counts;            // ms -> cluster size after that instant
    private final NavigableMap<Long, Double> throughput;         // ms -> required throughput from then on
    private final Map<String, Long> addedAt;
    private final Map<String, Long> removedAt;
    private final boolean hasEnd;

    private AvailabilityTrace(String source, List<TraceEvent> events, Membership membership) {
        this.source = source;
        this.events = List.copyOf(events);
        this.addedAt = Collections.unmodifiableMap(membership.addedAt());
        this.removedAt = Collections.unmodifiableMap(membership.removedAt());
        TreeMap<Long, Integer> c = new TreeMap<>();
        TreeMap<Long, Double> r = new TreeMap<>();
        int present = 0;
        boolean end = false;
        for (TraceEvent e : this.events) {
            switch (e.kind()) {
                case ADD -> present += e.nodes().size();
                case REMOVE -> present -= e.nodes().size();
                case END -> end = true;
                case RATE -> {
                }
            }
            if (e.kind() == TraceEvent.Kind.ADD || e.kind() == TraceEvent.Kind.REMOVE) {
                c.put(e.timeMillis(), present);
            }
            if (e.requiredThroughput().isPresent()) {
                r.put(e.timeMillis(), e.requiredThroughput().getAsDouble());
            }
        }
        this.counts = Collections.unmodifiableNavigableMap(c);
        this.throughput = Collections.unmodifiableNavigableMap(r);
        this.hasEnd = end;
    }

    /**
     * Builds a trace from events in time order.
     *
     * @param source label used in messages (e.g. a file name)
     * @throws IllegalArgumentException naming the event index when the list is empty or describes an
     *                                  impossible history (see {@link TraceReader} for the rules)
     */
    public static AvailabilityTrace of(String source, List<TraceEvent> events) {
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(events, "events");
        if (events.isEmpty()) {
            throw new IllegalArgumentException(source + ": no events; expected at least one");
        }
        Membership m = new Membership();
        for (int i = 0; i < events.size(); i++) {
            String problem = m.apply(Objects.requireNonNull(events.get(i), "event " + i));
            if (problem != null) {
                throw new IllegalArgumentException(source + ": event " + i + ": " + problem);
            }
        }
        return new AvailabilityTrace(source, events, m);
    }

    /** For the readers: events already checked line by line with {@code membership}. */
    static AvailabilityTrace checked(String source, List<TraceEvent> events, Membership membership) {
        return new AvailabilityTrace(source, events, membership);
    }

    /** Where the trace came from (file name or the label given to {@link #of}). */
    public String source() {
        return source;
    }

    /** All events, in file order (which is time order). */
    public List<TraceEvent> events() {
        return events;
    }

    /** Whether the trace ends with an explicit {@link TraceEvent.Kind#END} marker. */
    public boolean hasEndMarker() {
        return hasEnd;
    }

    /** Time of the first event. */
    public Duration startTime() {
        return events.get(0).time();
    }

    /** Time of the end marker if there is one, else of the last event. */
    public Duration endTime() {
        return events.get(events.size() - 1).time();
    }

    /** Number of instances present at {@code time}, after all events at that instant (0 before the first). */
    public int instanceCountAt(Duration time) {
        Map.Entry<Long, Integer> e = counts.floorEntry(time.toMillis());
        return e == null ? 0 : e.getValue();
    }

    /**
     * Cluster size as a step function: for every instant with an ADD or REMOVE, the number of instances
     * present after all events at that instant. Unmodifiable, keys in milliseconds.
     */
    public NavigableMap<Long, Integer> instanceCountSteps() {
        return counts;
    }

    /** Smallest cluster size between the first membership event and the end (0 if there is none). */
    public int minInstanceCount() {
        return counts.values().stream().mapToInt(Integer::intValue).min().orElse(0);
    }

    /** Largest cluster size over the trace (0 if there is no membership event). */
    public int maxInstanceCount() {
        return counts.values().stream().mapToInt(Integer::intValue).max().orElse(0);
    }

    /**
     * Time-weighted mean cluster size between the first event and {@link #endTime()}; the count at the first
     * event if the two coincide.
     */
    public double meanInstanceCount() {
        long start = startTime().toMillis();
        long end = endTime().toMillis();
        if (end == start) {
            return instanceCountAt(startTime());
        }
        double area = 0;
        long prevTime = start;
        int prevCount = instanceCountAt(startTime());
        for (Map.Entry<Long, Integer> e : counts.tailMap(start, false).entrySet()) {
            area += (double) prevCount * (e.getKey() - prevTime);
            prevTime = e.getKey();
            prevCount = e.getValue();
        }
        area += (double) prevCount * (end - prevTime);
        return area / (end - start);
    }

    /** Every node that ever joins, in order of joining. */
    public Set<String> distinctNodes() {
        return Collections.unmodifiableSet(new LinkedHashSet<>(addedAt.keySet()));
    }

    /** The nodes present at {@code time} (after all events at that instant), in order of joining. */
    public Set<String> nodesAt(Duration time) {
        long t = time.toMillis();
        Set<String> out = new LinkedHashSet<>();
        for (Map.Entry<String, Long> e : addedAt.entrySet()) {
            Long removed = removedAt.get(e.getKey());
            if (e.getValue() <= t && (removed == null || removed > t)) {
                out.add(e.getKey());
            }
        }
        return Collections.unmodifiableSet(out);
    }

    /** When {@code node} joined, if it ever does. */
    public Optional<Duration> addedAt(String node) {
        Long t = addedAt.get(node);
        return t == null ? Optional.empty() : Optional.of(Duration.ofMillis(t));
    }

    /** When {@code node} is preempted, if it ever is (a preemption notice goes out one grace period before). */
    public Optional<Duration> removedAt(String node) {
        Long t = removedAt.get(node);
        return t == null ? Optional.empty() : Optional.of(Duration.ofMillis(t));
    }

    /** The required throughput in force at {@code time}, if any line has set one by then. */
    public OptionalDouble requiredThroughputAt(Duration time) {
        Map.Entry<Long, Double> e = throughput.floorEntry(time.toMillis());
        return e == null ? OptionalDouble.empty() : OptionalDouble.of(e.getValue());
    }

    /** Events of one kind, in order. */
    public List<TraceEvent> events(TraceEvent.Kind kind) {
        List<TraceEvent> out = new ArrayList<>();
        for (TraceEvent e : events) {
            if (e.kind() == kind) {
                out.add(e);
            }
        }
        return Collections.unmodifiableList(out);
    }

    @Override
    public String toString() {
        return "AvailabilityTrace[" + source + ", " + events.size() + " events, " + startTime().toMillis() + ".."
                + endTime().toMillis() + " ms, " + minInstanceCount() + "-" + maxInstanceCount() + " instances]";
    }
}
