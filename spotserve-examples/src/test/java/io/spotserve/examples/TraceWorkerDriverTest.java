package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.spotserve.trace.AvailabilityTrace;
import io.spotserve.trace.TraceReader;
import io.spotserve.testing.SharedData;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The trace A_S as process actions: which JVM starts, gets its SIGTERM notice and its SIGKILL, and when. */
class TraceWorkerDriverTest {
    @Test
    void traceASBecomesLaunchesNoticesAndKillsOnTheEngineClock() throws Exception {
        AvailabilityTrace trace = TraceReader.read(SharedData.file("traces/spotserve/trace_seg/trace_0304_real.txt"));
        // 1 trace second = 10 ms on the engine clock; the 30 s grace is then 300 ms
        List<TraceWorkerDriver.Action> actions = TraceWorkerDriver.actions(trace, 0.01, Duration.ofMillis(300));
        assertEquals(List.of("node-0", "node-1", "node-2", "node-3", "node-4", "node-5", "node-6"),
                TraceWorkerDriver.initialNodes(trace));
        assertEquals(List.of(
                new TraceWorkerDriver.Action(Duration.ofMillis(2400), TraceWorkerDriver.Kind.LAUNCH, "node-7"),
                new TraceWorkerDriver.Action(Duration.ofMillis(3600), TraceWorkerDriver.Kind.LAUNCH, "node-8"),
                new TraceWorkerDriver.Action(Duration.ofMillis(3600), TraceWorkerDriver.Kind.LAUNCH, "node-9"),
                new TraceWorkerDriver.Action(Duration.ofMillis(5700), TraceWorkerDriver.Kind.NOTICE, "node-8"),
                new TraceWorkerDriver.Action(Duration.ofMillis(6000), TraceWorkerDriver.Kind.KILL, "node-8"),
                new TraceWorkerDriver.Action(Duration.ofMillis(9000), TraceWorkerDriver.Kind.LAUNCH, "node-10"),
                new TraceWorkerDriver.Action(Duration.ofMillis(11700), TraceWorkerDriver.Kind.NOTICE, "node-3"),
                new TraceWorkerDriver.Action(Duration.ofMillis(11700), TraceWorkerDriver.Kind.NOTICE, "node-10"),
                new TraceWorkerDriver.Action(Duration.ofMillis(12000), TraceWorkerDriver.Kind.KILL, "node-3"),
                new TraceWorkerDriver.Action(Duration.ofMillis(12000), TraceWorkerDriver.Kind.KILL, "node-10")),
                actions);
    }

    @Test
    void aNodeRemovedSoonerThanTheGraceIsNoticedWhenItStarts() throws Exception {
        AvailabilityTrace trace = TraceReader.parseSegments(new java.io.StringReader(
                "[0, \"add\", {\"nodes\": [\"a\"]}]\n[10000, \"add\", {\"nodes\": [\"b\"]}]\n"
                + "[20000, \"remove\", {\"nodes\": [\"b\"]}]\n[30000, \"DONE\", {\"nodes\": []}]\n"), "short");
        assertEquals(List.of(
                new TraceWorkerDriver.Action(Duration.ofSeconds(10), TraceWorkerDriver.Kind.LAUNCH, "b"),
                new TraceWorkerDriver.Action(Duration.ofSeconds(10), TraceWorkerDriver.Kind.NOTICE, "b"),
                new TraceWorkerDriver.Action(Duration.ofSeconds(20), TraceWorkerDriver.Kind.KILL, "b")),
                TraceWorkerDriver.actions(trace, 1.0, Duration.ofSeconds(30)));
    }
}
