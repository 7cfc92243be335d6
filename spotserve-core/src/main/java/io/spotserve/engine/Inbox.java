package io.spotserve.engine;

import io.spotserve.instance.InstanceEvent;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The engine's inbox: commands from callers, the instance provider and pipeline dispatchers, and the instance events
 * waiting for their time. Every instance event passes through {@link #hold}: it is applied at its own time, but never
 * before an event the provider emitted earlier for the same instance (an {@code Acquired} dated later than the
 * preemption notice that follows it is still applied first), so each instance's events are applied in provider order
 * whether they arrive during a migration, dated in the future, or at once.
 */
final class Inbox {
    /** The lock the engine thread waits on; {@link #post} wakes it. */
    final Object monitor = new Object();
    private final ConcurrentLinkedQueue<Object> commands = new ConcurrentLinkedQueue<>();
    private final PriorityQueue<Timed> timers = new PriorityQueue<>();
    /** The time the latest held event of each instance is due at. */
    private final Map<String, Duration> lastDue = new HashMap<>();
    private long seq;

    private record Timed(Duration at, long seq, InstanceEvent event) implements Comparable<Timed> {
        @Override
        public int compareTo(Timed o) {
            int c = at.compareTo(o.at);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }
    }

    /** Any thread: enqueues a command and wakes the engine thread. */
    void post(Object command) {
        commands.add(command);
        synchronized (monitor) {
            monitor.notifyAll();
        }
    }

    /** The next command, or null. */
    Object poll() {
        return commands.poll();
    }

    boolean isEmpty() {
        return commands.isEmpty();
    }

    /** Engine thread: holds an instance event until its time, behind every earlier event of its instance. */
    void hold(InstanceEvent e) {
        Duration at = e.at();
        Duration last = lastDue.get(e.instanceId());
        if (last != null && last.compareTo(at) > 0) {
            at = last;
        }
        lastDue.put(e.instanceId(), at);
        timers.add(new Timed(at, seq++, e));
    }

    /** Engine thread: the held events due by {@code now}, in the order to apply them. */
    List<InstanceEvent> due(Duration now) {
        List<InstanceEvent> out = new ArrayList<>();
        while (!timers.isEmpty() && timers.peek().at.compareTo(now) <= 0) {
            out.add(timers.poll().event);
        }
        return out;
    }

    /** Whether a held event is due by {@code now}. */
    boolean eventDue(Duration now) {
        return !timers.isEmpty() && timers.peek().at.compareTo(now) <= 0;
    }

    /** When the next held event is due, or null. */
    Duration nextEvent() {
        return timers.isEmpty() ? null : timers.peek().at;
    }

    /**
     * Engine thread, during a migration: the instances that events not applied yet say are gone by {@code now}
     * (terminated, or past the deadline of a notice). Nothing is applied or taken off the inbox.
     */
    Set<String> goneBy(Duration now) {
        Set<String> dead = new HashSet<>();
        for (Timed t : timers) {
            if (t.at.compareTo(now) <= 0) {
                goneBy(t.event, now, dead);
            }
        }
        for (Object c : commands) {
            if (c instanceof InstanceEvent e && e.at().compareTo(now) <= 0) {
                goneBy(e, now, dead);
            }
        }
        return dead;
    }

    private static void goneBy(InstanceEvent e, Duration now, Set<String> dead) {
        if (e instanceof InstanceEvent.Terminated x) {
            dead.add(x.instanceId());
        } else if (e instanceof InstanceEvent.PreemptionNotice n && n.deadline().compareTo(now) <= 0) {
            dead.add(n.instanceId());
        }
    }
}
