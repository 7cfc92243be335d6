package io.spotserve.bench.report;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Streams one results CSV (RFC 4180 subset: comma separated, one record per line, fields may be quoted
 * with {@code "} and {@code ""} inside quotes). The header must contain every expected column, in any
 * order; extra columns are ignored. Every problem becomes a {@link MalformedResultsException} naming
 * file:line and the expected columns.
 */
final class Csv {
    private Csv() {
    }

    /** Calls {@code sink} once per data row of {@code file}; blank lines are skipped. */
    static void read(Path file, List<String> expected, Consumer<Row> sink) {
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String header = in.readLine();
            if (header == null) {
                throw new MalformedResultsException(file, 1, "empty file, no header", expected);
            }
            if (!header.isEmpty() && header.charAt(0) == '\uFEFF') {
                header = header.substring(1);
            }
            List<String> names = split(header, file, 1, expected);
            Map<String, Integer> index = new HashMap<>();
            for (int i = 0; i < names.size(); i++) {
                index.put(names.get(i).trim(), i);
            }
            List<String> missing = new ArrayList<>();
            for (String col : expected) {
                if (!index.containsKey(col)) {
                    missing.add(col);
                }
            }
            if (!missing.isEmpty()) {
                throw new MalformedResultsException(file, 1, "missing column(s) " + String.join(",", missing)
                        + " in header '" + header + "'", expected);
            }
            int lineNo = 1;
            String line;
            while ((line = in.readLine()) != null) {
                lineNo++;
                if (line.isBlank()) {
                    continue;
                }
                List<String> fields = split(line, file, lineNo, expected);
                if (fields.size() != names.size()) {
                    throw new MalformedResultsException(file, lineNo, fields.size() + " fields, the header has "
                            + names.size(), expected);
                }
                sink.accept(new Row(file, lineNo, fields, index, expected));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    static List<String> split(String line, Path file, int lineNo, List<String> expected) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (quoted) {
                if (c == '"') {
                    if (i + 1 < line.length() && line.charAt(i + 1) == '"') {
                        cur.append('"');
                        i++;
                    } else {
                        quoted = false;
                    }
                } else {
                    cur.append(c);
                }
            } else if (c == '"') {
                quoted = true;
            } else if (c == ',') {
                out.add(cur.toString());
                cur.setLength(0);
            } else {
                cur.append(c);
            }
        }
        if (quoted) {
            throw new MalformedResultsException(file, lineNo, "unterminated quoted field", expected);
        }
        out.add(cur.toString());
        return out;
    }

    /** One data row; typed getters fail with file:line, column and value. */
    static final class Row {
        private final Path file;
        private final int line;
        private final List<String> fields;
        private final Map<String, Integer> index;
        private final List<String> expected;

        Row(Path file, int line, List<String> fields, Map<String, Integer> index, List<String> expected) {
            this.file = file;
            this.line = line;
            this.fields = fields;
            this.index = index;
            this.expected = expected;
        }

        int line() {
            return line;
        }

        String text(String column) {
            Integer i = index.get(column);
            if (i == null) {
                throw new IllegalStateException("column " + column + " was not declared as expected");
            }
            return fields.get(i).trim();
        }

        /** A required non-empty string. */
        String name(String column) {
            String v = text(column);
            if (v.isEmpty()) {
                throw fail("column " + column + " is empty");
            }
            return v;
        }

        /** A number; empty, "NaN" or "n/a" read as NaN (a cell without a value). */
        double number(String column) {
            String v = text(column);
            if (v.isEmpty() || v.equalsIgnoreCase("nan") || v.equalsIgnoreCase("n/a")) {
                return Double.NaN;
            }
            try {
                return Double.parseDouble(v);
            } catch (NumberFormatException e) {
                throw fail("column " + column + ": '" + v + "' is not a number");
            }
        }

        /** A required finite number. */
        double requiredNumber(String column) {
            double v = number(column);
            if (!Double.isFinite(v)) {
                throw fail("column " + column + ": '" + text(column) + "' is not a finite number");
            }
            return v;
        }

        long integer(String column) {
            String v = text(column);
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw fail("column " + column + ": '" + v + "' is not an integer");
            }
        }

        boolean bool(String column) {
            String v = text(column).toLowerCase(Locale.ROOT);
            return switch (v) {
                case "true", "1", "yes" -> true;
                case "false", "0", "no" -> false;
                default -> throw fail("column " + column + ": '" + text(column) + "' is not true/false");
            };
        }

        MalformedResultsException fail(String problem) {
            return new MalformedResultsException(file, line, problem, expected);
        }
    }
}
