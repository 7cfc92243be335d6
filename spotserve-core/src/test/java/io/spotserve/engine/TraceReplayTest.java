package io.spotserve.engine;

import io.spotserve.clock.VirtualClock;
import static io.spotserve.engine.EngineFixtures.CHECKPOINT;
import static io.spotserve.engine.EngineFixtures.SPOT;
import static io.spotserve.engine.EngineFixtures.TOKENIZER;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.exec.Executor;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.TraceInstanceProvider;
import io.spotserve.trace.AvailabilityTrace;
import io.spotserve.trace.TraceFormatException;
import io.spotserve.trace.TraceReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The paper's real traces drive the engine through {@link TraceInstanceProvider}, compressed in time. */
class TraceReplayTest {

    @Test
    void segmentTraceBecomesDatedEventsWithNoticesOneGraceAhead() throws IOException {
        Path file = SharedData.file("traces/spotserve/trace_seg/trace_0203.txt");
        AvailabilityTrace trace = TraceReader.read(file);
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1));
        TraceInstanceProvider p = new TraceInstanceProvider(trace, SPOT, Duration.ofMillis(30), 0.001, clock, null);
        List<InstanceEvent> events = p.events();
        int adds = 0;
        int removes = 0;
        for (var e : trace.events()) {
            switch (e.kind()) {
                case ADD -> adds += e.nodes().size();
                case REMOVE -> removes += e.nodes().size();
                default -> { }
            }
        }
        assertEquals(adds + 2 * removes, events.size());
        // trace line 2: [60000, "remove", {"nodes": ["node-4"]}] -> notice at 60 ms - 30 ms, terminated at 60 ms
        int i = events.indexOf(new InstanceEvent.Terminated("node-4", Duration.ofMillis(60)));
        assertTrue(i > 0, events.toString());
        assertEquals(new InstanceEvent.PreemptionNotice("node-4", Duration.ofMillis(30), Duration.ofMillis(60)),
                events.get(i - 1));
    }

    /** With an acquisition-notice lead, every node added after the start is announced that lead ahead, at 0 at the earliest. */
    @Test
    void additionsAfterTheStartAreAnnouncedOneLeadAhead() throws IOException {
        AvailabilityTrace trace = TraceReader.read(SharedData.file("traces/spotserve/trace_seg/trace_0203.txt"));
        VirtualClock clock = new VirtualClock(Duration.ofMillis(1));
        List<InstanceEvent> plain = new TraceInstanceProvider(trace, SPOT, Duration.ofMillis(30), 0.001, clock, null)
                .events();
        TraceInstanceProvider announcing = new TraceInstanceProvider(trace, SPOT, Duration.ofMillis(30), 0.001, clock,
                null).announceAdditions(Duration.ofMillis(30));
        List<InstanceEvent> events = announcing.events();
        int later = 0;
        for (InstanceEvent e : plain) {
            if (e instanceof InstanceEvent.Acquired a && !a.at().isZero()) {
                later++;
                int i = events.indexOf(a);
                Duration lead = a.at().compareTo(Duration.ofMillis(30)) > 0 ? a.at().minusMillis(30) : Duration.ZERO;
                assertEquals(new InstanceEvent.Launching(a.instanceId(), lead, a.at()), events.get(i - 1), events.toString());
            }
        }
        assertTrue(later > 0, "the segment adds nodes after its start: " + plain);
        assertEquals(plain.size() + later, events.size());
        assertEquals(plain, events.stream().filter(e -> !(e instanceof InstanceEvent.Launching)).toList());
        assertThrows(IllegalArgumentException.class, () -> announcing.announceAdditions(Duration.ofMillis(-1)));
    }

    @Test
    void malformedLineNamesFileAndLine(@TempDir Path dir) throws IOException {
        Path bad = dir.resolve("bad.csv");
        Files.writeString(bad, "0,add,node1\n60000,drop,node1\n");
        TraceFormatException e = assertThrows(TraceFormatException.class,
                () -> TraceInstanceProvider.read(bad, SPOT, Duration.ZERO, 1.0, new VirtualClock(Duration.ZERO), null));
        assertTrue(e.getMessage().contains("bad.csv:2"), e.getMessage());
    }

    @Test
    void realEventLogTraceReplaysWithoutChangingAnyOutput() throws IOException {
        // g4dn.csv spans ~10.7 hours; at 1e-5 it lasts ~390 ms of engine time, i.e. a few dozen decode steps
        Path file = SharedData.file("traces/spotserve/trace_full/g4dn.csv");
        VirtualClock clock = new VirtualClock(Duration.ofMillis(2));
        TraceInstanceProvider provider = TraceInstanceProvider.read(file, SPOT, Duration.ofMillis(3), 1e-5, clock, null);
        List<GenerationRequest> requests = EngineFixtures.requests(11, 24, 40, false);
        List<CompletableFuture<Completion>> futures = new ArrayList<>();
        try (Executor executor = EngineFixtures.executor();
             ServingEngine engine = ServingEngine.builder().model(CHECKPOINT, TOKENIZER).instances(provider)
                     .executor(executor).clock(clock).parallelism(1, 2).maxBatch(2).build()) {
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r));
            }
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(EngineFixtures.solo(requests.get(i)), futures.get(i).join().tokens(), "request " + i);
            }
            EngineMetrics m = engine.metrics();
            assertEquals(requests.size(), m.completed());
            assertTrue(m.reconfigurations().size() > 3, m.reconfigurations().toString());
            assertTrue(m.spotCost() > 0);
            assertTrue(m.restarts() > 0, "the trace should interrupt running requests: " + m);
        }
    }
}
