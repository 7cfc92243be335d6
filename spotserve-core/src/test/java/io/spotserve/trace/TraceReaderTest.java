package io.spotserve.trace;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Parses every real trace in shared/traces (SpotServe's replay segments and event log, Parcae's p3 log) and
 * checks facts read off the files by hand; then feeds malformed traces written to a temp dir.
 */
class TraceReaderTest {

    private static Path seg(String name) {
        return SharedData.file("traces/spotserve/trace_seg/" + name + ".txt");
    }

    private static Duration s(long seconds) {
        return Duration.ofSeconds(seconds);
    }

    private static Map<Long, Integer> steps(long... msAndCount) {
        Map<Long, Integer> m = new TreeMap<>();
        for (int i = 0; i < msAndCount.length; i += 2) {
            m.put(msAndCount[i], (int) msAndCount[i + 1]);
        }
        return m;
    }

    // ---------------------------------------------------------------- real files

    @Test
    void everyRealTraceFileParsesWithOneEventPerLine() throws IOException {
        List<Path> files;
        try (Stream<Path> segs = Files.list(SharedData.file("traces/spotserve/trace_seg"))) {
            files = new java.util.ArrayList<>(segs.filter(p -> p.toString().endsWith(".txt")).sorted().toList());
        }
        assertEquals(21, files.size(), "trace_seg files");
        files.add(SharedData.file("traces/spotserve/trace_full/g4dn.csv"));
        files.add(SharedData.file("traces/parcae/p3trace.csv"));
        for (Path f : files) {
            long lines = Files.readAllLines(f).stream().filter(l -> !l.isBlank()).count();
            AvailabilityTrace auto = TraceReader.read(f);
            AvailabilityTrace explicit = f.toString().endsWith(".csv")
                    ? TraceReader.readEventLog(f) : TraceReader.readSegments(f);
            assertEquals(lines, auto.events().size(), f.toString());
            assertEquals(auto.events(), explicit.events(), f.toString());
            assertEquals(f.toString().endsWith(".txt"), auto.hasEndMarker(), f + " end marker");
        }
    }

    @Test
    void traceAS_0304_real() throws IOException {
        AvailabilityTrace t = TraceReader.read(seg("trace_0304_real"));
        // 7 at 0 s, +1 at 240 s, +2 at 360 s, -1 at 600 s, +1 at 900 s, -2 at 1200 s, DONE at 1320 s
        assertEquals(steps(0, 7, 240_000, 8, 360_000, 10, 600_000, 9, 900_000, 10, 1_200_000, 8),
                t.instanceCountSteps());
        assertEquals(s(1320), t.endTime());
        assertTrue(t.hasEndMarker());
        assertEquals(7, t.instanceCountAt(Duration.ZERO));
        assertEquals(7, t.instanceCountAt(Duration.ofMillis(239_999)));
        assertEquals(8, t.instanceCountAt(s(240)));
        assertEquals(8, t.instanceCountAt(s(5000)));
        assertEquals(7, t.minInstanceCount());
        assertEquals(10, t.maxInstanceCount());
        assertEquals(8.86, t.meanInstanceCount(), 0.005); // README table: 7-10 (8.86)
        assertEquals(11, t.distinctNodes().size());
        assertEquals(Set.of("node-8"), Set.copyOf(t.events(TraceEvent.Kind.REMOVE).get(0).nodes()));
        assertEquals(s(360), t.addedAt("node-8").orElseThrow());
        assertEquals(s(600), t.removedAt("node-8").orElseThrow());
        assertEquals(s(1200), t.removedAt("node-3").orElseThrow());
        assertTrue(t.removedAt("node-0").isEmpty());
        assertTrue(t.addedAt("node-99").isEmpty());
        assertEquals(Set.of("node-0", "node-1", "node-2", "node-4", "node-5", "node-6", "node-7", "node-9"),
                t.nodesAt(s(1200)));
        assertEquals(8, t.nodesAt(s(1200)).size());
        assertEquals(10, t.nodesAt(s(1199)).size());
        assertTrue(t.requiredThroughputAt(s(1000)).isEmpty());
    }

