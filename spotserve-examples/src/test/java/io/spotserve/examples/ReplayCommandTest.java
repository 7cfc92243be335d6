package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import io.spotserve.testing.SharedData;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code replay} serves the bundled model through the paper's traces B_S and A_S without losing a request. */
class ReplayCommandTest {

    private record Result(int code, String out, String err) {
    }

    private static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /**
     * The last stdout line's JSON, after checking that all {@code n} requests (-1: all submitted) completed with the
     * solo run's tokens and none failed or got lost.
     */
    private static JsonObject allCompleted(Result r, int n) {
        assertEquals(0, r.code, r.err);
        String[] lines = r.out.strip().split("\n");
        JsonObject json = JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
        if (n < 0) {
            n = json.get("submitted").getAsInt();
            assertTrue(n > 0, r.out);
        }
        assertEquals(n, json.get("submitted").getAsInt(), r.out);
        assertEquals(0, json.get("wrong_outputs").getAsInt(), r.out);
        assertEquals(n, json.get("completed").getAsInt(), r.out);
        assertEquals(0, json.get("failed").getAsInt(), r.out);
        assertEquals(0, json.get("lost").getAsInt(), r.out);
        return json;
    }

    /** One line of a segment trace: {@code [ms, "kind", {"nodes": [...]}]}. */
    private static String event(long ms, String kind, String... nodes) {
        StringBuilder b = new StringBuilder("[" + ms + ", \"" + kind + "\", {\"nodes\": [");
        for (int i = 0; i < nodes.length; i++) {
            b.append(i == 0 ? "\"" : ", \"").append(nodes[i]).append('"');
        }
        return b.append("]}]").toString();
    }

    /** A trace file of {@code events} in {@code dir}. */
    private static Path trace(Path dir, String... events) throws IOException {
        Path trace = dir.resolve("trace.txt");
        Files.writeString(trace, String.join("\n", events) + "\n");
        return trace;
    }

    @Test
    void plannedReplayCompletesEveryRequestAndPricesSpotAndOnDemand() {
        Result r = run("replay", "--speed", "2000", "--requests", "8", "--rate", "1");
        JsonObject json = allCompleted(r, 8);
        assertTrue(json.get("reconfigurations").getAsInt() >= 1, r.out);
        double cost = json.get("cost_usd").getAsDouble();
        double hours = json.get("instance_hours").getAsDouble();
        // Algorithm 1 may mix in on-demand instances: every instance-hour costs between the spot and on-demand price
        assertTrue(hours > 0 && cost >= hours * 1.9 - 1e-4 && cost <= hours * 3.9 + 1e-4, r.out);
        assertEquals(hours * 3.9, json.get("ondemand_only_cost_usd").getAsDouble(), 1e-4, r.out);
    }

    @Test
    void fixedReplayCompletesEveryRequestAndReportsCost() {
        Result r = run("replay", "--fixed", "--speed", "2000", "--requests", "8", "--rate", "1");
        JsonObject json = allCompleted(r, 8);
        assertEquals("trace_0506_real.txt", json.get("trace").getAsString(), r.out);
        // trace B_S: 10 nodes at 0 s, removals at 120 s (2) and 240 s (1), adds at 720 s and 960 s
        assertTrue(json.get("reconfigurations").getAsInt() > 1, r.out);
        assertTrue(json.get("p99_ms").getAsLong() >= json.get("p50_ms").getAsLong(), r.out);
        double cost = json.get("cost_usd").getAsDouble();
        double onDemandOnly = json.get("ondemand_only_cost_usd").getAsDouble();
        double hours = json.get("instance_hours").getAsDouble();
        // all instances are spot: cost = hours × 1.9, baseline = hours × 3.9
        assertEquals(hours * 1.9, cost, 1e-4, r.out);
        assertEquals(hours * 3.9, onDemandOnly, 1e-4, r.out);
        // B_S holds 7..10 nodes; the snapshot is taken at or after the trace's end (1020 s)
        double traceSeconds = json.get("trace_s").getAsDouble();
        assertTrue(traceSeconds >= 1020, r.out);
        assertTrue(hours > 7 * 1020 / 3600.0 && hours <= 10 * traceSeconds / 3600.0, r.out);
    }

    @Test
    void theOtherBundledTraceIsPlayedByName() {
        Result r = run("replay", "--trace", "A_S", "--fixed", "--speed", "2000", "--requests", "8", "--rate", "1");
        JsonObject json = allCompleted(r, 8);
        assertEquals("trace_0304_real.txt", json.get("trace").getAsString(), r.out);
        // A_S holds 7..10 nodes over 1320 s
        double traceSeconds = json.get("trace_s").getAsDouble();
        double hours = json.get("instance_hours").getAsDouble();
        assertTrue(traceSeconds >= 1320, r.out);
        assertTrue(hours > 7 * 1320 / 3600.0 && hours <= 10 * traceSeconds / 3600.0, r.out);
    }

