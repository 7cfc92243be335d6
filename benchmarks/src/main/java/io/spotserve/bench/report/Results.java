package io.spotserve.bench.report;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The four CSV files the evaluation simulator ({@code io.spotserve.bench.eval.Evaluation}) writes, read
 * into immutable rows. Column names are the simulator's contract (benchmarks/notes/evaluation.md);
 * summary.csv is required, the other three are optional (their plots are then skipped and the report
 * says so).
 */
final class Results {
    static final String SUMMARY = "summary.csv";
    static final String REQUESTS = "requests.csv";
    static final String TIMELINE = "timeline.csv";
    static final String RECONFIGURATIONS = "reconfigurations.csv";
    /** Optional: the seed and arrival process of the main run (one row). */
    static final String RUN = "run.csv";
    /** Optional: summary rows of seeds 1..N under both arrival processes ({@code Evaluation --robustness}). */
    static final String ROBUSTNESS = "robustness.csv";
    /** Written by {@code Evaluation --sensitivity}: the run's seed re-run under each named assumption variant. */
    static final String SENSITIVITY = "sensitivity.csv";
    static final List<String> SENSITIVITY_COLUMNS = List.of("variant", "arrivals", "model", "trace", "system", "p50_s",
            "p90_s", "p99_s", "avg_s", "usd_per_token", "requests", "completed");
    static final List<String> RUN_COLUMNS = List.of("seed", "arrivals");
    static final List<String> ROBUSTNESS_COLUMNS = List.of("arrivals", "seed", "model", "trace", "system", "p50_s",
            "p90_s", "p99_s", "avg_s", "usd_per_token", "requests", "completed");

    /** The main run's seed and arrival process ("paper" = Gamma CV 6, "artifact" = near-periodic). */
    record Run(long seed, String arrivals) {
        /** Short label for titles and headings, e.g. "seed 1, Gamma CV-6 arrivals". */
        String label() {
            return "seed " + seed + ", " + arrivalsLabel(arrivals);
        }

        static String arrivalsLabel(String arrivals) {
            return switch (arrivals) {
                case "paper" -> "Gamma CV-6 arrivals";
                case "artifact" -> "artifact near-periodic arrivals";
                default -> arrivals + " arrivals";
            };
        }
    }

    static final List<String> SUMMARY_COLUMNS = List.of("model", "trace", "system", "p50_s", "p90_s", "p99_s",
            "avg_s", "usd_per_token", "requests", "completed");
    static final List<String> REQUEST_COLUMNS = List.of("model", "trace", "system", "request_id", "arrival_s",
            "first_token_s", "finish_s", "latency_s", "output_tokens", "restarts", "completed");
    static final List<String> TIMELINE_COLUMNS = List.of("model", "trace", "system", "t_s", "spot_instances",
            "ondemand_instances", "config", "queue_length", "running");
    static final List<String> RECONFIGURATION_COLUMNS = List.of("model", "trace", "system", "t_s", "from", "to",
            "reason", "bytes_moved", "bytes_reloaded", "pause_s");

    /** A model x trace cell of the evaluation. */
    record Cell(String model, String trace) {
    }

    /** One line of summary.csv; latencies in seconds, NaN where the simulator wrote no value. */
    record Summary(String model, String trace, String system, double p50, double p90, double p99, double avg,
                   double usdPerToken, long requests, long completed) {
        Cell cell() {
            return new Cell(model, trace);
        }
    }

    /**
     * Latencies of one system in one cell: finished requests' latencies, how many requests arrived, and how many
     * times a request lost its KV cache and was prefilled again (the sum of requests.csv's restarts).
     */
    record Latencies(double[] finished, int requests, long restarts) {
    }

    /** One line of timeline.csv. */
    record TimelinePoint(double t, int spot, int onDemand, String config, int queue, int running) {
    }

    /** One line of reconfigurations.csv. */
    record Reconfiguration(String system, double t, String from, String to, String reason, double bytesMoved,
                           double bytesReloaded, double pause) {
    }

    final Path dir;
    /** Cell -> system -> summary row, in file order. */
    final Map<Cell, Map<String, Summary>> summary;
    /** Cell -> system -> latencies; empty when requests.csv is absent. */
    final Map<Cell, Map<String, Latencies>> requests;
    /** Cell -> system -> timeline points in time order; empty when timeline.csv is absent. */
    final Map<Cell, Map<String, List<TimelinePoint>>> timeline;
    /** Cell -> reconfigurations in file order; empty when reconfigurations.csv is absent. */
    final Map<Cell, List<Reconfiguration>> reconfigurations;
    final List<String> missingFiles;
    /** The main run, or null when run.csv is absent. */
    final Run run;
    /** Arrival process -> seed -> summary of that seed (cells x systems); empty when robustness.csv is absent. */
    final Map<String, Map<Long, Map<Cell, Map<String, Summary>>>> robustness;
    /** Variant -> arrival process -> summary (cells x systems), in file order; empty when sensitivity.csv is absent. */
    final Map<String, Map<String, Map<Cell, Map<String, Summary>>>> sensitivity;