    @Test
    void traceBS_0506_real() throws IOException {
        AvailabilityTrace t = TraceReader.read(seg("trace_0506_real"));
        // 10 at 0; -2 at 120 s; -1 at 240 s; +1 at 720 s; +1 at 960 s; end 1020 s
        assertEquals(steps(0, 10, 120_000, 8, 240_000, 7, 720_000, 8, 960_000, 9), t.instanceCountSteps());
        assertEquals(s(1020), t.endTime());
        assertEquals(7.82, t.meanInstanceCount(), 0.005); // README table: 7-10 (7.82)
        assertEquals(List.of("node-4", "node-8"), t.events().get(1).nodes());
        assertEquals(TraceEvent.Kind.END, t.events().get(t.events().size() - 1).kind());
    }

    @Test
    void workloadTraceCarriesRequiredThroughput() throws IOException {
        AvailabilityTrace t = TraceReader.read(seg("trace_0304_workload"));
        assertTrue(t.requiredThroughputAt(Duration.ofMillis(299_999)).isEmpty());
        assertEquals(OptionalDouble.of(0.8), t.requiredThroughputAt(s(300)));
        assertEquals(OptionalDouble.of(0.8), t.requiredThroughputAt(Duration.ofMillis(599_999)));
        assertEquals(OptionalDouble.of(0.6), t.requiredThroughputAt(s(600)));
        TraceEvent rate = t.events(TraceEvent.Kind.RATE).get(0);
        assertEquals(s(300), rate.time());
        assertTrue(rate.nodes().isEmpty());
        TraceEvent remove = t.events(TraceEvent.Kind.REMOVE).get(0);
        assertEquals(List.of("node-8", "node-9"), remove.nodes());
        assertEquals(OptionalDouble.of(0.6), remove.requiredThroughput());
        // the rate change alone does not change the cluster size
        assertEquals(10, t.instanceCountAt(s(300)));
        assertFalse(t.instanceCountSteps().containsKey(300_000L));
    }

