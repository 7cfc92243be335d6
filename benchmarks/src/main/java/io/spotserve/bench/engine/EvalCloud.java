package io.spotserve.bench.engine;

import io.spotserve.bench.eval.OnDemandSchedule;
import io.spotserve.bench.eval.Scenario;
import io.spotserve.clock.EngineClock;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceProvider;
import io.spotserve.instance.InstanceType;
import io.spotserve.plan.Hardware;
import io.spotserve.trace.AvailabilityTrace;
import io.spotserve.trace.TraceEvent;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cloud of the paper's evaluation (SpotServe §6.1, benchmarks/notes/evaluation.md "What is simulated") as an
 * {@link InstanceProvider}, so the real {@code ServingEngine} on a simulated clock sees exactly the fleet the
 * discrete-event {@code Simulation} models, and is billed the same way.
 *
 * <p>Every trace node is one instance of the spot type (g4dn.12xlarge: 4 T4). A trace add at T is the cloud
 * granting the instance: billed from T, usable ({@link InstanceEvent.Acquired}) at T + launch delay (120 s), except
 * the nodes of time 0, which are warm (usable at 0). A trace remove at T is noticed at max(usable, T − grace)
 * ({@link InstanceEvent.PreemptionNotice} with deadline T) and the instance is gone at T ({@link
 * InstanceEvent.Terminated}, billing ends). A node removed before it became usable is billed from its grant to its
 * removal but never reported to the engine (it never held anything). All trace events are handed over, dated, when
 * the engine starts; the engine applies each when its clock reaches it.
 *
 * <p>{@link #requestOnDemand} grants on-demand instances at once (billed from {@code clock.now()}), usable one launch
 * delay later; without an on-demand type (cells without "+O") it grants none, like {@link
 * io.spotserve.instance.TraceInstanceProvider}. {@link #release} ends the billing now and confirms with a
 * {@link InstanceEvent.Terminated} dated now; spot instances may be released too (later trace events about them are
 * stale, and the engine ignores them). Like {@code TraceInstanceProvider}, an unknown id is confirmed anyway and
 * changes no bill. Calls before {@link #start} are kept and their events delivered at start.
 *
 * <p>Ids are stable and readable: {@code spot-k} for the k-th node the trace adds (counting from 0; in the paper's
 * traces {@code node-k} is {@code spot-k}), {@code od-k} for the k-th on-demand grant. {@link #bill} and
 * {@link #timeline} are the ledger: instance-seconds per market up to a stop time, USD at the types' prices, and
 * the held / usable counts over time. Thread-safe (every method is synchronized).
 */
public final class EvalCloud implements InstanceProvider {
    private static final Logger LOG = LoggerFactory.getLogger(EvalCloud.class);

    /** The paper's launch + engine initialisation time of an acquired instance (§7.1, about 2 min). */
    public static final Duration PAPER_LAUNCH = Duration.ofSeconds(120);
    /** AWS's preemption notice (§2). */
    public static final Duration PAPER_GRACE = Duration.ofSeconds(30);

    private final EngineClock clock;
    private final InstanceType spotType;
    private final InstanceType onDemandType;
    private final Duration launch;
    private final Duration grace;
    private final Duration traceEnd;
    private final boolean scheduled;
    private final List<InstanceEvent> traceEvents;
    private final Map<String, Lease> leases = new LinkedHashMap<>();
    private final Map<String, String> spotIdOfNode = new LinkedHashMap<>();
    private final List<InstanceEvent> pending = new ArrayList<>();
    private Consumer<InstanceEvent> listener;
    private int nextOnDemand;
    private boolean started;
    private boolean closed;

    /**
     * What the cloud granted: one instance, when it was billed from, when the engine could use it and when the
     * billing ended.
     *
     * @param id        the instance id the engine sees
     * @param market    spot or on-demand
     * @param traceNode the trace's node name for a spot instance, {@code null} for an on-demand one
     * @param granted   billed from
     * @param usable    when it is usable ({@link InstanceEvent.Acquired}), {@code null} if it never is
     * @param ended     when the billing ends (removal, release or close; may lie ahead for a trace removal),
     *                  {@code null} while nothing ends it
     */
    public record Lease(String id, InstanceType.Market market, String traceNode, Duration granted, Duration usable,
                        Duration ended) {
        /** Billed seconds up to {@code stop}. */
        public double billedSeconds(Duration stop) {
            Duration end = ended == null || ended.compareTo(stop) > 0 ? stop : ended;
            return end.compareTo(granted) <= 0 ? 0 : seconds(end.minus(granted));
        }

        boolean heldAt(Duration t) {
            return granted.compareTo(t) <= 0 && (ended == null || ended.compareTo(t) > 0);
        }

        boolean usableAt(Duration t) {
            return usable != null && usable.compareTo(t) <= 0 && (ended == null || ended.compareTo(t) > 0);
        }
    }

    /**
     * The bill up to a stop time: instance-seconds per market and their price (spot·spotPrice + od·odPrice per
     * instance-hour), as {@code Simulation} computes its {@code RunResult} cost.
     *
     * @param stop                    the end of the billed period
     * @param spotInstanceSeconds     billed spot instance-seconds
     * @param onDemandInstanceSeconds billed on-demand instance-seconds
     * @param usd                     total price
     */
    public record Bill(Duration stop, double spotInstanceSeconds, double onDemandInstanceSeconds, double usd) {
    }

    /**
     * The fleet after every change at one instant, for plots.
     *
     * @param at       the instant
     * @param spot     spot instances held (billed)
     * @param onDemand on-demand instances held (billed)
     * @param usable   instances of either market the engine can use
     */
    public record Sample(Duration at, int spot, int onDemand, int usable) {
    }

    private EvalCloud(Builder b) {
        this.clock = b.clock;
        this.spotType = b.spotType;
        this.onDemandType = b.onDemandType;
        this.launch = b.launch;
        this.grace = b.grace;
        AvailabilityTrace trace = AvailabilityTrace.of("spot events", b.events); // rejects an impossible history
        Duration last = trace.events().get(trace.events().size() - 1).time();
        Duration end = b.traceEnd != null ? b.traceEnd : last;
        if (end.compareTo(last) < 0) {
            throw new IllegalArgumentException("trace end " + end + " is before the last trace event at " + last
                    + "; expected an end at or after every event");
        }
        this.traceEnd = end;
        List<InstanceEvent> out = new ArrayList<>();
        for (TraceEvent e : trace.events()) {
            switch (e.kind()) {
                case ADD -> {
                    for (String node : e.nodes()) {
                        String id = "spot-" + spotIdOfNode.size();
                        spotIdOfNode.put(node, id);
                        Duration usable = e.time().isZero() ? Duration.ZERO : e.time().plus(launch);
                        leases.put(id, new Lease(id, InstanceType.Market.SPOT, node, e.time(), usable, null));
                        out.add(new InstanceEvent.Acquired(new Instance(id, spotType), usable));
                    }
                }
                case REMOVE -> {
                    for (String node : e.nodes()) {
                        String id = spotIdOfNode.get(node);
                        Lease l = leases.get(id);
                        Duration t = e.time();
                        if (t.compareTo(l.usable()) <= 0) {
                            // gone before (or as) it became usable: billed, never seen by the engine
                            out.removeIf(x -> x.instanceId().equals(id));
                            leases.put(id, new Lease(id, l.market(), node, l.granted(), null, t));
                            continue;
                        }
                        Duration notice = t.minus(grace);
                        if (notice.compareTo(l.usable()) < 0) {
                            notice = l.usable();
                        }
                        leases.put(id, new Lease(id, l.market(), node, l.granted(), l.usable(), t));
                        out.add(new InstanceEvent.PreemptionNotice(id, notice, t));
                        out.add(new InstanceEvent.Terminated(id, t));
                    }
                }
                default -> {
                    // RATE and END change no membership
                }
            }
        }
        this.scheduled = b.onDemandSchedule != null;
        if (scheduled) {
            if (onDemandType == null && !b.onDemandSchedule.isEmpty()) {
                throw new IllegalArgumentException("an on-demand schedule of " + b.onDemandSchedule.size()
                        + " instances needs an on-demand type; got none");
            }
            for (OnDemandSchedule.Lease s : b.onDemandSchedule) {
                Duration granted = ofSeconds(s.granted());
                Duration usable = s.everUsable() ? ofSeconds(s.usable()) : null;
                Duration ended = Double.isInfinite(s.ended()) ? null : ofSeconds(s.ended());
                if (leases.containsKey(s.id())) {
                    throw new IllegalArgumentException("on-demand schedule repeats instance id " + s.id());
                }
                leases.put(s.id(), new Lease(s.id(), InstanceType.Market.ON_DEMAND, null, granted, usable, ended));
                nextOnDemand++;
                if (usable == null) {
                    continue; // released while launching: billed, never seen
                }
                out.add(new InstanceEvent.Acquired(new Instance(s.id(), onDemandType), usable));
                if (ended != null) {
                    Duration notice = ended.minus(grace);
                    if (notice.compareTo(usable) < 0) {
                        notice = usable;
                    }
                    out.add(new InstanceEvent.PreemptionNotice(s.id(), notice, ended));
                    out.add(new InstanceEvent.Terminated(s.id(), ended));
                }
            }
        }
        out.sort(Comparator.comparing(InstanceEvent::at)); // stable: an instance's events keep their order
        this.traceEvents = List.copyOf(out);
    }

    /** Configures a cloud from a spot history; the other settings default to the paper's (see {@link Builder}). */
    public static Builder builder(List<TraceEvent> spotEvents, EngineClock clock) {
        return new Builder(spotEvents, clock);
    }

    /**
     * The cloud of one evaluation cell: its spot events and trace end, its launch delay and grace, instances of its
     * cost model's hardware (GPUs, usable memory per GPU and both prices), and in "+O" cells
     * ({@link Scenario#onDemandMixing()}) the cell's {@link OnDemandSchedule} — the same on-demand fleet for every
     * system that runs on it; live {@link #requestOnDemand} calls grant nothing.
     */
    public static EvalCloud of(Scenario scenario, EngineClock clock) {
        Objects.requireNonNull(scenario, "scenario");
        return of(scenario, clock, ofSeconds(scenario.params().graceSeconds()));
    }

    /**
     * {@link #of(Scenario, EngineClock)} with another notice ahead of each removal (zero: the instance is noticed
     * when it goes, how the baselines react).
     */
    public static EvalCloud of(Scenario scenario, EngineClock clock, Duration grace) {
        Objects.requireNonNull(scenario, "scenario");
        Hardware hw = scenario.costModel().hardware();
        InstanceType spot = spotType(hw);
        return builder(scenario.spotEvents(), clock)
                .traceEnd(ofSeconds(scenario.endSeconds()))
                .launchDelay(ofSeconds(scenario.params().launchSeconds()))
                .grace(grace)
                .spotType(spot)
                .onDemandType(scenario.onDemandMixing() ? spot.on(InstanceType.Market.ON_DEMAND,
                        hw.onDemandUsdPerHour()) : null)
                .onDemandSchedule(scenario.onDemandMixing() ? OnDemandSchedule.of(scenario) : null)
                .build();
    }

    /** One instance of {@code hw} bought on the spot market (its usable memory per GPU, its spot price). */
    public static InstanceType spotType(Hardware hw) {
        return new InstanceType(hw.name(), hw.gpusPerInstance(), hw.gpuMemoryBytes(), hw.spotUsdPerHour(),
                InstanceType.Market.SPOT);
    }

    /** The trace's events as the engine receives them at {@link #start}, in time order. */
    public List<InstanceEvent> traceEvents() {
        return traceEvents;
    }

    /** The end of the trace (its DONE marker, or the scenario's end). */
    public Duration traceEnd() {
        return traceEnd;
    }

    /** The instance id of trace node {@code node}, e.g. {@code spot-3} for {@code node-3}. */
    public synchronized String instanceIdOf(String node) {
        String id = spotIdOfNode.get(node);
        if (id == null) {
            throw new IllegalArgumentException("no trace node '" + node + "'; the trace adds " + spotIdOfNode.keySet());
        }
        return id;
    }

    @Override
    public synchronized void start(Consumer<InstanceEvent> listener) {
        Objects.requireNonNull(listener, "listener");
        if (started) {
            throw new IllegalStateException("EvalCloud was already started");
        }
        started = true;
        if (closed) {
            return;
        }
        this.listener = listener;
        List<InstanceEvent> all = new ArrayList<>(traceEvents);
        all.addAll(pending);
        pending.clear();
        all.sort(Comparator.comparing(InstanceEvent::at));
        for (InstanceEvent e : all) {
            listener.accept(e);
        }
    }

    /**
     * Grants {@code count} on-demand instances now (billed from {@code clock.now()}), each reported usable one launch
     * delay later; none without an on-demand type.
     *
     * @throws IllegalArgumentException if count is negative
     */
    @Override
    public synchronized void requestOnDemand(int count) {
        if (count < 0) {
            throw new IllegalArgumentException("count must be >= 0, was " + count);
        }
        if (closed) {
            return;
        }
        if (onDemandType == null || scheduled) {
            LOG.info("asked for {} instances; this cell has {}", count,
                    scheduled ? "a replayed on-demand schedule, no live grants" : "no on-demand market");
            return;
        }
        Duration now = clock.now();
        for (int i = 0; i < count; i++) {
            String id = "od-" + nextOnDemand++;
            Duration usable = now.plus(launch);
            leases.put(id, new Lease(id, InstanceType.Market.ON_DEMAND, null, now, usable, null));
            emit(new InstanceEvent.Acquired(new Instance(id, onDemandType), usable));
        }
    }

    /**
     * Ends the billing of {@code instanceId} now (a trace removal that already happened stays the end) and confirms
     * with a {@link InstanceEvent.Terminated} dated now, also for an id this cloud never granted (as
     * {@code TraceInstanceProvider} does; the engine ignores such an event).
     */
    @Override
    public synchronized void release(String instanceId) {
        Objects.requireNonNull(instanceId, "instanceId");
        if (closed) {
            return;
        }
        Duration now = clock.now();
        Lease l = leases.get(instanceId);
        if (l == null) {
            LOG.debug("release of {}, which this cloud never granted", instanceId);
        } else {
            end(l, now);
        }
        emit(new InstanceEvent.Terminated(instanceId, now));
    }

    /** Stops delivering events and ends the billing of everything still held (or not yet granted) at now. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        Duration now = clock.now();
        for (Lease l : List.copyOf(leases.values())) {
            end(l, now);
        }
        closed = true;
        listener = null;
        pending.clear();
    }

    private void end(Lease l, Duration at) {
        Duration end = at;
        if (l.ended() != null && l.ended().compareTo(end) < 0) {
            end = l.ended();
        }
        if (end.compareTo(l.granted()) < 0) {
            end = l.granted(); // not granted yet (a later trace add): nothing billed
        }
        Duration usable = l.usable() != null && l.usable().compareTo(end) < 0 ? l.usable() : null;
        leases.put(l.id(), new Lease(l.id(), l.market(), l.traceNode(), l.granted(), usable, end));
    }

    private void emit(InstanceEvent e) {
        if (listener == null) {
            pending.add(e);
        } else {
            listener.accept(e);
        }
    }

    /** Every instance granted so far and those the trace will grant, spot ones first in trace order. */
    public synchronized List<Lease> leases() {
        return List.copyOf(leases.values());
    }

    /**
     * The bill up to {@code stop}: every instance's billed seconds up to then, per market, and their price.
     *
     * @throws IllegalArgumentException if stop is negative
     */
    public synchronized Bill bill(Duration stop) {
        requireTime("stop", stop);
        double spot = 0;
        double od = 0;
        for (Lease l : leases.values()) {
            double s = l.billedSeconds(stop);
            if (l.market() == InstanceType.Market.SPOT) {
                spot += s;
            } else {
                od += s;
            }
        }
        double usd = (spot * spotType.pricePerHour()
                + od * (onDemandType == null ? 0 : onDemandType.pricePerHour())) / 3600.0;
        return new Bill(stop, spot, od, usd);
    }

    /**
     * The fleet at 0 and after every grant, launch end, removal or release up to {@code stop}, one sample per
     * instant, plus one at {@code stop}.
     *
     * @throws IllegalArgumentException if stop is negative
     */
    public synchronized List<Sample> timeline(Duration stop) {
        requireTime("stop", stop);
        TreeSet<Duration> instants = new TreeSet<>();
        instants.add(Duration.ZERO);
        instants.add(stop);
        for (Lease l : leases.values()) {
            for (Duration t : new Duration[] {l.granted(), l.usable(), l.ended()}) {
                if (t != null && t.compareTo(stop) <= 0) {
                    instants.add(t);
                }
            }
        }
        List<Sample> out = new ArrayList<>(instants.size());
        for (Duration t : instants) {
            out.add(sampleAt(t));
        }
        return out;
    }

    /** The fleet after every change at {@code t}. */
    public synchronized Sample sampleAt(Duration t) {
        requireTime("t", t);
        int spot = 0;
        int od = 0;
        int usable = 0;
        for (Lease l : leases.values()) {
            if (l.heldAt(t)) {
                if (l.market() == InstanceType.Market.SPOT) {
                    spot++;
                } else {
                    od++;
                }
            }
            if (l.usableAt(t)) {
                usable++;
            }
        }
        return new Sample(t, spot, od, usable);
    }

    private static void requireTime(String name, Duration t) {
        Objects.requireNonNull(t, name);
        if (t.isNegative()) {
            throw new IllegalArgumentException(name + " must be >= 0, was " + t);
        }
    }

    static double seconds(Duration d) {
        return d.toNanos() / 1e9;
    }

    static Duration ofSeconds(double s) {
        if (!(s >= 0) || Double.isInfinite(s)) {
            throw new IllegalArgumentException("time must be a finite number of seconds >= 0, was " + s);
        }
        return Duration.ofNanos(Math.round(s * 1e9));
    }

    /** Configures an {@link EvalCloud}; defaults are the paper's (g4dn.12xlarge, 120 s launch, 30 s grace). */
    public static final class Builder {
        private final List<TraceEvent> events;
        private final EngineClock clock;
        private Duration traceEnd;
        private Duration launch = PAPER_LAUNCH;
        private Duration grace = PAPER_GRACE;
        private InstanceType spotType = EvalCloud.spotType(Hardware.G4DN_12XLARGE);
        private InstanceType onDemandType = spotType.on(InstanceType.Market.ON_DEMAND,
                Hardware.G4DN_12XLARGE.onDemandUsdPerHour());
        private List<OnDemandSchedule.Lease> onDemandSchedule;

        private Builder(List<TraceEvent> events, EngineClock clock) {
            this.events = List.copyOf(Objects.requireNonNull(events, "spotEvents"));
            this.clock = Objects.requireNonNull(clock, "clock");
            if (events.isEmpty()) {
                throw new IllegalArgumentException("no spot events; expected at least the initial add");
            }
        }

        /** The end of the trace (default: its END marker, else its last event); not before any event. */
        public Builder traceEnd(Duration end) {
            this.traceEnd = nonNegative("trace end", end);
            return this;
        }

        /** Grant to usable (launch + engine init), default 120 s; the nodes of time 0 are usable at once. */
        public Builder launchDelay(Duration delay) {
            this.launch = nonNegative("launch delay", delay);
            return this;
        }

        /** Notice ahead of each removal, default 30 s. */
        public Builder grace(Duration grace) {
            this.grace = nonNegative("grace", grace);
            return this;
        }

        /** What each trace node is; must be a spot type. */
        public Builder spotType(InstanceType type) {
            Objects.requireNonNull(type, "spotType");
            if (type.market() != InstanceType.Market.SPOT) {
                throw new IllegalArgumentException("spot type " + type.name() + " is bought " + type.market()
                        + "; expected SPOT");
            }
            this.spotType = type;
            return this;
        }

        /** What {@link #requestOnDemand} grants (an on-demand type), or {@code null} to grant nothing. */
        public Builder onDemandType(InstanceType type) {
            if (type != null && type.market() != InstanceType.Market.ON_DEMAND) {
                throw new IllegalArgumentException("on-demand type " + type.name() + " is bought " + type.market()
                        + "; expected ON_DEMAND");
            }
            this.onDemandType = type;
            return this;
        }

        /**
         * Replays a pre-decided on-demand fleet instead of granting live requests (null: live grants, the default).
         * Each lease is billed from its grant, reported {@link InstanceEvent.Acquired} at its usable time unless it
         * ends first (then never reported), and, if it ends, noticed {@link #grace} before its end (not before it is
         * usable) and {@link InstanceEvent.Terminated} at its end — as a spot removal. {@link #requestOnDemand} then
         * grants nothing.
         */
        public Builder onDemandSchedule(List<OnDemandSchedule.Lease> schedule) {
            this.onDemandSchedule = schedule == null ? null : List.copyOf(schedule);
            return this;
        }

        /**
         * The cloud.
         *
         * @throws IllegalArgumentException naming the event if the spot events describe an impossible history
         *                                  (see {@link AvailabilityTrace#of}), or if the trace end is before an event
         */
        public EvalCloud build() {
            return new EvalCloud(this);
        }

        private static Duration nonNegative(String name, Duration d) {
            Objects.requireNonNull(d, name);
            if (d.isNegative()) {
                throw new IllegalArgumentException(name + " must be >= 0, was " + d);
            }
            return d;
        }
    }
}
