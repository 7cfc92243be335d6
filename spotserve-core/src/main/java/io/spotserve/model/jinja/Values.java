package io.spotserve.model.jinja;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The value model of templates and its conversions. Values are plain Java objects: {@code null} (none),
 * {@link Undefined}, {@link String}, {@link Long} (integers), {@link Double} (floats), {@link Boolean},
 * {@link List} (lists and tuples), {@link Map} with String keys (dicts), {@link Namespace} and {@link JinjaFunction}.
 * Text conversion and equality follow the reference implementation chat templates are checked against
 * ({@code @huggingface/jinja}): booleans render as {@code true}/{@code false}, containers as JSON.
 */
final class Values {
    private Values() {
    }

    static String typeName(Object v) {
        if (v == null) {
            return "none";
        } else if (v instanceof Undefined) {
            return "undefined";
        } else if (v instanceof String) {
            return "string";
        } else if (v instanceof Long) {
            return "integer";
        } else if (v instanceof Double) {
            return "float";
        } else if (v instanceof Boolean) {
            return "boolean";
        } else if (v instanceof List) {
            return "list";
        } else if (v instanceof Map) {
            return "dict";
        } else if (v instanceof Namespace) {
            return "namespace";
        } else if (v instanceof JinjaFunction) {
            return "function";
        }
        return v.getClass().getSimpleName();
    }

    /** The type name with its article: "a string", "an integer", "an undefined value". */
    static String aTypeName(Object v) {
        String t = typeName(v);
        return v instanceof Undefined ? "an undefined value" : ("aeiou".indexOf(t.charAt(0)) >= 0 ? "an " : "a ") + t;
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double;
    }

    static boolean truthy(Object v) {
        if (v == null || v instanceof Undefined) {
            return false;
        } else if (v instanceof Boolean b) {
            return b;
        } else if (v instanceof String s) {
            return !s.isEmpty();
        } else if (v instanceof Long l) {
            return l != 0;
        } else if (v instanceof Double d) {
            return d != 0 && !d.isNaN();
        } else if (v instanceof List<?> l) {
            return !l.isEmpty();
        } else if (v instanceof Map<?, ?> m) {
            return !m.isEmpty();
        }
        return true;
    }

    /** How {@code {{ v }}} renders (none and undefined render as nothing, handled by the caller). */
    static String render(Object v) {
        if (v instanceof String s) {
            return s;
        } else if (v instanceof Double d) {
            return floatText(d);
        } else if (v instanceof List || v instanceof Map || v instanceof Namespace) {
            return Json.write(v, Json.Options.DEFAULT, false);
        }
        return text(v);
    }

