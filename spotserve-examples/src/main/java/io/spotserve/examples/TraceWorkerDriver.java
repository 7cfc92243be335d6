package io.spotserve.examples;

import io.spotserve.trace.AvailabilityTrace;
import io.spotserve.trace.TraceEvent;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * {@code replay --processes}: a spot availability trace played on real worker processes. Every trace node is a worker
 * JVM of a {@link LocalWorkerFleet}: an addition starts one (the nodes of time 0 before serving starts), a removal
 * SIGTERMs it one grace period ahead (its preemption notice, which the worker forwards to the controller) and SIGKILLs
 * it at the removal time, as the cloud takes a VM. The engine sees only what the controller sees: registrations,
 * notices and dropped connections. Times are scaled onto the engine clock like {@code TraceInstanceProvider}'s.
 */
final class TraceWorkerDriver implements AutoCloseable {
    /** What happens to a node's process, and when on the engine clock. */
    enum Kind { LAUNCH, NOTICE, KILL }

    record Action(Duration at, Kind kind, String node) {
    }

    private final LocalWorkerFleet fleet;
    private final AvailabilityTrace trace;
    private final long deviceMemory;
    private final Duration grace;
    private Supplier<Duration> clock;
    private List<Action> actions;
    private Thread thread;
    private volatile boolean closed;
    private volatile IOException failure;

    private TraceWorkerDriver(LocalWorkerFleet fleet, AvailabilityTrace trace, long deviceMemory, Duration grace) {
        this.fleet = fleet;
        this.trace = trace;
        this.deviceMemory = deviceMemory;
        this.grace = grace;
    }

    /**
     * The trace as process actions on the engine clock: trace time × {@code scale}; a removed node is noticed
     * {@code grace} before its removal (never before it was launched) and killed at it; nodes added at time 0 have no
     * action (they are started before serving, see {@link #initialNodes}). Ordered by time, launches first at a tie.
     */
    static List<Action> actions(AvailabilityTrace trace, double scale, Duration grace) {
        List<Action> out = new ArrayList<>();
        Map<String, Duration> launched = new HashMap<>();
        for (TraceEvent e : trace.events()) {
            Duration at = Duration.ofNanos(Math.round(e.time().toNanos() * scale));
            if (e.kind() == TraceEvent.Kind.ADD) {
                for (String node : e.nodes()) {
                    launched.put(node, at);
                    if (!at.isZero()) {
                        out.add(new Action(at, Kind.LAUNCH, node));
                    }
                }
            } else if (e.kind() == TraceEvent.Kind.REMOVE) {
                for (String node : e.nodes()) {
                    Duration since = launched.getOrDefault(node, Duration.ZERO);
                    Duration notice = at.minus(grace);
                    out.add(new Action(notice.compareTo(since) < 0 ? since : notice, Kind.NOTICE, node));
                    out.add(new Action(at, Kind.KILL, node));
                }
            }
        }
        out.sort(Comparator.comparing(Action::at).thenComparing(Action::kind));
        return out;
    }

    /** The nodes the trace adds at time 0: the fleet serving starts with. */
    static List<String> initialNodes(AvailabilityTrace trace) {
        List<String> out = new ArrayList<>();
        for (TraceEvent e : trace.events()) {
            if (e.kind() == TraceEvent.Kind.ADD && e.time().isZero()) {
                out.addAll(e.nodes());
            }
        }
        return out;
    }

    /**
     * Starts the trace's initial nodes as worker JVMs ({@code grace}: their notice grace on the engine clock) and waits
     * (at most {@code timeout}) until they have registered; {@link #play} then plays the rest of the trace.
     */
    static TraceWorkerDriver startInitial(LocalWorkerFleet fleet, AvailabilityTrace trace, Duration grace,
                                          long deviceMemory, Duration timeout) throws IOException, InterruptedException {
        List<String> initial = initialNodes(trace);
        if (initial.isEmpty()) {
            throw new IOException("the trace adds no node at time 0: nothing to serve on at the start");
        }
        for (String node : initial) {
            fleet.launch(node, deviceMemory, grace);
        }
        fleet.awaitRegistered(initial.size(), timeout);
        return new TraceWorkerDriver(fleet, trace, deviceMemory, grace);
    }

    /**
     * Plays the rest of the trace on a background thread as {@code clock} (the engine's) advances, trace time ×
     * {@code scale} after {@code origin} (the engine-clock time of trace time 0); {@link #close} stops it.
     */
    void play(Supplier<Duration> clock, double scale, Duration origin) {
        if (thread != null) {
            throw new IllegalStateException("the trace is playing already");
        }
        this.clock = () -> clock.get().minus(origin);
        this.actions = actions(trace, scale, grace);
        this.thread = new Thread(this::run, "spotserve-replay-trace");
        thread.setDaemon(true);
        thread.start();
    }

    private void run() {
        try {
            for (Action a : actions) {
                while (!closed) {
                    long left = a.at().minus(clock.get()).toMillis();
                    if (left <= 0) {
                        break;
                    }
                    Thread.sleep(Math.min(left, 50));
                }
                if (closed) {
                    return;
                }
                switch (a.kind()) {
                    case LAUNCH -> fleet.launch(a.node(), deviceMemory, grace);
                    case NOTICE -> fleet.notice(a.node());
                    case KILL -> fleet.kill(a.node());
                }
            }
        } catch (IOException e) {
            failure = e;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Why a worker could not be started mid-replay, or null. */
    IOException failure() {
        return failure;
    }

    @Override
    public void close() {
        closed = true;
        if (thread == null) {
            return;
        }
        thread.interrupt();
        try {
            thread.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
