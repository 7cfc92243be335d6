package io.spotserve.bench.report;

import java.nio.file.Path;
import java.util.List;

/**
 * A results CSV that the evaluation report cannot read: a missing column, a row with the wrong number of
 * fields, a value that is not a number, a duplicate summary row. The message names {@code file:line}, what
 * was found and the columns the file must have, so a change in the simulator's output format is caught
 * at the first bad line instead of as a wrong number in the report.
 */
public final class MalformedResultsException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final Path file;
    private final int line;

    MalformedResultsException(Path file, int line, String problem, List<String> expectedColumns) {
        super(file + ":" + line + ": " + problem + "; expected columns " + String.join(",", expectedColumns));
        this.file = file;
        this.line = line;
    }

    /** The CSV file that is malformed. */
    public Path file() {
        return file;
    }

    /** The 1-based line of the problem (1 = the header). */
    public int line() {
        return line;
    }
}
