package io.spotserve.examples;

import com.google.gson.Gson;
import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.Reconfiguration;
import java.io.PrintStream;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * {@code replay}'s outcome: every submitted request counted once (completed, failed or lost; completions checked
 * against the prompt's solo greedy run), the reconfigurations summed, as the ordered JSON fields the README lists.
 */
final class ReplaySummary {
    private final Map<String, Object> fields = new LinkedHashMap<>();

    /**
     * What was played and how it was loaded.
     *
     * @param trace        the trace's name, or {@code workers:N}
     * @param closedLoop   closed-loop clients (else Poisson arrivals at {@code rate})
     * @param graceSeconds the notice of a removal, seconds of wall time (0: no notice)
     */
    record Load(String trace, double speed, boolean closedLoop, int clients, double rate, int tokens,
                double graceSeconds) {
    }

    /**
     * @param load        what was played
     * @param wallSeconds wall time of the whole replay
     * @param traceStart  engine-clock time at which the trace started
     * @param m           the engine's metrics at the end
     * @param futures     every submitted request, in order
     * @param prompts     each submitted request's prompt, in the same order
     * @param rejected    submissions the engine refused
     * @param oracle      the solo greedy outputs of the prompts
     */
    ReplaySummary(Load load, double wallSeconds, Duration traceStart, EngineMetrics m,
                  List<CompletableFuture<Completion>> futures, List<String> prompts, int rejected, SoloOracle oracle) {
        int completed = 0;
        int failed = 0;
        int wrong = 0;
        for (int i = 0; i < futures.size(); i++) {
            CompletableFuture<Completion> f = futures.get(i);
            if (f.isDone()) {
                if (f.isCompletedExceptionally()) {
                    failed++;
                } else {
                    completed++;
                    wrong += oracle.matches(prompts.get(i), f.join().tokens()) ? 0 : 1;
                }
            }
        }
        long bytesMigrated = 0;
        long bytesKept = 0;
        long bytesLoaded = 0;
        long interrupted = 0;
        long byPreemption = 0;
        for (Reconfiguration r : m.reconfigurations()) {
            bytesMigrated += r.bytesMigrated();
            bytesKept += r.bytesKept();
            bytesLoaded += r.bytesLoaded();
            interrupted += r.interruptedRequests();
            if (r.forcedByCloud()) {
                byPreemption += r.interruptedRequests() + r.resumedRequests();
            }
        }
        double speed = load.speed();
        put("trace", load.trace());
        put("speed", speed);
        if (load.closedLoop()) {
            put("clients", load.clients());
        } else {
            put("rate", load.rate());
        }
        put("tokens", load.tokens());
        put("grace_s", load.graceSeconds());
        put("wall_s", round(wallSeconds, 3));
        put("trace_s", round(m.now().minus(traceStart).toNanos() / 1e9 * speed, 3));
        put("submitted", futures.size());
        put("rejected", rejected);
        put("completed", completed);
        put("failed", failed);
        put("lost", futures.size() - completed - failed);
        put("wrong_outputs", wrong); // completions that differ from the prompt's solo greedy run
        put("generated_tokens", m.generatedTokens());
        put("reconfigurations", m.reconfigurations().size());
        put("interrupted_requests", interrupted);
        put("restarts", m.restarts());
        put("resumed_with_cache", m.migrations());
        // of both kinds, the requests of reconfigurations that a preemption notice or a lost instance triggered
        put("interrupted_by_preemption", byPreemption);
        put("bytes_migrated", bytesMigrated);
        put("bytes_kept_in_place", bytesKept);
        put("bytes_loaded", bytesLoaded);
        put("p50_ms", m.latency().p50().toMillis());
        put("p90_ms", m.latency().p90().toMillis());
        put("p99_ms", m.latency().p99().toMillis());
        put("ttft_p50_ms", m.timeToFirstToken().p50().toMillis());
        put("instance_hours", round(m.instanceHours() * speed, 6));
        put("cost_usd", round(m.totalCost() * speed, 6));
        put("ondemand_only_cost_usd", round(m.onDemandOnlyCost(ReplayCommand.ON_DEMAND_PRICE) * speed, 6));
    }

    /** Adds (or replaces) a field after the standard ones. */
    void put(String key, Object value) {
        fields.put(key, value);
    }

    /** A summary table, then the JSON object as the last line. */
    void print(PrintStream out, double wallSeconds) {
        out.println("replay of " + fields.get("trace") + " at " + fields.get("speed") + "x (" + round(wallSeconds, 1)
                + " s wall)");
        for (Map.Entry<String, Object> e : fields.entrySet()) {
            if (!e.getKey().equals("trace")) {
                out.printf("  %-24s %s%n", e.getKey(), e.getValue());
            }
        }
        out.println(new Gson().toJson(fields));
    }

    static double round(double v, int digits) {
        double f = Math.pow(10, digits);
        return Math.round(v * f) / f;
    }
}
