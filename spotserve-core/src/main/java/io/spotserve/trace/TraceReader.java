package io.spotserve.trace;

import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;

/**
 * Reads the two availability-trace formats of SpotServe's artifact (see {@code shared/traces/README.md}):
 * <ul>
 *   <li><b>event log</b> ({@code trace_full/g4dn.csv}, Parcae's {@code p3trace.csv}): no header, one
 *       {@code time_ms,op,node} line per event, {@code op} = {@code add} or {@code remove};</li>
 *   <li><b>replay segments</b> ({@code trace_seg/*.txt}): one JSON array per line,
 *       {@code [time_ms, op, {"nodes": [...], "required_tpt": x}]} with {@code op} = {@code add},
 *       {@code remove}, {@code other} (throughput change, needs {@code required_tpt}) or {@code DONE}.</li>
 * </ul>
 * Both are checked line by line: times are whole, non-negative milliseconds that never decrease; nothing
 * follows {@code DONE}; an added node must not be present (nor have been removed before: names are never
 * reused); a removed node must be present. Blank lines are skipped, LF or CRLF endings both work. Any
 * violation is a {@link TraceFormatException} naming {@code file:line}, what was found and what was expected.
 */
public final class TraceReader {
    private TraceReader() {
    }

    /** Reads either format, chosen by the first non-blank character ({@code [} = replay segments). */
    public static AvailabilityTrace read(Path file) throws IOException {
        String text = Files.readString(file, StandardCharsets.UTF_8);
        String source = file.toString();
        return text.stripLeading().startsWith("[")
                ? parseSegments(new StringReader(text), source)
                : parseEventLog(new StringReader(text), source);
    }

