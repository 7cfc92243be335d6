package io.spotserve.model.jinja;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The filters of {@code x | name(args)}: {@code trim length count upper lower title capitalize string int float abs
 * bool tojson default d items dictsort join first last reverse sort unique list indent replace selectattr rejectattr
 * map safe}.
 */
final class Filters {
    private Filters() {
    }

    static Object apply(String name, Object v, List<Object> args, Map<String, Object> kw) {
        switch (name) {
            case "safe":
                return v;
            case "tojson":
                return Json.write(v, jsonOptions(kw), true);
            case "default":
            case "d": {
                Object fallback = arg(args, kw, 0, "default_value", "");
                Object bool = arg(args, kw, 1, "boolean", false);
                if (!(bool instanceof Boolean b)) {
                    throw new IllegalArgumentException("default(value, boolean) needs a boolean second argument");
                }
                return v instanceof Undefined || (b && !Values.truthy(v)) ? fallback : v;
            }
            case "length":
            case "count":
                if (v instanceof String s) {
                    return (long) s.length();
                } else if (v instanceof List<?> l) {
                    return (long) l.size();
                } else if (v instanceof Map<?, ?> m) {
                    return (long) m.size();
                }
                throw cannot(name, v);
            case "upper":
            case "lower":
            case "title":
            case "capitalize":
                return ((JinjaFunction) StringMethods.get(string(name, v), name)).call(List.of(), Map.of());
            case "trim": {
                Object chars = arg(args, kw, 0, "chars", null);
                return StringMethods.strip(string(name, v), chars instanceof String c ? c : null, true, true);
            }
            case "string":
                if (v == null || v instanceof Undefined || v instanceof JinjaFunction) {
                    throw cannot(name, v);
                }
                return v instanceof Boolean || v instanceof Long || v instanceof String ? Values.text(v)
                        : Values.render(v);
            case "int":
            case "float":
                return number(name, v, arg(args, kw, 0, "default", name.equals("int") ? (Object) 0L : (Object) 0.0));
            case "abs":
                if (v instanceof Long l) {
                    return Math.abs(l);
                } else if (v instanceof Double d) {
                    return Math.abs(d);
                }
                throw cannot(name, v);
            case "bool":
                return Values.truthy(v);
            case "items":
                if (v instanceof Map<?, ?> m) {
                    return Members.items(m);
                }
                throw cannot(name, v);
            case "dictsort":
                return dictsort(v, args, kw);
            case "join":
                return join(v, args, kw);
            case "first":
            case "last":
                if (v instanceof List<?> l) {
                    return l.isEmpty() ? Undefined.INSTANCE : l.get(name.equals("first") ? 0 : l.size() - 1);
                } else if (v instanceof String s) {
                    return s.isEmpty() ? Undefined.INSTANCE
                            : String.valueOf(s.charAt(name.equals("first") ? 0 : s.length() - 1));
                }
                throw cannot(name, v);
            case "reverse":
                if (v instanceof List<?> l) {
                    List<Object> out = new ArrayList<>(l);
                    Collections.reverse(out);
                    return out;
                } else if (v instanceof String s) {
                    return new StringBuilder(s).reverse().toString();
                }
                throw cannot(name, v);
            case "sort":
                return sort(v, args, kw);
            case "unique": {
                List<Object> out = new ArrayList<>();
                java.util.Set<Object> seen = new java.util.HashSet<>();
                for (Object o : list(name, v)) {
                    if (seen.add(uniqueKey(o))) {
                        out.add(o);
                    }
                }
                return out;
            }
            case "list":
                if (v instanceof List<?> l) {
                    return v;
                } else if (v instanceof Map<?, ?> m) {
                    return new ArrayList<Object>(m.keySet());
                } else if (v instanceof String s) {
                    List<Object> out = new ArrayList<>();
                    s.codePoints().forEach(cp -> out.add(new String(Character.toChars(cp))));
                    return out;
                }
                throw cannot(name, v);
            case "indent":
                return indent(string(name, v), args, kw);
            case "replace":
                return StringMethods.replace(string(name, v), args, kw.get("count"));
            case "selectattr":
            case "rejectattr":
                return selectAttr(name, v, args);
            case "map":
                return map(v, kw);
            default:
                throw new IllegalArgumentException("unknown filter '" + name + "'");
        }
    }

    private static Object arg(List<Object> args, Map<String, Object> kw, int i, String key, Object fallback) {
        if (i < args.size()) {
            return args.get(i);
        }
        return kw.getOrDefault(key, fallback);
    }

    private static IllegalArgumentException cannot(String filter, Object v) {
        return new IllegalArgumentException("filter '" + filter + "' cannot be applied to " + Values.aTypeName(v));
    }