    /** The README's table for the segment files, checked by us against the files. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({
        // file, events, initial, min, max, nodes removed, nodes added after t=0, end ms
        "trace_0203, 8, 9, 6, 10, 3, 4, 540000",
        "trace_0203_ondemand, 6, 9, 6, 9, 3, 3, 360000",
        "trace_0203_real, 8, 9, 6, 10, 3, 4, 720000",
        "trace_0203_tight, 8, 9, 6, 10, 3, 4, 450000",
        "trace_0304, 7, 7, 7, 10, 3, 4, 1320000",
        "trace_0304_ondemand, 7, 7, 7, 10, 3, 6, 1380000",
        "trace_0304_real, 7, 7, 7, 10, 3, 4, 1320000",
        "trace_0304_tight, 7, 7, 7, 10, 3, 4, 390000",
        "trace_0304_workload, 6, 7, 7, 12, 2, 5, 1140000",
        "trace_0304_workload_pt, 7, 7, 7, 14, 4, 7, 1140000",
        "trace_0506, 6, 10, 7, 10, 3, 2, 1440000",
        "trace_0506_node3, 2, 4, 4, 4, 0, 0, 1020000",
        "trace_0506_node4, 2, 4, 4, 4, 0, 0, 1020000",
        "trace_0506_node6, 2, 6, 6, 6, 0, 0, 1020000",
        "trace_0506_node8, 2, 8, 8, 8, 0, 0, 1020000",
        "trace_0506_ondemand, 6, 10, 8, 10, 3, 3, 720000",
        "trace_0506_real, 6, 10, 7, 10, 3, 2, 1020000",
        "trace_0506_tight, 6, 10, 7, 10, 3, 2, 330000",
        "trace_0506_workload, 9, 10, 8, 12, 5, 5, 1140000",
        "trace_0506_workload_pt, 9, 10, 8, 14, 7, 7, 1140000",
        "trace_test, 2, 10, 10, 10, 0, 0, 200000",
    })
    void segmentFilesMatchTheirKnownShape(String name, int events, int initial, int min, int max, int removed,
                                          int addedLater, long endMs) throws IOException {
        AvailabilityTrace t = TraceReader.readSegments(seg(name));
        assertEquals(events, t.events().size());
        assertEquals(initial, t.instanceCountAt(Duration.ZERO));
        assertEquals(min, t.minInstanceCount());
        assertEquals(max, t.maxInstanceCount());
        assertEquals(removed, t.events(TraceEvent.Kind.REMOVE).stream().mapToInt(e -> e.nodes().size()).sum());
        assertEquals(initial + addedLater, t.distinctNodes().size());
        assertEquals(Duration.ofMillis(endMs), t.endTime());
        assertEquals(Duration.ZERO, t.startTime());
    }

    @Test
    void g4dnEventLog() throws IOException {
        AvailabilityTrace t = TraceReader.readEventLog(SharedData.file("traces/spotserve/trace_full/g4dn.csv"));
        assertEquals(153, t.events().size());
        assertEquals(79, t.events(TraceEvent.Kind.ADD).size());
        assertEquals(74, t.events(TraceEvent.Kind.REMOVE).size());
        assertEquals(48, t.events(TraceEvent.Kind.REMOVE).stream().map(TraceEvent::time).distinct().count());
        assertEquals(79, t.distinctNodes().size());
        assertEquals(Duration.ofMinutes(8), t.startTime());
        assertEquals(Duration.ofMinutes(646), t.endTime());
        assertFalse(t.hasEndMarker());
        assertEquals(0, t.instanceCountAt(Duration.ofMinutes(7)));
        assertEquals(1, t.instanceCountAt(Duration.ofMinutes(8)));
        assertEquals(1, t.minInstanceCount());
        assertEquals(24, t.maxInstanceCount());
        assertEquals(12.8, t.meanInstanceCount(), 0.05); // README: 1-24 (12.8)
        // node1 at 8 min, node2 at 9 min, node3..node21 at 10 min, two more at 12 min, node24 at 15 min,
        // and the first preemptions (node13, node3, node17, node12, node24) at 24 min
        assertEquals(2, t.instanceCountAt(Duration.ofMinutes(9)));
        assertEquals(21, t.instanceCountAt(Duration.ofMinutes(10)));
        assertEquals(24, t.instanceCountAt(Duration.ofMinutes(15)));
        assertEquals(19, t.instanceCountAt(Duration.ofMinutes(24)));
        assertEquals(Duration.ofMinutes(24), t.removedAt("node13").orElseThrow());
        assertEquals(79 - 74, t.nodesAt(t.endTime()).size());
    }

    @Test
    void parcaeP3EventLog() throws IOException {
        AvailabilityTrace t = TraceReader.read(SharedData.file("traces/parcae/p3trace.csv"));
        assertEquals(344, t.events().size());
        assertEquals(177, t.events(TraceEvent.Kind.ADD).size());
        assertEquals(167, t.events(TraceEvent.Kind.REMOVE).size());
        assertEquals(79, t.events(TraceEvent.Kind.REMOVE).stream().map(TraceEvent::time).distinct().count());
        assertEquals(18, t.instanceCountAt(Duration.ZERO));
        assertEquals(32, t.instanceCountAt(Duration.ofMinutes(25)));
        assertTrue(t.instanceCountAt(Duration.ofMillis(1_499_999)) < 32, "32 is first reached at 25 min");
        assertEquals(10, t.minInstanceCount());
        assertEquals(32, t.maxInstanceCount());
        assertEquals(24.0, t.meanInstanceCount(), 0.05); // README: 10-32 (24.0)
        assertEquals(Duration.ofMinutes(682), t.endTime());
    }

    @Test
    void crlfAndBlankLinesReadTheSame(@TempDir Path dir) throws IOException {
        Path orig = seg("trace_0304_real");
        Path crlf = dir.resolve("crlf.txt");
        String text = Files.readString(orig).replace("\n", "\r\n\r\n");
        Files.writeString(crlf, text);
        assertEquals(TraceReader.read(orig).events(), TraceReader.read(crlf).events());
    }

    // ---------------------------------------------------------------- malformed input

    /**
     * Regression (issue 12, defect 6): a time near Long.MAX_VALUE ms was accepted, and replaying it overflowed the
     * nanosecond conversion in the engine's build(). It is rejected here with file:line, in both formats.
     */
    @Test
    void timesBeyondTheClockRangeAreRejectedWithFileAndLine(@TempDir Path dir) {
        bad(dir, "far.csv", "0,add,node1\n" + Long.MAX_VALUE + ",remove,node1\n", 2, "longest time the engine clock");
        bad(dir, "far-seg.txt", "[0, \"add\", {\"nodes\": [\"a\"]}]\n[9223372036854776, \"remove\", {\"nodes\": [\"a\"]}]\n",
                2, "expected a time <= 9223372036854");
    }