    /**
     * Issue 13: with its defaults a replay really interrupts requests. A short trace played with the default load,
     * request length and grace (24 closed-loop clients, 128-token requests, a 0.3 trace-second notice at --speed 22):
     * every instance that serves when the notice comes is removed, so whatever configuration Algorithm 1 picked, its
     * pipelines hold running requests then; they are interrupted, resume (with their KV cache or recomputed from their
     * committed tokens) and complete with exactly the solo run's tokens. With the grace compressed like the trace
     * (30 trace s = 1.4 s of wall time, many 128-token requests' worth) the arranger lets the doomed batches finish
     * or moves them with their caches: {@code --grace 30} on this trace recomputed nothing in four runs
     * ({@code interrupted_by_preemption} 0 under load, 2 and 8 moved with their caches on a quieter machine), the
     * default rerouted 3 to 4 requests at the notice in each run. A change that moves requests off a noticed instance
     * counts as forced by the notice, also when instances joining set it off (a fresh-clone run: the arranger let the
     * doomed batches finish, on-demand instances joined and took 4 of them with their caches, and the count said 0).
     */
    @Test
    @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void theDefaultsInterruptRequestsAtARemovalAndLoseNone(@TempDir Path dir) throws IOException {
        // two removals of every serving instance: each alone can pass without an interruption when the arranger
        // lets the doomed batches finish inside the grace (their last tokens fit) and nothing moves them before
        Path trace = trace(dir, event(0, "add", "node-0", "node-1", "node-2", "node-3"),
                event(40_000, "remove", "node-0", "node-1", "node-2", "node-3"), event(40_000, "add", "node-4", "node-5"),
                event(70_000, "remove", "node-4", "node-5"), event(70_000, "add", "node-6", "node-7"),
                event(100_000, "DONE"));
        Result r = run("replay", "--trace", trace.toString());
        JsonObject json = allCompleted(r, -1);
        assertEquals(24, json.get("clients").getAsInt(), r.out);
        assertEquals(128, json.get("tokens").getAsInt(), r.out);
        assertEquals(0.3, json.get("grace_s").getAsDouble(), 1e-9, r.out);
        // the removal's notice interrupted requests (rerouted to recompute, or moved with their caches)
        assertTrue(json.get("interrupted_by_preemption").getAsInt() > 0, "no request was interrupted at the removal: "
                + r.out);
        assertTrue(json.get("interrupted_requests").getAsInt() + json.get("resumed_with_cache").getAsInt()
                >= json.get("interrupted_by_preemption").getAsInt(), r.out);
    }

    @ParameterizedTest
    @ValueSource(strings = {"A_S", "B_S"})
    void bundledTracesAreTheSharedTracesByteForByte(String name) throws IOException {
        String file = ReplayCommand.BUNDLED_TRACES.get(name);
        Path shared = SharedData.file("traces/spotserve/trace_seg/" + file);
        try (InputStream in = BundledModel.open("/traces/" + file)) {
            assertTrue(Arrays.equals(Files.readAllBytes(shared), in.readAllBytes()), name);
        }
    }

    /**
     * {@code --workers 3}: three worker JVMs serve; one is SIGKILLed mid-replay with requests running on it. They
     * recompute on the other two: interrupted, never failed or lost.
     */
    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void replayOnWorkerProcessesSurvivesAKilledWorkerWithoutLosingARequest() {
        Result r = run("replay", "--workers", "3", "--requests", "24", "--rate", "4", "--speed", "20");
        JsonObject json = allCompleted(r, 24);
        assertEquals("workers:3", json.get("trace").getAsString(), r.out);
        assertEquals(3, json.get("workers").getAsInt(), r.out);
        assertTrue(json.has("killed_worker") && json.get("killed_worker").getAsString().startsWith("worker-"), r.out);
        assertTrue(json.get("interrupted_requests").getAsInt() > 0, r.out);
        assertEquals(json.get("interrupted_requests").getAsInt(), json.get("restarts").getAsInt(), r.out);
        // the bytes between processes are reported (P = 1: no activation crosses a process boundary)
        assertTrue(json.get("network_slice_bytes").getAsLong() >= 0, r.out);
        assertEquals(0, json.get("network_activation_bytes").getAsLong(), r.out);
        assertTrue(json.get("reconfigurations").getAsInt() >= 2, "the start, then the re-plan without the killed worker: "
                + r.out);
    }

