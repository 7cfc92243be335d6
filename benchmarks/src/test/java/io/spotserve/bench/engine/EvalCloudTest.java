package io.spotserve.bench.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.bench.eval.Arrivals;
import io.spotserve.bench.eval.RunResult;
import io.spotserve.bench.eval.OnDemandSchedule;
import io.spotserve.bench.eval.Scenario;
import io.spotserve.bench.eval.Simulation;
import io.spotserve.bench.eval.SystemSpec;
import io.spotserve.clock.VirtualClock;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.TraceInstanceProvider;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.Hardware;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.PaperModel;
import io.spotserve.trace.AvailabilityTrace;
import io.spotserve.trace.TraceEvent;
import io.spotserve.trace.TraceReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** The evaluation's cloud on the paper's real traces A_S (trace_0304_real) and B_S (trace_0506_real). */
class EvalCloudTest {
    private static final Path SHARED = locateShared();
    private static final Duration LAUNCH = Duration.ofSeconds(120);
    private static final Duration GRACE = Duration.ofSeconds(30);

    private static Path locateShared() {
        String prop = System.getProperty("spotserve.shared.dir");
        Path p = prop != null ? Paths.get(prop) : Paths.get("..", "..", "shared");
        if (!Files.isDirectory(p.resolve("traces/spotserve"))) {
            p = Paths.get("..", "shared");
        }
        assertTrue(Files.isDirectory(p.resolve("traces/spotserve")), "shared/ not found at " + p.toAbsolutePath());
        return p;
    }

    private static AvailabilityTrace trace(String base) throws IOException {
        return TraceReader.readSegments(SHARED.resolve("traces/spotserve/trace_seg/" + base + ".txt"));
    }

    private static List<TraceEvent> spotEvents(AvailabilityTrace t) {
        return t.events().stream()
                .filter(e -> e.kind() == TraceEvent.Kind.ADD || e.kind() == TraceEvent.Kind.REMOVE).toList();
    }

    /** The cell the evaluation builds for OPT-6.7B without "+O" (as Evaluation.scenario does, seed 1). */
    private static Scenario scenario(String base, boolean onDemandMixing) throws IOException {
        PaperModel model = PaperModel.OPT_6_7B;
        CostModel cost = CostModel.of(model,
                LatencyProfile.read(SHARED.resolve("profiles/T4-4x/" + model.profileName() + ".json")));
        AvailabilityTrace t = trace(base);
        double end = t.endTime().toMillis() / 1000.0;
        double[] arrivals = Arrivals.constantRate(Arrivals.Mode.PAPER, 1.5, 6.0, end, 1_000_003L + base.hashCode());
        return new Scenario(model, cost, base, spotEvents(t), end, onDemandMixing, arrivals, 1.5, false, 6.0,
                Scenario.Params.paper());
    }

    private static <T extends InstanceEvent> List<T> ofKind(List<InstanceEvent> events, Class<T> kind) {
        return events.stream().filter(kind::isInstance).map(kind::cast).toList();
    }

