package io.spotserve.model.jinja;

import java.text.Collator;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The {@code tojson} filter (and the text of containers): JSON with Python's default separators ({@code ", "} and
 * {@code ": "}), an optional indent, {@code ensure_ascii}, {@code sort_keys} and custom separators.
 */
final class Json {
    /** The options of {@code tojson(indent=, ensure_ascii=, separators=, sort_keys=)}. */
    record Options(int indent, boolean ensureAscii, String itemSeparator, String keySeparator, boolean sortKeys) {
        static final Options DEFAULT = new Options(0, false, null, null, false);

        String items() {
            return itemSeparator != null ? itemSeparator : indent > 0 ? "," : ", ";
        }

        String keys() {
            return keySeparator != null ? keySeparator : ": ";
        }
    }

    private Json() {
    }

    /** {@code undefinedAsNull}: write undefined as {@code null} (tojson) or {@code undefined} (text of a container). */
    static String write(Object v, Options o, boolean undefinedAsNull) {
        StringBuilder b = new StringBuilder();
        write(b, v, o, undefinedAsNull, 0);
        return b.toString();
    }

    private static void write(StringBuilder b, Object v, Options o, boolean undefinedAsNull, int depth) {
        if (v == null) {
            b.append("null");
        } else if (v instanceof Undefined) {
            b.append(undefinedAsNull ? "null" : "undefined");
        } else if (v instanceof Boolean x) {
            b.append(x ? "true" : "false");
        } else if (v instanceof Long x) {
            b.append(x);
        } else if (v instanceof Double x) {
            b.append(x.isNaN() || x.isInfinite() ? "null" : Values.jsNumber(x));
        } else if (v instanceof String s) {
            string(b, s, o.ensureAscii());
        } else if (v instanceof List<?> list) {
            String pad = o.indent() > 0 ? "\n" + " ".repeat(o.indent() * (depth + 1)) : "";
            b.append('[');
            for (int i = 0; i < list.size(); i++) {
                if (i > 0) {
                    b.append(o.items());
                }
                b.append(pad);
                write(b, list.get(i), o, undefinedAsNull, depth + 1);
            }
            if (o.indent() > 0 && !list.isEmpty()) {
                b.append('\n').append(" ".repeat(o.indent() * depth));
            }
            b.append(']');
        } else if (v instanceof Map || v instanceof Namespace) {
            @SuppressWarnings("unchecked")
            Map<String, Object> map = v instanceof Namespace ns ? ns.attributes : (Map<String, Object>) v;
            List<Map.Entry<String, Object>> entries = new ArrayList<>(map.entrySet());
            if (o.sortKeys()) {
                Collator c = Collator.getInstance(Locale.ROOT);
                entries.sort((x, y) -> c.compare(x.getKey(), y.getKey()));
            }
            String pad = o.indent() > 0 ? "\n" + " ".repeat(o.indent() * (depth + 1)) : "";
            b.append('{');
            for (int i = 0; i < entries.size(); i++) {
                if (i > 0) {
                    b.append(o.items());
                }
                b.append(pad);
                string(b, entries.get(i).getKey(), o.ensureAscii());
                b.append(o.keys());
                write(b, entries.get(i).getValue(), o, undefinedAsNull, depth + 1);
            }
            if (o.indent() > 0 && !entries.isEmpty()) {
                b.append('\n').append(" ".repeat(o.indent() * depth));
            }
            b.append('}');
        } else {
            throw new IllegalArgumentException("cannot convert " + Values.aTypeName(v) + " to JSON");
        }
    }

    private static void string(StringBuilder b, String s, boolean ascii) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                case '\b' -> b.append("\\b");
                case '\f' -> b.append("\\f");
                default -> {
                    boolean lone = Character.isSurrogate(c) && !(Character.isHighSurrogate(c) && i + 1 < s.length()
                            && Character.isLowSurrogate(s.charAt(i + 1)))
                            && !(Character.isLowSurrogate(c) && i > 0 && Character.isHighSurrogate(s.charAt(i - 1)));
                    if (c < 0x20 || lone || (ascii && c >= 0x7f)) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        b.append('"');
    }
}