    /**
     * {@code --workers 2 --tensor-groups-span-workers}: one P1M2 pipeline whose tensor group spans the two worker JVMs
     * (partial sums worker to worker); one worker is SIGKILLed mid-replay, the requests recompute on the survivor (a
     * fallback P1M1), none is lost and every output is the solo run's.
     */
    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void replayWithATensorGroupSpanningTwoWorkerProcessesSurvivesAKill() {
        Result r = run("replay", "--workers", "2", "--tensor-groups-span-workers", "--requests", "12", "--rate", "4",
                "--speed", "20", "--tokens", "64");
        JsonObject json = allCompleted(r, 12);
        assertTrue(json.get("network_reduce_bytes").getAsLong() > 0, "the group's partials crossed: " + r.out);
        assertTrue(json.get("killed_worker").getAsString().startsWith("worker-"), r.out);
        assertTrue(json.get("interrupted_requests").getAsInt() > 0, r.out);
    }

    /**
     * {@code --processes} with the default load, request length and grace: the trace on real worker JVMs. Two nodes
     * start, a third is added (a new JVM), the first is removed (SIGTERM one grace ahead, then SIGKILL) while the 24
     * clients keep every worker's pipeline busy: its requests are interrupted (they move off with their KV cache, or
     * recompute when the SIGKILL comes first), the engine re-plans, and every request completes with the solo run's
     * tokens.
     */
    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void theTraceOnWorkerProcessesAddsAndNoticesRealJvms(@TempDir Path dir) throws Exception {
        // the third joins 100 trace s (5 s of wall time) before the removal: a worker JVM registers ~2-2.5 s after its
        // launch on a quiet 2-core machine (its warm-ups included) and later under a full build's load; with 60 s (3 s)
        // a fresh-clone verify once saw it register only after the first worker's deadline
        Path trace = trace(dir, event(0, "add", "node-0", "node-1"), event(20_000, "add", "node-2"),
                event(120_000, "remove", "node-0"), event(180_000, "DONE"));
        // 400-token requests: a notice that falls in a batch's last grace period (50 ms of wall time) lets it FINISH,
        // which is right but interrupts nothing; with 128 tokens that window was ~6 % of a batch's life and a quiet
        // fresh-clone run hit it, with 400 it is ~2 %
        Result r = run("replay", "--processes", "--trace", trace.toString(), "--speed", "20", "--tokens", "400");
        JsonObject json = allCompleted(r, -1);
        assertEquals(3, json.get("worker_processes").getAsInt(), r.out);
        // the start on two workers, then the third joining and the first leaving at its notice (one reconfiguration or
        // two: a slow JVM start can make the newcomer register when the notice comes); the newcomer's weights came
        // from a worker that held them, not from the checkpoint
        assertTrue(json.get("reconfigurations").getAsInt() >= 2, r.out);
        assertTrue(json.get("bytes_migrated").getAsLong() > 0, r.out);
        assertTrue(json.get("network_slice_bytes").getAsLong() >= 0, r.out);
        assertTrue(json.get("interrupted_requests").getAsInt() + json.get("resumed_with_cache").getAsInt() > 0,
                "no request was interrupted at the removal: " + r.out);
    }

    @Test
    void processesAndWorkersExcludeEachOther() {
        Result r = run("replay", "--processes", "--workers", "3");
        assertEquals(2, r.code, r.err);
        assertTrue(r.err.contains("--processes") && r.err.contains("--workers"), r.err);
    }

    @Test
    void badArgumentsAreOneLineAndExitTwo() {
        for (String[] args : new String[][] {{"replay", "--speed", "0"}, {"replay", "--rate", "x"},
            {"replay", "--requests", "0"}, {"replay", "--trace", "/no/such/trace.txt"}, {"replay", "--bogus", "1"},
            {"replay", "--workers", "1"}, {"replay", "--workers", "9"},
            {"replay", "--workers", "2", "--trace", "/no/such/trace.txt"}, {"replay", "--workers", "3", "--requests", "8"},
            {"replay", "--grace", "0"}, {"replay", "--grace", "-1"}, {"replay", "--grace", "121"},
            {"replay", "--grace", "NaN"}, {"replay", "--grace", "x"}, {"replay", "--workers", "3", "--grace", "1"},
            {"replay", "--tokens", "0"}, {"replay", "--tokens", "501"}, {"replay", "--clients", "0"},
            {"replay", "--clients", "4", "--rate", "1"}, {"replay", "--workers", "3", "--clients", "4"},
            {"replay", "--tensor-groups-span-workers"}}) {
            Result r = run(args);
            assertEquals(2, r.code, Arrays.toString(args) + ": " + r.err);
            assertEquals(1, r.err.strip().split("\n").length, r.err);
            assertTrue(r.err.startsWith("replay: "), r.err);
        }
    }
}