    @ParameterizedTest
    @ValueSource(strings = {"trace_0304_real", "trace_0506_real"})
    void realTraceBecomesDatedEventsWithLaunchDelayAndGrace(String base) throws IOException {
        AvailabilityTrace trace = trace(base);
        VirtualClock clock = new VirtualClock(Duration.ZERO);
        EvalCloud cloud = EvalCloud.builder(trace.events(), clock).build();
        List<InstanceEvent> delivered = new ArrayList<>();
        cloud.start(delivered::add);
        assertEquals(cloud.traceEvents(), delivered);
        assertEquals(trace.endTime(), cloud.traceEnd());
        for (int i = 1; i < delivered.size(); i++) {
            assertTrue(delivered.get(i).at().compareTo(delivered.get(i - 1).at()) >= 0, "not in time order: " + delivered);
        }
        int adds = 0;
        int removes = 0;
        Map<String, Duration> usable = new HashMap<>();
        for (TraceEvent e : trace.events()) {
            for (String node : e.nodes()) {
                String id = cloud.instanceIdOf(node);
                assertEquals("spot-" + node.substring("node-".length()), id);
                if (e.kind() == TraceEvent.Kind.ADD) {
                    adds++;
                    Duration at = e.time().isZero() ? Duration.ZERO : e.time().plus(LAUNCH);
                    usable.put(id, at);
                    List<InstanceEvent.Acquired> acq = ofKind(delivered, InstanceEvent.Acquired.class).stream()
                            .filter(a -> a.instanceId().equals(id)).toList();
                    assertEquals(1, acq.size(), id + ": " + delivered);
                    assertEquals(at, acq.get(0).at(), id);
                    InstanceType type = acq.get(0).instance().type();
                    assertEquals(InstanceType.Market.SPOT, type.market());
                    assertEquals(4, type.gpus());
                    assertEquals(15_360L << 20, type.memoryPerGpuBytes());
                    assertEquals(1.9, type.pricePerHour());
                } else {
                    removes++;
                    Duration deadline = e.time();
                    List<InstanceEvent.PreemptionNotice> notices = ofKind(delivered,
                            InstanceEvent.PreemptionNotice.class).stream().filter(n -> n.instanceId().equals(id)).toList();
                    List<InstanceEvent.Terminated> terms = ofKind(delivered, InstanceEvent.Terminated.class).stream()
                            .filter(n -> n.instanceId().equals(id)).toList();
                    assertEquals(1, notices.size(), id);
                    assertEquals(1, terms.size(), id);
                    assertEquals(deadline, terms.get(0).at(), id);
                    assertEquals(deadline, notices.get(0).deadline(), id);
                    if (deadline.minus(GRACE).compareTo(usable.get(id)) >= 0) {
                        assertEquals(GRACE, notices.get(0).grace(), id + " notice");
                    } else {
                        assertEquals(usable.get(id), notices.get(0).at(), id + " noticed as soon as usable");
                    }
                    assertTrue(delivered.indexOf(notices.get(0)) < delivered.indexOf(terms.get(0)));
                }
            }
        }
        assertTrue(adds >= 11 && removes >= 3, adds + " adds, " + removes + " removes");
        assertEquals(adds, ofKind(delivered, InstanceEvent.Acquired.class).size());
        assertEquals(removes, ofKind(delivered, InstanceEvent.PreemptionNotice.class).size());
        assertEquals(removes, ofKind(delivered, InstanceEvent.Terminated.class).size());
        // in the paper's two segments every removed node was usable for more than the grace: all notices are 30 s
        for (InstanceEvent.PreemptionNotice n : ofKind(delivered, InstanceEvent.PreemptionNotice.class)) {
            assertEquals(GRACE, n.grace(), n.toString());
        }
    }

    @Test
    void aSNode8IsGrantedAt360UsableAt480NoticedAt570AndGoneAt600() throws IOException {
        // trace_0304_real: [360000, "add", node-8, node-9] ... [600000, "remove", node-8]
        EvalCloud cloud = EvalCloud.builder(trace("trace_0304_real").events(), new VirtualClock(Duration.ZERO)).build();
        List<InstanceEvent> e8 = cloud.traceEvents().stream().filter(e -> e.instanceId().equals("spot-8")).toList();
        assertEquals(3, e8.size(), e8.toString());
        assertEquals(Duration.ofSeconds(480), e8.get(0).at());
        assertEquals(new InstanceEvent.PreemptionNotice("spot-8", Duration.ofSeconds(570), Duration.ofSeconds(600)),
                e8.get(1));
        assertEquals(new InstanceEvent.Terminated("spot-8", Duration.ofSeconds(600)), e8.get(2));
        EvalCloud.Lease l = cloud.leases().get(8);
        assertEquals("node-8", l.traceNode());
        assertEquals(Duration.ofSeconds(360), l.granted());
        assertEquals(240.0, l.billedSeconds(Duration.ofSeconds(1320)), 1e-12);
        assertEquals(new EvalCloud.Sample(Duration.ofSeconds(420), 10, 0, 8), cloud.sampleAt(Duration.ofSeconds(420)));
    }

