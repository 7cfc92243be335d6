package io.spotserve.bench.report;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Turns the paper-scale evaluation's CSV output (requests.csv, summary.csv, timeline.csv,
 * reconfigurations.csv, written by {@code io.spotserve.bench.eval.Evaluation}) into report.md and PNG plots
 * in the same directory, putting our numbers beside the SpotServe paper's (§7.6: Fig. 6 P99 ratios, Fig. 7
 * cost vs latency, Fig. 8 MAF, Fig. 9 ablation) and stating each target of the evaluation issue as MET / NOT
 * MET computed from the data. Where the CSVs hold the real engine ({@code spotserve-engine}: ServingEngine on
 * a simulated clock, main grid only), the same targets are also stated for it and a section compares it with
 * the simulated spotserve cell by cell; without those rows the report is exactly as before. It is separate
 * from the simulator so the report can be regenerated, and checked, without re-running it.
 *
 * <p>Run: {@code java -cp benchmarks/target/benchmarks.jar io.spotserve.bench.report.EvaluationReport
 * --results benchmarks/results}
 */
public final class EvaluationReport {
    /** The simulator's notes, relative to the parent of the results directory (benchmarks/). */
    static final String NOTES = "notes/evaluation.md";

    private EvaluationReport() {
    }

    /**
     * Writes {@code report.md} and {@code plots/*.png} into {@code resultsDir}. summary.csv is required; a
     * missing requests/timeline/reconfigurations file only skips its plots; a system absent from a cell is
     * reported as n/a. The simulator's explanation of differences is read from
     * {@code resultsDir/../notes/evaluation.md} when it exists.
     *
     * @throws MalformedResultsException if a CSV lacks a column or has a malformed line (names file:line)
     * @throws IllegalArgumentException if the directory or summary.csv does not exist
     * @throws UncheckedIOException if a file cannot be read or written
     */
    public static void write(Path resultsDir) {
        System.setProperty("java.awt.headless", "true");
        Results results = Results.load(resultsDir);
        Analysis analysis = new Analysis(results);
        Plots.Written plots = Plots.renderAll(analysis, resultsDir);
        Path parent = resultsDir.toAbsolutePath().normalize().getParent();
        Path notesFile = parent == null ? null : parent.resolve(NOTES);
        String notes = null;
        String source = null;
        if (notesFile != null && Files.isRegularFile(notesFile)) {
            try {
                notes = Files.readString(notesFile, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + notesFile, e);
            }
            source = "../" + NOTES;
        }
        String md = withSection(new Markdown(analysis, plots, notes, source).render(),
                ArtifactReport.section(resultsDir), "## Why our numbers differ");
        Path report = resultsDir.resolve("report.md");
        try {
            Files.writeString(report, md, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + report, e);
        }
    }

    /** {@code md} with {@code section} (null: none) inserted before the heading {@code before}, or at the end. */
    static String withSection(String md, String section, String before) {
        if (section == null) {
            return md;
        }
        int at = md.indexOf("\n" + before);
        return at < 0 ? md + "\n" + section : md.substring(0, at + 1) + section + "\n" + md.substring(at + 1);
    }

    /** {@code --results DIR} (default benchmarks/results). */
    public static void main(String[] args) {
        Path dir = Path.of("benchmarks/results");
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--results") && i + 1 < args.length) {
                dir = Path.of(args[++i]);
            } else {
                System.err.println("unknown argument '" + args[i] + "'; usage: EvaluationReport [--results DIR]");
                System.exit(2);
            }
        }
        try {
            write(dir);
        } catch (IllegalArgumentException | UncheckedIOException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
        System.err.println("wrote " + dir.resolve("report.md") + " and " + dir.resolve("plots"));
    }
}