    /** The text of a value when joined to a string ({@code +}, {@code ~}, {@code join}). */
    static String text(Object v) {
        if (v instanceof String s) {
            return s;
        } else if (v instanceof Long l) {
            return Long.toString(l);
        } else if (v instanceof Double d) {
            return jsNumber(d);
        } else if (v instanceof Boolean b) {
            return b ? "true" : "false";
        } else if (v == null) {
            return "null";
        } else if (v instanceof Undefined) {
            return "";
        } else if (v instanceof List<?> l) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < l.size(); i++) {
                if (i > 0) {
                    b.append(',');
                }
                Object e = l.get(i);
                if (e != null && !(e instanceof Undefined)) {
                    b.append(render(e));
                }
            }
            return b.toString();
        } else if (v instanceof Map || v instanceof Namespace) {
            return Json.write(v, Json.Options.DEFAULT, false);
        }
        return "<function>";
    }

    /** A float as Jinja shows it: always with a fraction ({@code 3.0}). */
    static String floatText(double d) {
        if (d == 0 && 1 / d < 0) {
            return "-0.0";
        }
        if (!Double.isInfinite(d) && d == Math.rint(d) && Math.abs(d) < 1e21) {
            return new BigDecimal(d).toPlainString() + ".0";
        }
        return jsNumber(d);
    }

    /** A number as JavaScript's {@code String(number)} writes it (the shortest form that reads back exactly). */
    static String jsNumber(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return "0";
        }
        BigDecimal exact = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        double abs = Math.abs(d);
        if (abs >= 1e-7 && abs < 1e21) {
            return exact.toPlainString();
        }
        String digits = exact.unscaledValue().abs().toString();
        int exponent = digits.length() - 1 - exact.scale();
        StringBuilder b = new StringBuilder(d < 0 ? "-" : "");
        b.append(digits.charAt(0));
        if (digits.length() > 1) {
            b.append('.').append(digits, 1, digits.length());
        }
        return b.append('e').append(exponent >= 0 ? "+" : "-").append(Math.abs(exponent)).toString();
    }

    /** {@code ==}: JavaScript's loose equality of the underlying values (containers by identity). */
    static boolean looseEquals(Object a, Object b) {
        boolean aNone = a == null || a instanceof Undefined;
        boolean bNone = b == null || b instanceof Undefined;
        if (aNone || bNone) {
            return aNone && bNone;
        }
        if (isNumericLike(a) && isNumericLike(b)) {
            return numeric(a) == numeric(b);
        }
        if (a instanceof String s && isNumericLike(b)) {
            return stringToNumber(s) == numeric(b);
        }
        if (b instanceof String s && isNumericLike(a)) {
            return stringToNumber(s) == numeric(a);
        }
        if (a instanceof String || b instanceof String) {
            return a.equals(b);
        }
        return a == b;
    }

    /** {@code in} on lists and {@code unique}: JavaScript's strict equality of the underlying values. */
    static boolean strictEquals(Object a, Object b) {
        if (a == null || b == null) {
            return a == b;
        }
        if (isNumber(a) && isNumber(b)) {
            return numeric(a) == numeric(b);
        }
        if (a instanceof String || a instanceof Boolean || a instanceof Undefined) {
            return a.equals(b);
        }
        return a == b;
    }

    static boolean isNumericLike(Object v) {
        return v instanceof Long || v instanceof Double || v instanceof Boolean;
    }

    static double numeric(Object v) {
        if (v instanceof Boolean b) {
            return b ? 1 : 0;
        }
        return ((Number) v).doubleValue();
    }

    private static double stringToNumber(String s) {
        String t = s.strip();
        if (t.isEmpty()) {
            return 0;
        }
        try {
            return Double.parseDouble(t);
        } catch (NumberFormatException e) {
            return Double.NaN;
        }
    }

    /** Ordering for {@code sort} and {@code dictsort}: numbers (and booleans) together, strings together. */
    static int compare(Object a, Object b, boolean caseSensitive) {
        if ((a == null && b == null) || (a instanceof Undefined && b instanceof Undefined)) {
            return 0;
        }
        if (isNumericLike(a) && isNumericLike(b)) {
            return Double.compare(numeric(a), numeric(b)) == 0 ? 0 : (numeric(a) < numeric(b) ? -1 : 1);
        }
        if (a instanceof String x && b instanceof String y) {
            if (!caseSensitive) {
                x = x.toLowerCase(java.util.Locale.ROOT);
                y = y.toLowerCase(java.util.Locale.ROOT);
            }
            return Integer.signum(x.compareTo(y));
        }
        throw new IllegalArgumentException("cannot compare " + typeName(a) + " with " + typeName(b));
    }

    /** A Java value handed to the template (variables, function results) as a template value. */
    static Object fromJava(Object v) {
        if (v == null || v instanceof String || v instanceof Boolean || v instanceof Long || v instanceof Undefined
                || v instanceof Namespace || v instanceof JinjaFunction) {
            return v;
        }
        if (v instanceof Integer || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            return d == Math.rint(d) && Math.abs(d) < 9.007199254740992E15 ? (Object) (long) d : (Object) d;
        }
        if (v instanceof Character c) {
            return c.toString();
        }
        if (v instanceof Map<?, ?> m) {
            Map<String, Object> map = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : m.entrySet()) {
                map.put(String.valueOf(e.getKey()), fromJava(e.getValue()));
            }
            return map;
        }
        if (v instanceof Collection<?> c) {
            List<Object> list = new ArrayList<>(c.size());
            for (Object o : c) {
                list.add(fromJava(o));
            }
            return list;
        }
        if (v instanceof Object[] a) {
            return fromJava(java.util.Arrays.asList(a));
        }
        throw new IllegalArgumentException("a template variable cannot be a " + v.getClass().getName()
                + " (use String, Number, Boolean, List, Map or null)");
    }
}