    @Test
    void noticeIsClampedToTheLaunchEndAndANodeGoneBeforeItIsUsableIsBilledButNeverReported() {
        List<TraceEvent> events = List.of(TraceEvent.add(Duration.ZERO, "a"),
                TraceEvent.add(Duration.ofSeconds(100), "b", "c"), TraceEvent.remove(Duration.ofSeconds(10), "a"),
                TraceEvent.remove(Duration.ofSeconds(200), "c"), TraceEvent.remove(Duration.ofSeconds(240), "b"),
                TraceEvent.end(Duration.ofSeconds(300)));
        List<TraceEvent> sorted = new ArrayList<>(events);
        sorted.sort((x, y) -> x.time().compareTo(y.time()));
        EvalCloud cloud = EvalCloud.builder(sorted, new VirtualClock(Duration.ZERO)).build();
        assertEquals(List.of(
                new InstanceEvent.Acquired(new io.spotserve.instance.Instance("spot-0",
                        EvalCloud.spotType(Hardware.G4DN_12XLARGE)), Duration.ZERO),
                new InstanceEvent.PreemptionNotice("spot-0", Duration.ZERO, Duration.ofSeconds(10)),
                new InstanceEvent.Terminated("spot-0", Duration.ofSeconds(10)),
                new InstanceEvent.Acquired(new io.spotserve.instance.Instance("spot-1",
                        EvalCloud.spotType(Hardware.G4DN_12XLARGE)), Duration.ofSeconds(220)),
                new InstanceEvent.PreemptionNotice("spot-1", Duration.ofSeconds(220), Duration.ofSeconds(240)),
                new InstanceEvent.Terminated("spot-1", Duration.ofSeconds(240))), cloud.traceEvents());
        // c: granted at 100, removed at 200 before its launch ended at 220 -> 100 s billed, no event
        EvalCloud.Lease c = cloud.leases().get(2);
        assertEquals("c", c.traceNode());
        assertNull(c.usable());
        EvalCloud.Bill bill = cloud.bill(Duration.ofSeconds(300));
        assertEquals(10 + 140 + 100, bill.spotInstanceSeconds(), 1e-9);
        assertEquals(250 * 1.9 / 3600, bill.usd(), 1e-12);
        assertEquals(List.of(new EvalCloud.Sample(Duration.ZERO, 1, 0, 1),
                new EvalCloud.Sample(Duration.ofSeconds(10), 0, 0, 0),
                new EvalCloud.Sample(Duration.ofSeconds(100), 2, 0, 0),
                new EvalCloud.Sample(Duration.ofSeconds(200), 1, 0, 0),
                new EvalCloud.Sample(Duration.ofSeconds(220), 1, 0, 1),
                new EvalCloud.Sample(Duration.ofSeconds(240), 0, 0, 0),
                new EvalCloud.Sample(Duration.ofSeconds(300), 0, 0, 0)), cloud.timeline(Duration.ofSeconds(300)));
    }

