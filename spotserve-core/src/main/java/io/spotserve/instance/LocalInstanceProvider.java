package io.spotserve.instance;

import io.spotserve.clock.EngineClock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Virtual instances in this JVM, for tests, demos and single-machine serving: each instance is a set of
 * devices (the engine backs them with its executor, each with the type's memory capacity). Tests and demos
 * drive the market by hand: {@link #add} an instance, {@link #launch} one that initializes for a while first
 * (an acquisition notice now, usable later), {@link #preempt} one with a grace period, {@link #kill}
 * one without notice, or {@link #deliver} any raw event (future-dated, duplicated or about an unknown
 * instance) to exercise the engine's tolerance. Event times come from the engine's clock.
 *
 * <p>{@link #requestOnDemand} launches on-demand instances of the configured type at once (no launch
 * delay); {@link #release} terminates an instance. Events produced before {@link #start} are queued and
 * delivered, in order, when it is called. Thread-safe.
 */
public final class LocalInstanceProvider implements InstanceProvider {
    private static final Logger LOG = LoggerFactory.getLogger(LocalInstanceProvider.class);

    private final EngineClock clock;
    private final InstanceType onDemandType;
    private final Map<String, Instance> live = new LinkedHashMap<>();
    private final List<InstanceEvent> pending = new ArrayList<>();
    private Consumer<InstanceEvent> listener;
    private int nextId;
    private boolean closed;

    /**
     * A provider with no instances yet.
     *
     * @param clock        the engine's clock (event times)
     * @param onDemandType what {@link #requestOnDemand} launches, or {@code null} to launch nothing
     */
    public LocalInstanceProvider(EngineClock clock, InstanceType onDemandType) {
        this.clock = Objects.requireNonNull(clock, "clock");
        this.onDemandType = onDemandType;
    }

    @Override
    public synchronized void start(Consumer<InstanceEvent> listener) {
        Objects.requireNonNull(listener, "listener");
        if (this.listener != null) {
            throw new IllegalStateException("LocalInstanceProvider was already started");
        }
        this.listener = listener;
        for (InstanceEvent e : pending) {
            listener.accept(e);
        }
        pending.clear();
    }

    /** Launches an instance of {@code type} now; returns it. */
    public synchronized Instance add(InstanceType type) {
        Objects.requireNonNull(type, "type");
        Instance instance = new Instance("local-" + nextId++, type);
        live.put(instance.id(), instance);
        emit(new InstanceEvent.Acquired(instance, clock.now()));
        return instance;
    }

    /**
     * Launches an instance of {@code type} that initializes for {@code startup}: the engine hears the acquisition
     * notice ({@link InstanceEvent.Launching}) now and {@link InstanceEvent.Acquired} dated {@code startup} from now.
     * Returns it (listed as live from now on).
     *
     * @throws IllegalArgumentException if {@code startup} is negative
     */
    public synchronized Instance launch(InstanceType type, Duration startup) {
        Objects.requireNonNull(type, "type");
        if (startup.isNegative()) {
            throw new IllegalArgumentException("startup must be >= 0, was " + startup);
        }
        Instance instance = new Instance("local-" + nextId++, type);
        live.put(instance.id(), instance);
        Duration now = clock.now();
        emit(new InstanceEvent.Launching(instance.id(), now, now.plus(startup)));
        emit(new InstanceEvent.Acquired(instance, now.plus(startup)));
        return instance;
    }

    /**
     * Announces that instance {@code id} will be taken away {@code grace} from now. The engine stops using it
     * by the deadline and releases it (a grace of zero means: now).
     *
     * @throws IllegalArgumentException if {@code id} is not a live instance or the grace is negative
     */
    public synchronized void preempt(String id, Duration grace) {
        requireLive(id);
        if (grace.isNegative()) {
            throw new IllegalArgumentException("grace must be >= 0, was " + grace + " for " + id);
        }
        Duration now = clock.now();
        emit(new InstanceEvent.PreemptionNotice(id, now, now.plus(grace)));
    }

    /**
     * Takes instance {@code id} away now, without notice (its memory is lost).
     *
     * @throws IllegalArgumentException if {@code id} is not a live instance
     */
    public synchronized void kill(String id) {
        requireLive(id);
        live.remove(id);
        emit(new InstanceEvent.Terminated(id, clock.now()));
    }

    /** Delivers any event as is, for tests: future-dated, duplicated, late or about unknown instances. */
    public synchronized void deliver(InstanceEvent event) {
        Objects.requireNonNull(event, "event");
        if (event instanceof InstanceEvent.Acquired a) {
            live.putIfAbsent(a.instanceId(), a.instance());
        } else if (event instanceof InstanceEvent.Terminated t) {
            live.remove(t.instanceId());
        }
        emit(event);
    }

    /** The instances launched and not yet terminated, in launch order. */
    public synchronized List<Instance> live() {
        return List.copyOf(live.values());
    }

    @Override
    public synchronized void requestOnDemand(int count) {
        if (count < 0) {
            throw new IllegalArgumentException("count must be >= 0, was " + count);
        }
        if (onDemandType == null) {
            LOG.info("asked for {} instances but no on-demand type is configured; launching none", count);
            return;
        }
        for (int i = 0; i < count; i++) {
            add(onDemandType);
        }
    }

    @Override
    public synchronized void release(String instanceId) {
        if (live.remove(instanceId) == null) {
            LOG.debug("release of {} ignored: not a live instance", instanceId);
            return;
        }
        emit(new InstanceEvent.Terminated(instanceId, clock.now()));
    }

    @Override
    public synchronized void close() {
        closed = true;
        listener = null;
        pending.clear();
    }

    private void requireLive(String id) {
        if (!live.containsKey(id)) {
            throw new IllegalArgumentException("no live instance " + id + "; live instances are " + live.keySet());
        }
    }

    private void emit(InstanceEvent e) {
        if (closed) {
            return;
        }
        if (listener == null) {
            pending.add(e);
        } else {
            listener.accept(e);
        }
    }
}
