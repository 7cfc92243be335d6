package io.spotserve.instance;

import io.spotserve.clock.EngineClock;
import io.spotserve.trace.AvailabilityTrace;
import io.spotserve.trace.TraceEvent;
import io.spotserve.trace.TraceReader;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Replays a real spot availability trace (SpotServe §6; both formats of {@code shared/traces}, read by
 * {@link TraceReader}, which rejects a malformed line with file:line and what was expected) as instance events
 * on the engine clock: a trace time t becomes {@code t × timeScale} (so a 20-minute trace can run in seconds),
 * an added node an {@link InstanceEvent.Acquired} of the given type, and a removed node a
 * {@link InstanceEvent.PreemptionNotice} one grace period ahead (never before the node joined) followed by
 * {@link InstanceEvent.Terminated} at its removal time. With {@link #announceAdditions} a node added after the start is
 * also announced ahead by an acquisition notice ({@link InstanceEvent.Launching}, usable at its trace time), as the
 * SpotServe artifact's replayer fires every event its grace period early.
 *
 * <p>All events are handed over, dated, when the engine starts; the engine applies each when its clock
 * reaches it. Throughput-change lines ({@code other}/RATE) and the end marker are not membership changes and are
 * skipped. {@link #requestOnDemand} launches on-demand instances at once when an on-demand type is given;
 * {@link #release} terminates an instance now (later trace events about it are then stale and ignored).
 */
public final class TraceInstanceProvider implements InstanceProvider {
    private static final Logger LOG = LoggerFactory.getLogger(TraceInstanceProvider.class);

    private final AvailabilityTrace trace;
    private final InstanceType type;
    private final Duration grace;
    private final double timeScale;
    private final EngineClock clock;
    private final InstanceType onDemandType;
    private Consumer<InstanceEvent> listener;
    private int nextOnDemand;
    private Duration additionNotice = Duration.ZERO;

    /**
     * A provider replaying {@code trace}.
     *
     * @param trace        the availability trace
     * @param type         what each trace node is (usually a spot type)
     * @param grace        notice ahead of each removal, on the engine clock
     * @param timeScale    engine time per trace time, {@code > 0} (1 = real time, 0.001 = a second per ms)
     * @param clock        the engine clock (for on-demand launches and releases)
     * @param onDemandType what {@link #requestOnDemand} launches, or {@code null} for nothing
     * @throws IllegalArgumentException if grace is negative or timeScale is not a positive finite number
     */
    public TraceInstanceProvider(AvailabilityTrace trace, InstanceType type, Duration grace, double timeScale,
                                 EngineClock clock, InstanceType onDemandType) {
        this.trace = Objects.requireNonNull(trace, "trace");
        this.type = Objects.requireNonNull(type, "type");
        this.grace = Objects.requireNonNull(grace, "grace");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.onDemandType = onDemandType;
        if (grace.isNegative()) {
            throw new IllegalArgumentException("grace must be >= 0, was " + grace);
        }
        if (!(timeScale > 0) || Double.isInfinite(timeScale)) {
            throw new IllegalArgumentException("timeScale must be a positive finite number, was " + timeScale);
        }
        this.timeScale = timeScale;
    }

    /**
     * Reads a trace file in either format.
     *
     * @throws io.spotserve.trace.TraceFormatException naming file:line, what was found and what was expected
     */
    public static TraceInstanceProvider read(Path file, InstanceType type, Duration grace, double timeScale,
                                             EngineClock clock, InstanceType onDemandType) throws IOException {
        return new TraceInstanceProvider(TraceReader.read(file), type, grace, timeScale, clock, onDemandType);
    }

    /**
     * Announces every node added after time 0 {@code lead} ahead of its addition (never before time 0) with an
     * acquisition notice; zero (the default) announces nothing. Call before {@link #start}.
     *
     * @return this provider
     * @throws IllegalArgumentException if {@code lead} is negative
     * @throws IllegalStateException if the provider was started
     */
    public synchronized TraceInstanceProvider announceAdditions(Duration lead) {
        Objects.requireNonNull(lead, "lead");
        if (lead.isNegative()) {
            throw new IllegalArgumentException("acquisition notice lead must be >= 0, was " + lead);
        }
        if (listener != null) {
            throw new IllegalStateException("announceAdditions must be called before start");
        }
        this.additionNotice = lead;
        return this;
    }

    /**
     * The events this provider delivers, in trace order (notices are dated one grace before their removal, acquisition
     * notices {@link #announceAdditions one lead} before their addition).
     */
    public List<InstanceEvent> events() {
        List<InstanceEvent> out = new ArrayList<>();
        Map<String, Duration> joined = new HashMap<>();
        for (TraceEvent e : trace.events()) {
            Duration at = scale(e.time());
            switch (e.kind()) {
                case ADD -> {
                    for (String node : e.nodes()) {
                        joined.put(node, at);
                        if (!additionNotice.isZero() && !at.isZero()) {
                            Duration notice = at.compareTo(additionNotice) > 0 ? at.minus(additionNotice) : Duration.ZERO;
                            out.add(new InstanceEvent.Launching(node, notice, at));
                        }
                        out.add(new InstanceEvent.Acquired(new Instance(node, type), at));
                    }
                }
                case REMOVE -> {
                    for (String node : e.nodes()) {
                        Duration notice = at.minus(grace);
                        Duration since = joined.getOrDefault(node, Duration.ZERO);
                        if (notice.compareTo(since) < 0) {
                            notice = since;
                        }
                        out.add(new InstanceEvent.PreemptionNotice(node, notice, at));
                        out.add(new InstanceEvent.Terminated(node, at));
                    }
                }
                default -> {
                    // RATE and END change no membership
                }
            }
        }
        return out;
    }

    private Duration scale(Duration traceTime) {
        return Duration.ofNanos(Math.round(traceTime.toNanos() * timeScale));
    }

    @Override
    public synchronized void start(Consumer<InstanceEvent> listener) {
        Objects.requireNonNull(listener, "listener");
        if (this.listener != null) {
            throw new IllegalStateException("TraceInstanceProvider was already started");
        }
        this.listener = listener;
        for (InstanceEvent e : events()) {
            listener.accept(e);
        }
    }

    @Override
    public synchronized void requestOnDemand(int count) {
        if (count < 0) {
            throw new IllegalArgumentException("count must be >= 0, was " + count);
        }
        if (onDemandType == null || listener == null) {
            LOG.info("asked for {} instances; the trace has no on-demand market configured", count);
            return;
        }
        for (int i = 0; i < count; i++) {
            listener.accept(new InstanceEvent.Acquired(new Instance("on-demand-" + nextOnDemand++, onDemandType),
                    clock.now()));
        }
    }

    @Override
    public synchronized void release(String instanceId) {
        if (listener != null) {
            listener.accept(new InstanceEvent.Terminated(instanceId, clock.now()));
        }
    }

    @Override
    public synchronized void close() {
        listener = null;
    }
}