    @Test
    void onDemandIsBilledFromTheRequestUsableAfterTheLaunchAndReleasedNow() throws IOException {
        VirtualClock clock = new VirtualClock(Duration.ZERO);
        EvalCloud cloud = EvalCloud.builder(trace("trace_0506_real").events(), clock).build();
        List<InstanceEvent> got = new ArrayList<>();
        clock.advanceTo(Duration.ofSeconds(5));
        cloud.requestOnDemand(1); // before start: delivered at start
        cloud.start(got::add);
        assertEquals(new InstanceEvent.Acquired(new io.spotserve.instance.Instance("od-0",
                EvalCloud.spotType(Hardware.G4DN_12XLARGE).on(InstanceType.Market.ON_DEMAND, 3.9)),
                Duration.ofSeconds(125)), got.stream().filter(e -> e.instanceId().equals("od-0")).findFirst().orElseThrow());
        int traceEvents = cloud.traceEvents().size();
        assertEquals(traceEvents + 1, got.size());

        clock.advanceTo(Duration.ofSeconds(300));
        cloud.requestOnDemand(2);
        assertEquals(List.of("od-1", "od-2"), got.subList(traceEvents + 1, got.size()).stream()
                .map(InstanceEvent::instanceId).toList());
        for (InstanceEvent e : got.subList(traceEvents + 1, got.size())) {
            assertEquals(Duration.ofSeconds(420), e.at());
            assertEquals(InstanceType.Market.ON_DEMAND, ((InstanceEvent.Acquired) e).instance().type().market());
        }
        assertEquals(new EvalCloud.Sample(Duration.ofSeconds(300), 7, 3, 8), cloud.sampleAt(Duration.ofSeconds(300)));
        clock.advanceTo(Duration.ofSeconds(350));
        cloud.release("od-2"); // still launching: 50 s billed, never usable
        clock.advanceTo(Duration.ofSeconds(1000));
        cloud.release("od-1");
        assertEquals(new InstanceEvent.Terminated("od-2", Duration.ofSeconds(350)), got.get(got.size() - 2));
        assertEquals(new InstanceEvent.Terminated("od-1", Duration.ofSeconds(1000)), got.get(got.size() - 1));
        assertNull(cloud.leases().stream().filter(l -> l.id().equals("od-2")).findFirst().orElseThrow().usable());

        EvalCloud.Bill bill = cloud.bill(Duration.ofSeconds(1200));
        double od = (1200 - 5) + (1000 - 300) + (350 - 300);
        assertEquals(od, bill.onDemandInstanceSeconds(), 1e-9);
        double spot = spotSecondsByCounting(trace("trace_0506_real"), Duration.ofSeconds(1200));
        assertEquals(spot, bill.spotInstanceSeconds(), 1e-9);
        assertEquals(spot * 1.9 / 3600 + od * 3.9 / 3600, bill.usd(), 1e-12);

        // the engine may give back an idle spot instance: billing ends now; a release after the removal changes nothing
        clock.advanceTo(Duration.ofSeconds(1010));
        cloud.release("spot-11"); // granted at 960
        cloud.release("spot-0"); // removed by the trace at 240
        assertEquals(new InstanceEvent.Terminated("spot-0", Duration.ofSeconds(1010)), got.get(got.size() - 1));
        EvalCloud.Bill after = cloud.bill(Duration.ofSeconds(1200));
        assertEquals(spot - (1200 - 1010), after.spotInstanceSeconds(), 1e-9);

        cloud.close(); // everything still held ends at close
        assertEquals(cloud.bill(Duration.ofSeconds(1010)), withStop(cloud.bill(Duration.ofSeconds(5000)),
                Duration.ofSeconds(1010)));
        cloud.requestOnDemand(3);
        cloud.release("od-0");
        assertEquals(traceEvents + 7, got.size(), "closed: nothing delivered");
    }

    private static EvalCloud.Bill withStop(EvalCloud.Bill b, Duration stop) {
        return new EvalCloud.Bill(stop, b.spotInstanceSeconds(), b.onDemandInstanceSeconds(), b.usd());
    }

    @Test
    void aCellWithoutOnDemandMixingGrantsNoOnDemand() throws IOException {
        VirtualClock clock = new VirtualClock(Duration.ZERO);
        EvalCloud cloud = EvalCloud.of(scenario("trace_0304_real", false), clock);
        List<InstanceEvent> got = new ArrayList<>();
        cloud.start(got::add);
        cloud.requestOnDemand(3);
        assertEquals(cloud.traceEvents(), got);
        assertEquals(0, cloud.bill(Duration.ofSeconds(1320)).onDemandInstanceSeconds());

    }

