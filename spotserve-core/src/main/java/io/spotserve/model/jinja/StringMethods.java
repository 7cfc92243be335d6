package io.spotserve.model.jinja;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The Python string methods chat templates call: {@code strip}, {@code lstrip}, {@code rstrip} (white space, or the
 * given characters), {@code upper}, {@code lower}, {@code title}, {@code capitalize}, {@code startswith} and
 * {@code endswith} (a string or a list of them), {@code split} (on white space or a separator, with maxsplit),
 * {@code replace} (with an optional count), {@code count}, {@code find}, plus the {@code length} attribute.
 */
final class StringMethods {
    private StringMethods() {
    }

    static Object get(String s, String name) {
        return switch (name) {
            case "length" -> (long) s.length();
            case "upper" -> fn(a -> s.toUpperCase(Locale.ROOT));
            case "lower" -> fn(a -> s.toLowerCase(Locale.ROOT));
            case "strip" -> fn(a -> strip(s, chars(a), true, true));
            case "lstrip" -> fn(a -> strip(s, chars(a), true, false));
            case "rstrip" -> fn(a -> strip(s, chars(a), false, true));
            case "title" -> fn(a -> title(s));
            case "capitalize" -> fn(a -> capitalize(s));
            case "startswith" -> fn(a -> affix(s, a, "startswith", true));
            case "endswith" -> fn(a -> affix(s, a, "endswith", false));
            case "split" -> (JinjaFunction) (a, kw) -> split(s, a.isEmpty() ? kw.get("sep") : a.get(0),
                    a.size() > 1 ? a.get(1) : kw.getOrDefault("maxsplit", -1L));
            case "replace" -> (JinjaFunction) (a, kw) -> replace(s, a, kw.get("count"));
            case "count" -> fn(a -> {
                String sub = stringArg(a, 0, "count");
                return (long) count(s, sub);
            });
            case "find" -> fn(a -> (long) s.indexOf(stringArg(a, 0, "find")));
            default -> Undefined.INSTANCE;
        };
    }

    private interface Positional {
        Object call(List<Object> args);
    }

    private static JinjaFunction fn(Positional p) {
        return (args, kwargs) -> p.call(args);
    }

    private static String stringArg(List<Object> a, int i, String method) {
        if (a.size() <= i || !(a.get(i) instanceof String s)) {
            throw new IllegalArgumentException(method + "() needs a string argument");
        }
        return s;
    }

    private static String chars(List<Object> a) {
        if (a.isEmpty() || a.get(0) == null) {
            return null;
        }
        if (!(a.get(0) instanceof String s)) {
            throw new IllegalArgumentException("strip() takes a string of characters, got a "
                    + Values.typeName(a.get(0)));
        }
        return s;
    }

    /** Strips white space (as JavaScript's trim does) or, given {@code chars}, those characters. */
    static String strip(String s, String chars, boolean left, boolean right) {
        int from = 0;
        int to = s.length();
        while (left && from < to && strippable(s.charAt(from), chars)) {
            from++;
        }
        while (right && to > from && strippable(s.charAt(to - 1), chars)) {
            to--;
        }
        return s.substring(from, to);
    }

    private static boolean strippable(char c, String chars) {
        return chars == null ? Lexer.isSpace(c) : chars.indexOf(c) >= 0;
    }

    private static String title(String s) {
        StringBuilder b = new StringBuilder(s.length());
        boolean wordStart = true;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean word = Character.isLetterOrDigit(c) && c < 128 || c == '_';
            b.append(word && wordStart ? Character.toUpperCase(c) : c);
            wordStart = !word;
        }
        return b.toString();
    }

    private static String capitalize(String s) {
        return s.isEmpty() ? s : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1);
    }

    private static boolean affix(String s, List<Object> a, String method, boolean prefix) {
        if (a.isEmpty()) {
            throw new IllegalArgumentException(method + "() needs an argument");
        }
        Object p = a.get(0);
        if (p instanceof String x) {
            return prefix ? s.startsWith(x) : s.endsWith(x);
        }
        if (p instanceof List<?> l) {
            for (Object o : l) {
                if (!(o instanceof String x)) {
                    throw new IllegalArgumentException(method + "() takes strings, got " + Values.aTypeName(o));
                }
                if (prefix ? s.startsWith(x) : s.endsWith(x)) {
                    return true;
                }
            }
            return false;
        }
        throw new IllegalArgumentException(method + "() takes a string or a list of strings, got a "
                + Values.typeName(p));
    }

    private static List<Object> split(String s, Object sep, Object maxsplitArg) {
        if (!(maxsplitArg instanceof Long max)) {
            throw new IllegalArgumentException("split() maxsplit must be an integer");
        }
        List<Object> out = new ArrayList<>();
        if (sep == null || sep instanceof Undefined) {
            int i = 0;
            int n = s.length();
            while (true) {
                while (i < n && Lexer.isSpace(s.charAt(i))) {
                    i++;
                }
                if (i >= n) {
                    break;
                }
                if (max >= 0 && out.size() >= max) {
                    out.add(s.substring(i));
                    break;
                }
                int j = i;
                while (j < n && !Lexer.isSpace(s.charAt(j))) {
                    j++;
                }
                out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        if (!(sep instanceof String sp)) {
            throw new IllegalArgumentException("split() separator must be a string, got " + Values.aTypeName(sep));
        }
        if (sp.isEmpty()) {
            throw new IllegalArgumentException("split() separator must not be empty");
        }
        int from = 0;
        while (true) {
            int at = s.indexOf(sp, from);
            if (at < 0 || (max >= 0 && out.size() >= max)) {
                out.add(s.substring(from));
                return out;
            }
            out.add(s.substring(from, at));
            from = at + sp.length();
        }
    }

    static String replace(String s, List<Object> a, Object countKw) {
        if (a.size() < 2 || !(a.get(0) instanceof String old) || !(a.get(1) instanceof String with)) {
            throw new IllegalArgumentException("replace(old, new[, count]) needs two strings");
        }
        Object c = a.size() > 2 ? a.get(2) : countKw;
        if (c != null && !(c instanceof Long) && !(c instanceof Undefined)) {
            throw new IllegalArgumentException("replace() count must be an integer");
        }
        long count = c instanceof Long l ? l : -1;
        if (count == 0) {
            return s;
        }
        long remaining = count < 0 ? Long.MAX_VALUE : count;
        StringBuilder b = new StringBuilder();
        if (old.isEmpty()) {
            // between every character (code point) and at both ends
            int i = 0;
            while (i <= s.length()) {
                if (remaining > 0) {
                    b.append(with);
                    remaining--;
                }
                if (i == s.length()) {
                    break;
                }
                int cp = s.codePointAt(i);
                b.appendCodePoint(cp);
                i += Character.charCount(cp);
            }
            return b.toString();
        }
        int from = 0;
        while (remaining > 0) {
            int at = s.indexOf(old, from);
            if (at < 0) {
                break;
            }
            b.append(s, from, at).append(with);
            from = at + old.length();
            remaining--;
        }
        return b.append(s.substring(from)).toString();
    }

    private static int count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.codePointCount(0, s.length()) + 1;
        }
        int n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
            n++;
        }
        return n;
    }
}