    private static TraceFormatException bad(Path dir, String name, String content, int line, String fragment) {
        Path f = dir.resolve(name);
        try {
            Files.writeString(f, content, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        TraceFormatException e = assertThrows(TraceFormatException.class, () -> TraceReader.read(f),
                "no exception for " + name);
        assertEquals(line, e.line(), e.getMessage());
        assertEquals(f.toString(), e.source());
        assertTrue(e.getMessage().startsWith(f + ":" + line + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(fragment), "'" + e.getMessage() + "' lacks '" + fragment + "'");
        return e;
    }

    @Test
    void malformedEventLogs(@TempDir Path dir) {
        bad(dir, "fields.csv", "0,add,node1\n10,add\n", 2, "has 2 fields; expected 3");
        bad(dir, "time.csv", "0,add,node1\nabc,add,node2\n", 2, "time 'abc' is not a number");
        bad(dir, "frac.csv", "1.5,add,node1\n", 1, "not a whole number");
        bad(dir, "neg.csv", "-5,add,node1\n", 1, "expected a time >= 0");
        bad(dir, "op.csv", "0,add,node1\n10,preempt,node1\n", 2, "unknown op 'preempt'; expected add or remove");
        bad(dir, "back.csv", "5,add,node1\n4,add,node2\n", 2, "time 4 ms is before the previous event's 5 ms");
        bad(dir, "unknown.csv", "0,add,node1\n1,remove,node2\n", 2, "remove of unknown node 'node2'");
        bad(dir, "twice.csv", "0,add,node1\n1,remove,node1\n2,remove,node1\n", 3,
                "node 'node1', which was already removed at 1 ms");
        bad(dir, "present.csv", "0,add,node1\n1,add,node1\n", 2, "already present since 0 ms");
        bad(dir, "reuse.csv", "0,add,node1\n1,remove,node1\n2,add,node1\n", 3, "names are never reused");
        bad(dir, "noname.csv", "0,add,node1\n3,add,\n", 2, "node name is empty");
        bad(dir, "header.csv", "time_ms,op,node\n0,add,node1\n", 1, "time 'time_ms' is not a number");
        bad(dir, "empty.csv", "", 1, "no events");
        bad(dir, "blank.csv", "\n\n", 2, "no events");
    }

    @Test
    void malformedSegments(@TempDir Path dir) {
        String ok = "[0, \"add\", {\"nodes\": [\"a\", \"b\"]}]\n";
        bad(dir, "json.txt", ok + "[60000, \"add\", {\"nodes\": [\"c\"]}\n", 2, "malformed JSON");
        bad(dir, "garbage.txt", ok + "[60000, add, {}]\n", 2, "malformed JSON");
        bad(dir, "op.txt", ok + "[60000, \"boot\", {\"nodes\": []}]\n", 2,
                "unknown op 'boot'; expected add, remove, other or DONE");
        bad(dir, "nonodes.txt", ok + "[60000, \"remove\", {}]\n", 2, "'remove' without field \"nodes\"");
        bad(dir, "notpt.txt", ok + "[60000, \"other\", {\"nodes\": []}]\n", 2, "without field \"required_tpt\"");
        bad(dir, "short.txt", ok + "[60000, \"add\"]\n", 2, "too few elements");
        bad(dir, "long.txt", ok + "[60000, \"add\", {\"nodes\": [\"c\"]}, 5]\n", 2, "more than 3 elements");
        bad(dir, "trail.txt", ok + "[60000, \"add\", {\"nodes\": [\"c\"]}] x\n", 2, "text after the closing ']'");
        bad(dir, "strtime.txt", "[\"0\", \"add\", {\"nodes\": [\"a\"]}]\n", 1, "expected a time in milliseconds");
        bad(dir, "nodesstr.txt", "[0, \"add\", {\"nodes\": \"a\"}]\n", 1, "\"nodes\" to be an array");
        bad(dir, "dup.txt", "[0, \"add\", {\"nodes\": [\"a\", \"a\"]}]\n", 1, "node 'a' is listed twice");
        bad(dir, "donenodes.txt", ok + "[60000, \"DONE\", {\"nodes\": [\"a\"]}]\n", 2, "END event lists nodes [a]");
        bad(dir, "back.txt", "[60000, \"add\", {\"nodes\": [\"a\"]}]\n[0, \"add\", {\"nodes\": [\"b\"]}]\n", 2,
                "time 0 ms is before the previous event's 60000 ms");
        bad(dir, "afterdone.txt", ok + "[60000, \"DONE\", {\"nodes\": []}]\n[60000, \"add\", {\"nodes\": [\"c\"]}]\n",
                3, "after the end marker at 60000 ms");
        bad(dir, "unknown.txt", ok + "[60000, \"remove\", {\"nodes\": [\"z\"]}]\n", 2, "remove of unknown node 'z'");
        bad(dir, "present.txt", ok + "[60000, \"add\", {\"nodes\": [\"c\", \"b\"]}]\n", 2,
                "add of node 'b', which is already present since 0 ms");
        bad(dir, "emptyadd.txt", ok + "[60000, \"add\", {\"nodes\": []}]\n", 2, "ADD event has no nodes");
        bad(dir, "tpt.txt", ok + "[60000, \"other\", {\"nodes\": [], \"required_tpt\": -1}]\n", 2,
                "required throughput is -1.0");
    }

    @Test
    void ofChecksTheSameRules() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AvailabilityTrace.of("mem",
                List.of(TraceEvent.add(Duration.ZERO, "a"), TraceEvent.remove(s(1), "b"))));
        assertTrue(e.getMessage().startsWith("mem: event 1: remove of unknown node 'b'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> AvailabilityTrace.of("mem", List.of()));
        AvailabilityTrace t = AvailabilityTrace.of("mem", List.of(TraceEvent.add(Duration.ZERO, "a", "b"),
                TraceEvent.rate(s(1), 0.5), TraceEvent.remove(s(2), "a"), TraceEvent.end(s(3))));
        assertEquals(steps(0, 2, 2000, 1), t.instanceCountSteps());
        assertEquals((2 * 2 + 1 * 1) / 3.0, t.meanInstanceCount(), 1e-12);
        assertEquals(Set.of("b"), t.nodesAt(s(3)));
        IllegalArgumentException neg = assertThrows(IllegalArgumentException.class,
                () -> TraceEvent.add(Duration.ofMillis(-1), "a"));
        assertTrue(neg.getMessage().contains("time is -1 ms; expected >= 0"), neg.getMessage());
    }
}