    /**
     * "+O": the cell's OnDemandSchedule is the on-demand fleet, delivered like spot nodes (usable after the launch,
     * noticed one grace before a release, gone at it; a release while launching is billed and never reported), with
     * the grace the cloud was built with; live requests grant nothing; the bill is the schedule's.
     */
    @Test
    void aMixingCellReplaysItsOnDemandScheduleForEverySystem() throws IOException {
        VirtualClock clock = new VirtualClock(Duration.ZERO);
        Scenario sc = scenario("trace_0304_real", true);
        List<OnDemandSchedule.Lease> schedule = OnDemandSchedule.of(sc);
        assertTrue(schedule.size() >= 3, schedule.toString());
        for (Duration grace : List.of(GRACE, Duration.ZERO)) {
            EvalCloud cloud = EvalCloud.of(sc, clock, grace);
            List<InstanceEvent> got = new ArrayList<>();
            cloud.start(got::add);
            cloud.requestOnDemand(3);
            assertEquals(cloud.traceEvents(), got, "nothing granted live");
            for (OnDemandSchedule.Lease l : schedule) {
                List<InstanceEvent> mine = got.stream().filter(e -> e.instanceId().equals(l.id())).toList();
                if (!l.everUsable()) {
                    assertEquals(List.of(), mine, l.id());
                    continue;
                }
                InstanceEvent.Acquired a = (InstanceEvent.Acquired) mine.get(0);
                assertEquals(EvalCloud.ofSeconds(l.usable()), a.at(), l.id());
                assertEquals(InstanceType.Market.ON_DEMAND, a.instance().type().market());
                assertEquals(3.9, a.instance().type().pricePerHour());
                if (Double.isInfinite(l.ended())) {
                    assertEquals(1, mine.size(), l.id() + " kept: " + mine);
                } else {
                    Duration end = EvalCloud.ofSeconds(l.ended());
                    InstanceEvent.PreemptionNotice n = (InstanceEvent.PreemptionNotice) mine.get(1);
                    assertEquals(end, n.deadline(), l.id());
                    assertEquals(end.minus(grace), n.at(), l.id());
                    assertEquals(new InstanceEvent.Terminated(l.id(), end), mine.get(2));
                }
            }
            for (long s = 0; s <= 1600; s += 53) {
                assertEquals(OnDemandSchedule.billedSeconds(schedule, s),
                        cloud.bill(Duration.ofSeconds(s)).onDemandInstanceSeconds(), 1e-6, "stop " + s);
            }
        }
    }

    /** Oracle: the trace's own cluster-size steps (AvailabilityTrace.instanceCountSteps) integrated up to stop. */
    private static double spotSecondsByCounting(AvailabilityTrace trace, Duration stop) {
        NavigableMap<Long, Integer> steps = trace.instanceCountSteps();
        double total = 0;
        long stopMs = stop.toMillis();
        for (Map.Entry<Long, Integer> e : steps.entrySet()) {
            if (e.getKey() >= stopMs) {
                break;
            }
            Long next = steps.higherKey(e.getKey());
            long until = next == null || next > stopMs ? stopMs : next;
            total += e.getValue() * (until - e.getKey()) / 1000.0;
        }
        return total;
    }

    @ParameterizedTest
    @ValueSource(strings = {"trace_0304_real", "trace_0506_real"})
    void spotInstanceSecondsEqualTheSimulatorsAndTheTracesClusterSize(String base) throws IOException {
        Scenario sc = scenario(base, false);
        EvalCloud cloud = EvalCloud.of(sc, new VirtualClock(Duration.ZERO));
        for (SystemSpec sys : List.of(SystemSpec.spotServe(), SystemSpec.rerouting(), SystemSpec.reparallelization())) {
            RunResult r = Simulation.run(sc, sys);
            assertTrue(r.endSeconds() >= sc.endSeconds(), sys.name());
            EvalCloud.Bill bill = cloud.bill(EvalCloud.ofSeconds(r.endSeconds()));
            assertEquals(r.spotInstanceSeconds(), bill.spotInstanceSeconds(), 1e-6, sys.name() + " on " + base);
            assertEquals(0, r.onDemandInstanceSeconds(), sys.name());
            assertEquals(0, bill.onDemandInstanceSeconds());
            assertEquals(r.usd(), bill.usd(), 1e-9, sys.name() + " on " + base);
        }
        AvailabilityTrace trace = trace(base);
        for (long s = 0; s <= 1500; s += 37) {
            Duration t = Duration.ofSeconds(s);
            assertEquals(spotSecondsByCounting(trace, t), cloud.bill(t).spotInstanceSeconds(), 1e-9, "stop " + t);
            assertEquals(trace.instanceCountAt(t), cloud.sampleAt(t).spot(), "held at " + t);
        }
        for (EvalCloud.Sample smp : cloud.timeline(EvalCloud.ofSeconds(sc.endSeconds()))) {
            assertEquals(trace.instanceCountAt(smp.at()), smp.spot(), smp.toString());
            assertTrue(smp.usable() <= smp.spot(), smp.toString());
        }
    }