    /** Reads an event-log CSV file ({@code time_ms,op,node}). */
    public static AvailabilityTrace readEventLog(Path file) throws IOException {
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            return parseEventLog(r, file.toString());
        }
    }

    /** Reads a JSON-lines replay segment file. */
    public static AvailabilityTrace readSegments(Path file) throws IOException {
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            return parseSegments(r, file.toString());
        }
    }

    /**
     * Parses an event log.
     *
     * @param source name used in error messages
     */
    public static AvailabilityTrace parseEventLog(Reader in, String source) throws IOException {
        return parse(in, source, TraceReader::eventLogLine);
    }

    /**
     * Parses replay segments.
     *
     * @param source name used in error messages
     */
    public static AvailabilityTrace parseSegments(Reader in, String source) throws IOException {
        return parse(in, source, TraceReader::segmentLine);
    }

    /** One line to one event; a problem is reported by throwing {@link LineProblem}. */
    private interface LineParser {
        TraceEvent parse(String line);
    }

    /** A problem with the current line; turned into a TraceFormatException with file:line by {@link #parse}. */
    private static final class LineProblem extends RuntimeException {
        private static final long serialVersionUID = 1L;

        LineProblem(String message) {
            super(message, null, false, false);
        }
    }

    private static AvailabilityTrace parse(Reader in, String source, LineParser parser) throws IOException {
        BufferedReader br = in instanceof BufferedReader b ? b : new BufferedReader(in);
        List<TraceEvent> events = new ArrayList<>();
        Membership membership = new Membership();
        int lineNo = 0;
        for (String line = br.readLine(); line != null; line = br.readLine()) {
            lineNo++;
            if (lineNo == 1 && line.startsWith("\uFEFF")) {
                line = line.substring(1);
            }
            if (line.isBlank()) {
                continue;
            }
            TraceEvent e;
            try {
                e = parser.parse(line);
            } catch (LineProblem | IllegalArgumentException p) {
                throw new TraceFormatException(source, lineNo, p.getMessage());
            }
            String problem = membership.apply(e);
            if (problem != null) {
                throw new TraceFormatException(source, lineNo, problem);
            }
            events.add(e);
        }
        if (events.isEmpty()) {
            throw new TraceFormatException(source, Math.max(lineNo, 1), "no events; expected at least one line");
        }
        return AvailabilityTrace.checked(source, events, membership);
    }

    // ---------------------------------------------------------------- event log: time_ms,op,node

    private static TraceEvent eventLogLine(String line) {
        String[] f = line.split(",", -1);
        if (f.length != 3) {
            throw new LineProblem("'" + line + "' has " + f.length + " fields; expected 3: time_ms,op,node");
        }
        Duration time = Duration.ofMillis(millis(f[0].trim()));
        String op = f[1].trim();
        String node = f[2].trim();
        if (node.isEmpty()) {
            throw new LineProblem("node name is empty; expected an instance id such as node1");
        }
        return switch (op) {
            case "add" -> TraceEvent.add(time, node);
            case "remove" -> TraceEvent.remove(time, node);
            default -> throw new LineProblem("unknown op '" + op + "'; expected add or remove");
        };
    }

    /** The latest trace time: a {@link Duration} of it still converts to nanoseconds (the engine clock's unit). */
    static final long MAX_MILLIS = Long.MAX_VALUE / 1_000_000L;

    private static long millis(String s) {
        try {
            long t = new BigDecimal(s).longValueExact();
            if (t < 0) {
                throw new LineProblem("time is " + s + " ms; expected a time >= 0");
            }
            if (t > MAX_MILLIS) {
                throw new LineProblem("time " + s + " ms is beyond " + MAX_MILLIS + " ms (about 292 years), the"
                        + " longest time the engine clock holds in nanoseconds; expected a time <= " + MAX_MILLIS);
            }
            return t;
        } catch (NumberFormatException e) {
            throw new LineProblem("time '" + s + "' is not a number; expected whole milliseconds");
        } catch (ArithmeticException e) {
            throw new LineProblem("time " + s + " is not a whole number of milliseconds that fits a long");
        }
    }

    // ---------------------------------------------------------------- replay segments: [time_ms, op, info]

    private static final java.util.regex.Pattern COLUMN = java.util.regex.Pattern.compile("column (\\d+)");

    private static final String SEGMENT_SHAPE = "[time_ms, \"add\"|\"remove\"|\"other\"|\"DONE\", "
            + "{\"nodes\": [...], \"required_tpt\": x}]";

    private static TraceEvent segmentLine(String line) {
        boolean closed = false;
        try {
            JsonReader r = new JsonReader(new StringReader(line));
            r.setStrictness(Strictness.STRICT);
            expect(r, JsonToken.BEGIN_ARRAY, "the line to start with '['");
            r.beginArray();
            expect(r, JsonToken.NUMBER, "a time in milliseconds as the first element");
            Duration time = Duration.ofMillis(millis(r.nextString()));
            expect(r, JsonToken.STRING, "an op string as the second element");
            String op = r.nextString();
            TraceEvent.Kind kind = switch (op) {
                case "add" -> TraceEvent.Kind.ADD;
                case "remove" -> TraceEvent.Kind.REMOVE;
                case "other" -> TraceEvent.Kind.RATE;
                case "DONE" -> TraceEvent.Kind.END;
                default -> throw new LineProblem("unknown op '" + op + "'; expected add, remove, other or DONE");
            };
            expect(r, JsonToken.BEGIN_OBJECT, "an info object {\"nodes\": [...]} as the third element");
            r.beginObject();
            List<String> nodes = null;
            OptionalDouble tpt = OptionalDouble.empty();
            while (r.hasNext()) {
                String name = r.nextName();
                switch (name) {
                    case "nodes" -> {
                        expect(r, JsonToken.BEGIN_ARRAY, "\"nodes\" to be an array of names");
                        nodes = new ArrayList<>();
                        r.beginArray();
                        while (r.hasNext()) {
                            expect(r, JsonToken.STRING, "node names to be strings");
                            nodes.add(r.nextString());
                        }
                        r.endArray();
                    }
                    case "required_tpt" -> {
                        expect(r, JsonToken.NUMBER, "\"required_tpt\" to be a number");
                        tpt = OptionalDouble.of(r.nextDouble());
                    }
                    default -> r.skipValue(); // unknown fields are ignored
                }
            }
            r.endObject();
            if (r.peek() != JsonToken.END_ARRAY) {
                throw new LineProblem("more than 3 elements; expected " + SEGMENT_SHAPE);
            }
            r.endArray();
            closed = true;
            if (r.peek() != JsonToken.END_DOCUMENT) {
                throw new LineProblem("text after the closing ']'; expected one JSON array per line");
            }
            if (nodes == null) {
                if (kind == TraceEvent.Kind.ADD || kind == TraceEvent.Kind.REMOVE) {
                    throw new LineProblem("'" + op + "' without field \"nodes\"; expected " + SEGMENT_SHAPE);
                }
                nodes = List.of();
            }
            if (kind == TraceEvent.Kind.RATE && tpt.isEmpty()) {
                throw new LineProblem("'other' without field \"required_tpt\"; expected the new required "
                        + "throughput");
            }
            return new TraceEvent(time, kind, nodes, tpt);
        } catch (IOException | IllegalStateException e) {
            // MalformedJsonException / EOFException (IOExceptions) or a token of the wrong type
            if (closed) {
                throw new LineProblem("text after the closing ']'; expected one JSON array per line");
            }
            java.util.regex.Matcher col = COLUMN.matcher(String.valueOf(e.getMessage()));
            throw new LineProblem("malformed JSON" + (col.find() ? " near column " + col.group(1) : "")
                    + "; expected " + SEGMENT_SHAPE);
        }
    }

    private static void expect(JsonReader r, JsonToken token, String what) throws IOException {
        JsonToken found = r.peek();
        if (found != token) {
            throw new LineProblem("found " + describe(found) + "; expected " + what + " in " + SEGMENT_SHAPE);
        }
    }

    private static String describe(JsonToken t) {
        return switch (t) {
            case END_ARRAY -> "']' (too few elements)";
            case END_DOCUMENT -> "end of line";
            default -> t.name().toLowerCase(java.util.Locale.ROOT).replace('_', ' ');
        };
    }
}