    private static String string(String filter, Object v) {
        if (!(v instanceof String s)) {
            throw cannot(filter, v);
        }
        return s;
    }

    private static List<?> list(String filter, Object v) {
        if (!(v instanceof List<?> l)) {
            throw cannot(filter, v);
        }
        return l;
    }

    private static Json.Options jsonOptions(Map<String, Object> kw) {
        Object indent = kw.get("indent");
        if (indent != null && !(indent instanceof Long)) {
            throw new IllegalArgumentException("tojson indent must be an integer");
        }
        Object ascii = kw.getOrDefault("ensure_ascii", false);
        Object sortKeys = kw.getOrDefault("sort_keys", false);
        if (!(ascii instanceof Boolean) || !(sortKeys instanceof Boolean)) {
            throw new IllegalArgumentException("tojson ensure_ascii and sort_keys must be booleans");
        }
        String items = null;
        String keys = null;
        Object sep = kw.get("separators");
        if (sep != null) {
            if (!(sep instanceof List<?> l) || l.size() != 2 || !(l.get(0) instanceof String)
                    || !(l.get(1) instanceof String)) {
                throw new IllegalArgumentException("tojson separators must be a pair of strings");
            }
            items = (String) l.get(0);
            keys = (String) l.get(1);
        }
        int n = indent == null ? 0 : (int) Math.max(0, Math.min(64, (Long) indent));
        return new Json.Options(n, (Boolean) ascii, items, keys, (Boolean) sortKeys);
    }

    private static Object number(String name, Object v, Object fallback) {
        boolean isInt = name.equals("int");
        if (v instanceof String s) {
            String t = StringMethods.strip(s, null, true, false);
            int end = 0;
            if (end < t.length() && (t.charAt(end) == '-' || t.charAt(end) == '+')) {
                end++;
            }
            while (end < t.length() && Character.isDigit(t.charAt(end)) && t.charAt(end) < 128) {
                end++;
            }
            if (!isInt && end < t.length() && t.charAt(end) == '.') {
                end++;
                while (end < t.length() && t.charAt(end) >= '0' && t.charAt(end) <= '9') {
                    end++;
                }
            }
            String digits = t.substring(0, end);
            try {
                return isInt ? (Object) Long.parseLong(digits) : (Object) Double.parseDouble(digits);
            } catch (NumberFormatException e) {
                return fallback;
            }
        } else if (v instanceof Long || v instanceof Double) {
            double d = ((Number) v).doubleValue();
            return isInt ? (Object) (v instanceof Long l ? l : (long) d) : (Object) d;
        } else if (v instanceof Boolean b) {
            return isInt ? (Object) (b ? 1L : 0L) : (Object) (b ? 1.0 : 0.0);
        }
        throw cannot(name, v);
    }

    private static Object join(Object v, List<Object> args, Map<String, Object> kw) {
        Object sep = arg(args, kw, 0, "d", kw.getOrDefault("separator", ""));
        if (!(sep instanceof String s)) {
            throw new IllegalArgumentException("join separator must be a string");
        }
        if (v instanceof String str) {
            List<String> parts = new ArrayList<>();
            str.codePoints().forEach(cp -> parts.add(new String(Character.toChars(cp))));
            return String.join(s, parts);
        }
        Object attribute = kw.get("attribute");
        StringBuilder b = new StringBuilder();
        List<?> l = list("join", v);
        for (int i = 0; i < l.size(); i++) {
            if (i > 0) {
                b.append(s);
            }
            Object item = attribute instanceof String a ? Members.get(l.get(i), a) : l.get(i);
            if (item != null && !(item instanceof Undefined)) {
                b.append(Values.text(item));
            }
        }
        return b.toString();
    }

    private static Object sort(Object v, List<Object> args, Map<String, Object> kw) {
        Object reverse = arg(args, kw, 0, "reverse", false);
        Object caseSensitive = arg(args, kw, 1, "case_sensitive", false);
        Object attribute = arg(args, kw, 2, "attribute", null);
        if (!(reverse instanceof Boolean r) || !(caseSensitive instanceof Boolean cs)) {
            throw new IllegalArgumentException("sort reverse and case_sensitive must be booleans");
        }
        List<Object> out = new ArrayList<>(list("sort", v));
        out.sort((a, b) -> {
            Object x = attribute == null ? a : attribute(a, attribute);
            Object y = attribute == null ? b : attribute(b, attribute);
            int c = Values.compare(x, y, cs);
            return r ? -c : c;
        });
        return out;
    }

