package io.spotserve.model.jinja;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Attribute access ({@code x.name}), subscripts ({@code x[key]}, negative list indexes count from the end), slices
 * ({@code x[a:b:c]}) and the methods templates call on values: strings ({@code strip lstrip rstrip upper lower title
 * capitalize startswith endswith split replace}, {@code length}), dicts ({@code get items keys values}) and lists
 * ({@code length}). A missing attribute is undefined rather than an error, as in Jinja.
 */
final class Members {
    private Members() {
    }

    static Object get(Object object, Object key) {
        if (object instanceof Map<?, ?> || object instanceof Namespace) {
            if (!(key instanceof String k)) {
                throw new IllegalArgumentException("a dict key must be a string, got " + Values.aTypeName(key));
            }
            Map<?, ?> map = object instanceof Namespace ns ? ns.attributes : (Map<?, ?>) object;
            if (map.containsKey(k)) {
                return map.get(k);
            }
            return object instanceof Map<?, ?> m ? dictMethod(m, k) : Undefined.INSTANCE;
        }
        if (object instanceof List<?> list) {
            if (key instanceof Long i) {
                int idx = (int) (i < 0 ? list.size() + i : i);
                return idx >= 0 && idx < list.size() && Math.abs(i) <= Integer.MAX_VALUE ? list.get(idx)
                        : Undefined.INSTANCE;
            }
            if (key instanceof String k) {
                return k.equals("length") ? (Object) (long) list.size() : Undefined.INSTANCE;
            }
            throw new IllegalArgumentException("a list index must be an integer, got " + Values.aTypeName(key));
        }
        if (object instanceof String s) {
            if (key instanceof Long i) {
                int idx = (int) (i < 0 ? s.length() + i : i);
                return idx >= 0 && idx < s.length() && Math.abs(i) <= Integer.MAX_VALUE
                        ? String.valueOf(s.charAt(idx)) : Undefined.INSTANCE;
            }
            if (key instanceof String k) {
                return StringMethods.get(s, k);
            }
            throw new IllegalArgumentException("a string index must be an integer, got " + Values.aTypeName(key));
        }
        if (!(key instanceof String)) {
            throw new IllegalArgumentException("cannot index " + Values.aTypeName(object) + " with "
                    + Values.aTypeName(key));
        }
        return Undefined.INSTANCE;
    }

    private static Object dictMethod(Map<?, ?> map, String name) {
        return switch (name) {
            case "get" -> (JinjaFunction) (args, kwargs) -> {
                if (args.isEmpty() || !(args.get(0) instanceof String k)) {
                    throw new IllegalArgumentException("dict.get(key[, default]) needs a string key");
                }
                if (map.containsKey(k)) {
                    return map.get(k);
                }
                return args.size() > 1 ? args.get(1) : null;
            };
            case "items" -> (JinjaFunction) (args, kwargs) -> items(map);
            case "keys" -> (JinjaFunction) (args, kwargs) -> new ArrayList<Object>(map.keySet());
            case "values" -> (JinjaFunction) (args, kwargs) -> new ArrayList<Object>(map.values());
            default -> Undefined.INSTANCE;
        };
    }

    static List<Object> items(Map<?, ?> map) {
        List<Object> out = new ArrayList<>(map.size());
        for (Map.Entry<?, ?> e : map.entrySet()) {
            List<Object> pair = new ArrayList<>(2);
            pair.add(e.getKey());
            pair.add(e.getValue());
            out.add(pair);
        }
        return out;
    }

    /** Python slicing (negative bounds count from the end); strings slice by code point. */
    static Object slice(Object object, Object start, Object stop, Object step) {
        if (!(object instanceof List<?>) && !(object instanceof String)) {
            throw new IllegalArgumentException("cannot slice " + Values.aTypeName(object));
        }
        for (Object part : new Object[] {start, stop, step}) {
            if (!(part instanceof Long) && !(part instanceof Undefined) && part != null) {
                throw new IllegalArgumentException("slice bounds must be integers, got " + Values.aTypeName(part));
            }
        }
        List<?> items = object instanceof String s ? s.codePoints().boxed().toList() : (List<?>) object;
        int n = items.size();
        long st = step instanceof Long l ? l : 1;
        if (st == 0) {
            throw new IllegalArgumentException("slice step cannot be zero");
        }
        long from;
        long to;
        if (st > 0) {
            from = start instanceof Long l ? (l < 0 ? Math.max(n + l, 0) : Math.min(l, n)) : 0;
            to = stop instanceof Long l ? (l < 0 ? Math.max(n + l, 0) : Math.min(l, n)) : n;
        } else {
            from = start instanceof Long l ? (l < 0 ? Math.max(n + l, -1) : Math.min(l, n - 1)) : n - 1;
            to = stop instanceof Long l ? (l < -1 ? Math.max(n + l, -1) : Math.min(l, n - 1)) : -1;
        }
        List<Object> out = new ArrayList<>();
        for (long i = from; st > 0 ? i < to : i > to; i += st) {
            out.add(items.get((int) i));
        }
        if (object instanceof String) {
            StringBuilder b = new StringBuilder();
            for (Object cp : out) {
                b.appendCodePoint((Integer) cp);
            }
            return b.toString();
        }
        return out;
    }
}