    private Results(Path dir, Map<Cell, Map<String, Summary>> summary, Map<Cell, Map<String, Latencies>> requests,
                    Map<Cell, Map<String, List<TimelinePoint>>> timeline,
                    Map<Cell, List<Reconfiguration>> reconfigurations, List<String> missingFiles, Run run,
                    Map<String, Map<Long, Map<Cell, Map<String, Summary>>>> robustness,
                    Map<String, Map<String, Map<Cell, Map<String, Summary>>>> sensitivity) {
        this.sensitivity = sensitivity;
        this.run = run;
        this.robustness = robustness;
        this.dir = dir;
        this.summary = summary;
        this.requests = requests;
        this.timeline = timeline;
        this.reconfigurations = reconfigurations;
        this.missingFiles = missingFiles;
    }

    Optional<Summary> get(String model, String trace, String system) {
        Map<String, Summary> bySystem = summary.get(new Cell(model, trace));
        return bySystem == null ? Optional.empty() : Optional.ofNullable(bySystem.get(system));
    }

    static Results load(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("results directory " + dir + " does not exist (expected the output of "
                    + "io.spotserve.bench.eval.Evaluation --out " + dir + ")");
        }
        Path summaryFile = dir.resolve(SUMMARY);
        if (!Files.isRegularFile(summaryFile)) {
            throw new IllegalArgumentException("no " + summaryFile + " (expected columns "
                    + String.join(",", SUMMARY_COLUMNS) + ")");
        }
        List<String> missing = new ArrayList<>();
        Map<Cell, Map<String, Summary>> summary = readSummary(summaryFile);
        Map<Cell, Map<String, Latencies>> requests = Map.of();
        Path f = dir.resolve(REQUESTS);
        if (Files.isRegularFile(f)) {
            requests = readRequests(f);
        } else {
            missing.add(REQUESTS);
        }
        Map<Cell, Map<String, List<TimelinePoint>>> timeline = Map.of();
        f = dir.resolve(TIMELINE);
        if (Files.isRegularFile(f)) {
            timeline = readTimeline(f);
        } else {
            missing.add(TIMELINE);
        }
        Map<Cell, List<Reconfiguration>> reconfigurations = Map.of();
        f = dir.resolve(RECONFIGURATIONS);
        if (Files.isRegularFile(f)) {
            reconfigurations = readReconfigurations(f);
        } else {
            missing.add(RECONFIGURATIONS);
        }
        Run run = null;
        f = dir.resolve(RUN);
        if (Files.isRegularFile(f)) {
            List<Run> runs = new ArrayList<>();
            Csv.read(f, RUN_COLUMNS, row -> {
                if (!runs.isEmpty()) {
                    throw row.fail("more than one run row; expected exactly one");
                }
                runs.add(new Run(row.integer("seed"), row.name("arrivals")));
            });
            run = runs.isEmpty() ? null : runs.get(0);
        }
        Map<String, Map<Long, Map<Cell, Map<String, Summary>>>> robustness = new LinkedHashMap<>();
        f = dir.resolve(ROBUSTNESS);
        if (Files.isRegularFile(f)) {
            Csv.read(f, ROBUSTNESS_COLUMNS, row -> {
                Summary s = summaryOf(row);
                Map<String, Summary> bySystem = robustness.computeIfAbsent(row.name("arrivals"), k -> new LinkedHashMap<>())
                        .computeIfAbsent(row.integer("seed"), k -> new LinkedHashMap<>())
                        .computeIfAbsent(s.cell(), k -> new LinkedHashMap<>());
                if (bySystem.put(s.system(), s) != null) {
                    throw row.fail("duplicate row for " + row.name("arrivals") + " seed " + row.integer("seed") + " "
                            + s.model() + "," + s.trace() + "," + s.system());
                }
            });
        }
        Map<String, Map<String, Map<Cell, Map<String, Summary>>>> sensitivity = new LinkedHashMap<>();
        f = dir.resolve(SENSITIVITY);
        if (Files.isRegularFile(f)) {
            Csv.read(f, SENSITIVITY_COLUMNS, row -> {
                Summary s = summaryOf(row);
                Map<String, Summary> bySystem = sensitivity.computeIfAbsent(row.name("variant"), k -> new LinkedHashMap<>())
                        .computeIfAbsent(row.name("arrivals"), k -> new LinkedHashMap<>())
                        .computeIfAbsent(s.cell(), k -> new LinkedHashMap<>());
                if (bySystem.put(s.system(), s) != null) {
                    throw row.fail("duplicate row for variant " + row.name("variant") + ", " + row.name("arrivals")
                            + " arrivals, " + s.model() + "," + s.trace() + "," + s.system());
                }
            });
        }
        return new Results(dir, summary, requests, timeline, reconfigurations, List.copyOf(missing), run, robustness,
                sensitivity);
    }

    /** Summary-only results (one seed of robustness.csv), to compute that seed's target verdicts. */
    static Results ofSummary(Path dir, Map<Cell, Map<String, Summary>> summary) {
        return new Results(dir, summary, Map.of(), Map.of(), Map.of(), List.of(), null, Map.of(), Map.of());
    }

    /** The summary columns of one row of summary.csv, robustness.csv or sensitivity.csv. */
    private static Summary summaryOf(Csv.Row row) {
        return new Summary(row.name("model"), row.name("trace"), row.name("system"), row.number("p50_s"),
                row.number("p90_s"), row.number("p99_s"), row.number("avg_s"), row.number("usd_per_token"),
                row.integer("requests"), row.integer("completed"));
    }

    private static Map<Cell, Map<String, Summary>> readSummary(Path file) {
        Map<Cell, Map<String, Summary>> out = new LinkedHashMap<>();
        Map<String, Integer> firstLine = new HashMap<>();
        Csv.read(file, SUMMARY_COLUMNS, row -> {
            Summary s = summaryOf(row);
            String key = s.model() + "," + s.trace() + "," + s.system();
            Integer first = firstLine.putIfAbsent(key, row.line());
            if (first != null) {
                throw row.fail("duplicate row for " + key + " (first at line " + first + ")");
            }
            out.computeIfAbsent(s.cell(), c -> new LinkedHashMap<>()).put(s.system(), s);
        });
        return out;
    }

    private static Map<Cell, Map<String, Latencies>> readRequests(Path file) {
        Map<Cell, Map<String, double[]>> lat = new LinkedHashMap<>();
        Map<Cell, Map<String, int[]>> counts = new LinkedHashMap<>();
        Csv.read(file, REQUEST_COLUMNS, row -> {
            Cell cell = new Cell(row.name("model"), row.name("trace"));
            String system = row.name("system");
            int[] c = counts.computeIfAbsent(cell, k -> new LinkedHashMap<>()).computeIfAbsent(system, k -> new int[3]);
            c[0]++;
            long restarts = row.integer("restarts");
            if (restarts < 0) {
                throw row.fail("restarts '" + row.text("restarts") + "'; expected a count >= 0");
            }
            c[2] += (int) Math.min(restarts, Integer.MAX_VALUE - c[2]);
            boolean completed = row.bool("completed");
            double latency = row.number("latency_s");
            if (completed) {
                if (!Double.isFinite(latency) || latency < 0) {
                    throw row.fail("completed request with latency_s '" + row.text("latency_s")
                            + "'; expected a finite value >= 0");
                }
                Map<String, double[]> bySystem = lat.computeIfAbsent(cell, k -> new LinkedHashMap<>());
                double[] arr = bySystem.computeIfAbsent(system, k -> new double[16]);
                if (c[1] == arr.length) {
                    arr = java.util.Arrays.copyOf(arr, arr.length * 2);
                    bySystem.put(system, arr);
                }
                arr[c[1]++] = latency;
            }
        });
        Map<Cell, Map<String, Latencies>> out = new LinkedHashMap<>();
        counts.forEach((cell, bySystem) -> bySystem.forEach((system, c) -> {
            double[] arr = lat.getOrDefault(cell, Map.of()).getOrDefault(system, new double[0]);
            double[] finished = java.util.Arrays.copyOf(arr, c[1]);
            java.util.Arrays.sort(finished);
            out.computeIfAbsent(cell, k -> new LinkedHashMap<>()).put(system, new Latencies(finished, c[0], c[2]));
        }));
        return out;
    }

    private static Map<Cell, Map<String, List<TimelinePoint>>> readTimeline(Path file) {
        Map<Cell, Map<String, List<TimelinePoint>>> out = new LinkedHashMap<>();
        Csv.read(file, TIMELINE_COLUMNS, row -> {
            Cell cell = new Cell(row.name("model"), row.name("trace"));
            TimelinePoint p = new TimelinePoint(row.requiredNumber("t_s"), (int) row.integer("spot_instances"),
                    (int) row.integer("ondemand_instances"), row.text("config"), (int) row.integer("queue_length"),
                    (int) row.integer("running"));
            out.computeIfAbsent(cell, k -> new LinkedHashMap<>())
                    .computeIfAbsent(row.name("system"), k -> new ArrayList<>()).add(p);
        });
        // stable sort: rows written at the same instant keep their order, the last one is the state after
        out.values().forEach(bySystem -> bySystem.values().forEach(
                pts -> pts.sort(java.util.Comparator.comparingDouble(TimelinePoint::t))));
        return out;
    }

    private static Map<Cell, List<Reconfiguration>> readReconfigurations(Path file) {
        Map<Cell, List<Reconfiguration>> out = new LinkedHashMap<>();
        Csv.read(file, RECONFIGURATION_COLUMNS, row -> {
            Cell cell = new Cell(row.name("model"), row.name("trace"));
            out.computeIfAbsent(cell, k -> new ArrayList<>()).add(new Reconfiguration(row.name("system"),
                    row.requiredNumber("t_s"), row.text("from"), row.text("to"), row.text("reason"),
                    zeroIfEmpty(row.number("bytes_moved")), zeroIfEmpty(row.number("bytes_reloaded")),
                    zeroIfEmpty(row.number("pause_s"))));
        });
        return out;
    }

    private static double zeroIfEmpty(double v) {
        return Double.isNaN(v) ? 0 : v;
    }
}