    /** {@code attribute} may be a dotted path ({@code "a.b"}) or an index. */
    private static Object attribute(Object item, Object path) {
        Object cur = item;
        for (String part : Values.text(path).split("\\.", -1)) {
            if (cur instanceof List<?>) {
                try {
                    cur = Members.get(cur, Long.parseLong(part));
                } catch (NumberFormatException e) {
                    return Undefined.INSTANCE;
                }
            } else if (cur instanceof Map<?, ?> m) {
                cur = m.containsKey(part) ? m.get(part) : Undefined.INSTANCE;
            } else if (cur instanceof Namespace ns) {
                cur = ns.attributes.containsKey(part) ? ns.attributes.get(part) : Undefined.INSTANCE;
            } else {
                return Undefined.INSTANCE;
            }
        }
        return cur;
    }

    private static Object dictsort(Object v, List<Object> args, Map<String, Object> kw) {
        if (!(v instanceof Map<?, ?> m)) {
            throw cannot("dictsort", v);
        }
        Object caseSensitive = arg(args, kw, 0, "case_sensitive", false);
        Object by = arg(args, kw, 1, "by", "key");
        Object reverse = arg(args, kw, 2, "reverse", false);
        if (!(caseSensitive instanceof Boolean cs) || !(reverse instanceof Boolean r)
                || !("key".equals(by) || "value".equals(by))) {
            throw new IllegalArgumentException("dictsort(case_sensitive, by='key'|'value', reverse) arguments");
        }
        int index = by.equals("key") ? 0 : 1;
        List<Object> items = Members.items(m);
        items.sort((a, b) -> {
            int c = Values.compare(((List<?>) a).get(index), ((List<?>) b).get(index), cs);
            return r ? -c : c;
        });
        return items;
    }

    private static Object indent(String s, List<Object> args, Map<String, Object> kw) {
        Object width = arg(args, kw, 0, "width", 4L);
        Object first = arg(args, kw, 1, "first", false);
        Object blank = arg(args, kw, 2, "blank", false);
        String pad;
        if (width instanceof String w) {
            pad = w;
        } else if (width instanceof Long w) {
            pad = " ".repeat((int) Math.max(0, Math.min(w, 1000)));
        } else {
            throw new IllegalArgumentException("indent width must be an integer or a string");
        }
        String[] lines = s.split("\n", -1);
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < lines.length; i++) {
            if (i > 0) {
                b.append('\n');
            }
            boolean skip = (i == 0 && !Values.truthy(first)) || (lines[i].isEmpty() && !Values.truthy(blank));
            b.append(skip ? "" : pad).append(lines[i]);
        }
        return b.toString();
    }

    private static Object selectAttr(String name, Object v, List<Object> args) {
        List<?> l = list(name, v);
        if (args.isEmpty() || !(args.get(0) instanceof String attr)) {
            throw new IllegalArgumentException(name + "(attribute[, test[, value]]) needs an attribute name");
        }
        String test = args.size() > 1 ? Values.text(args.get(1)) : null;
        List<Object> out = new ArrayList<>();
        for (Object item : l) {
            if (!(item instanceof Map<?, ?>) && !(item instanceof Namespace)) {
                throw new IllegalArgumentException(name + " needs a list of dicts, found " + Values.aTypeName(item));
            }
            Object a = attribute(item, attr);
            boolean result;
            if (a instanceof Undefined) {
                result = false;
            } else if (test == null) {
                result = Values.truthy(a);
            } else if (test.equals("equalto") || test.equals("eq") || test.equals("==")) {
                result = args.size() > 2 && Values.strictEquals(a, args.get(2));
            } else {
                result = Tests.test(test, a);
            }
            if (result == name.equals("selectattr")) {
                out.add(item);
            }
        }
        return out;
    }

    private static Object map(Object v, Map<String, Object> kw) {
        List<?> l = list("map", v);
        if (!(kw.get("attribute") instanceof String attr)) {
            throw new IllegalArgumentException("map needs attribute='name' (mapping a filter is not supported)");
        }
        List<Object> out = new ArrayList<>();
        for (Object item : l) {
            Object a = attribute(item, attr);
            out.add(a instanceof Undefined && kw.containsKey("default") ? kw.get("default") : a);
        }
        return out;
    }

    /** Values strictly equal (as {@code unique} compares) have equal keys; containers count by identity. */
    private record Identity(Object value) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Identity i && i.value == value;
        }

        @Override
        public int hashCode() {
            return System.identityHashCode(value);
        }
    }

    private static Object uniqueKey(Object o) {
        if (o instanceof Long || o instanceof Double) {
            return ((Number) o).doubleValue();
        }
        if (o == null) {
            return Identity.class;
        }
        return o instanceof String || o instanceof Boolean || o instanceof Undefined ? o : new Identity(o);
    }
}
