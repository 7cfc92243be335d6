package io.spotserve.trace;

import java.io.IOException;

/**
 * A trace file does not follow its format, or describes an impossible history (time going backwards, a
 * node removed that is not there, ...). Thrown before any trace object is built. The message starts with
 * {@code source:line:} and says what was found and what was expected, because the usual cause is a
 * hand-edited trace that the user has to fix.
 */
public final class TraceFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    private final String source;
    private final int line;

    /**
     * @param source  file name (or other label) of the input
     * @param line    1-based line number of the offending line
     * @param problem what was wrong and what was expected
     */
    public TraceFormatException(String source, int line, String problem) {
        super(source + ":" + line + ": " + problem);
        this.source = source;
        this.line = line;
    }

    /** The file (or label) that failed to parse. */
    public String source() {
        return source;
    }

    /** The 1-based line that failed. */
    public int line() {
        return line;
    }
}
