package io.spotserve.bench.report;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** Writes small results CSVs with the simulator's exact columns, row by row, for the report tests. */
final class ResultsFixture {
    private final Path dir;
    private final List<String> summary = new ArrayList<>();
    private final List<String> requests = new ArrayList<>();
    private final List<String> timeline = new ArrayList<>();
    private final List<String> reconfigurations = new ArrayList<>();

    ResultsFixture(Path dir) {
        this.dir = dir;
    }

    /** A summary row; p50/p90 are derived from p99 (they are not used by the verdicts). */
    ResultsFixture summary(String model, String trace, String system, double p99, double avg, double usdPerToken) {
        summary.add(String.format(Locale.ROOT, "%s,%s,%s,%s,%s,%s,%s,%s,100,100", model, trace, system, avg * 0.8,
                avg * 1.2, p99, avg, usdPerToken));
        return this;
    }

    ResultsFixture summaryLine(String line) {
        summary.add(line);
        return this;
    }

    /** A request; latency &lt; 0 means unfinished (empty finish and latency, completed=false). */
    ResultsFixture request(String model, String trace, String system, int id, double arrival, double latency) {
        if (latency < 0) {
            requests.add(String.format(Locale.ROOT, "%s,%s,%s,%d,%s,,,,0,1,false", model, trace, system, id, arrival));
        } else {
            requests.add(String.format(Locale.ROOT, "%s,%s,%s,%d,%s,%s,%s,%s,128,0,true", model, trace, system, id,
                    arrival, arrival + 1, arrival + latency, latency));
        }
        return this;
    }

    /** A finished request that lost its KV cache {@code restarts} times. */
    ResultsFixture request(String model, String trace, String system, int id, double arrival, double latency,
                           int restarts) {
        requests.add(String.format(Locale.ROOT, "%s,%s,%s,%d,%s,%s,%s,%s,128,%d,true", model, trace, system, id,
                arrival, arrival + 1, arrival + latency, latency, restarts));
        return this;
    }

    ResultsFixture timeline(String model, String trace, String system, double t, int spot, int onDemand, String config,
                            int queue, int running) {
        timeline.add(String.format(Locale.ROOT, "%s,%s,%s,%s,%d,%d,%s,%d,%d", model, trace, system, t, spot, onDemand,
                config, queue, running));
        return this;
    }

    ResultsFixture reconfiguration(String model, String trace, String system, double t, String from, String to,
                                   String reason, long moved, long reloaded, double pause) {
        reconfigurations.add(String.format(Locale.ROOT, "%s,%s,%s,%s,%s,%s,%s,%d,%d,%s", model, trace, system, t, from,
                to, reason, moved, reloaded, pause));
        return this;
    }

    Path write() {
        try {
            Files.createDirectories(dir);
            write(Results.SUMMARY, Results.SUMMARY_COLUMNS, summary);
            if (!requests.isEmpty()) {
                write(Results.REQUESTS, Results.REQUEST_COLUMNS, requests);
            }
            if (!timeline.isEmpty()) {
                write(Results.TIMELINE, Results.TIMELINE_COLUMNS, timeline);
            }
            if (!reconfigurations.isEmpty()) {
                write(Results.RECONFIGURATIONS, Results.RECONFIGURATION_COLUMNS, reconfigurations);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return dir;
    }

    private void write(String name, List<String> columns, List<String> rows) throws IOException {
        List<String> lines = new ArrayList<>();
        lines.add(String.join(",", columns));
        lines.addAll(rows);
        Files.write(dir.resolve(name), lines);
    }
}