    @Test
    void badInputIsRejectedWithWhatWasWrong() throws IOException {
        List<TraceEvent> events = trace("trace_0304_real").events();
        VirtualClock clock = new VirtualClock(Duration.ZERO);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> EvalCloud.builder(events, clock).launchDelay(Duration.ofSeconds(-1)));
        assertTrue(e.getMessage().contains("launch delay") && e.getMessage().contains("-1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> EvalCloud.builder(events, clock).grace(Duration.ofMillis(-5)));
        assertTrue(e.getMessage().contains("grace"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> EvalCloud.builder(events, clock).spotType(EvalCloud.spotType(Hardware.G4DN_12XLARGE)
                        .on(InstanceType.Market.ON_DEMAND, 3.9)));
        assertTrue(e.getMessage().contains("ON_DEMAND") && e.getMessage().contains("expected SPOT"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> EvalCloud.builder(spotEvents(trace("trace_0304_real")), clock).traceEnd(Duration.ofSeconds(1000))
                        .build());
        assertTrue(e.getMessage().contains("PT20M") && e.getMessage().contains("PT16M40S"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> EvalCloud.builder(List.of(
                TraceEvent.add(Duration.ZERO, "node-0"), TraceEvent.remove(Duration.ofSeconds(60), "node-1")), clock).build());
        assertTrue(e.getMessage().contains("event 1") && e.getMessage().contains("node-1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> EvalCloud.builder(List.of(), clock));
        assertTrue(e.getMessage().contains("no spot events"), e.getMessage());

        EvalCloud cloud = EvalCloud.builder(events, clock).build();
        e = assertThrows(IllegalArgumentException.class, () -> cloud.requestOnDemand(-1));
        assertTrue(e.getMessage().contains("-1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> cloud.bill(Duration.ofSeconds(-2)));
        assertTrue(e.getMessage().contains("stop"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> cloud.instanceIdOf("node-42"));
        assertTrue(e.getMessage().contains("node-42"), e.getMessage());
        List<InstanceEvent> got = new ArrayList<>();
        cloud.start(got::add);
        assertThrows(IllegalStateException.class, () -> cloud.start(x -> { }));

        // an unknown id is confirmed with a Terminated dated now, exactly as TraceInstanceProvider does, and bills nothing
        clock.advanceTo(Duration.ofSeconds(42));
        EvalCloud.Bill before = cloud.bill(Duration.ofSeconds(1320));
        cloud.release("nobody");
        TraceInstanceProvider reference = new TraceInstanceProvider(trace("trace_0304_real"),
                EvalCloud.spotType(Hardware.G4DN_12XLARGE), GRACE, 1.0, clock, null);
        List<InstanceEvent> refGot = new ArrayList<>();
        reference.start(refGot::add);
        reference.release("nobody");
        assertEquals(refGot.get(refGot.size() - 1), got.get(got.size() - 1));
        assertEquals(new InstanceEvent.Terminated("nobody", Duration.ofSeconds(42)), got.get(got.size() - 1));
        assertEquals(before, cloud.bill(Duration.ofSeconds(1320)));
    }
}
