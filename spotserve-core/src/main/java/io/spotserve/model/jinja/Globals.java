package io.spotserve.model.jinja;

import java.time.Clock;
import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The names every template sees: {@code true false none} (and {@code True False None}), {@code namespace(...)},
 * {@code range(...)}, {@code raise_exception(message)} and {@code strftime_now(format)} (read from an injectable
 * clock; {@code %Y %m %d %b %B %H %M %%}).
 */
final class Globals {
    private Globals() {
    }

    static void install(Scope scope, Clock clock, long maxItems) {
        scope.set("true", true);
        scope.set("false", false);
        scope.set("none", null);
        scope.set("True", true);
        scope.set("False", false);
        scope.set("None", null);
        scope.set("namespace", (JinjaFunction) Globals::namespace);
        scope.set("range", (JinjaFunction) (args, kw) -> range(args, maxItems));
        scope.set("raise_exception", (JinjaFunction) (args, kw) -> {
            String message = args.isEmpty() ? "raise_exception() called" : Values.text(args.get(0));
            throw new JinjaException(JinjaException.Kind.RAISED, message, null);
        });
        scope.set("strftime_now", (JinjaFunction) (args, kw) -> {
            if (args.isEmpty() || !(args.get(0) instanceof String format)) {
                throw new IllegalArgumentException("strftime_now(format) needs a format string");
            }
            return strftime(ZonedDateTime.now(clock), format);
        });
    }

    private static Object namespace(List<Object> args, Map<String, Object> kw) {
        Namespace ns = new Namespace();
        if (args.size() > 1) {
            throw new IllegalArgumentException("namespace() takes at most one positional argument");
        }
        if (args.size() == 1) {
            Object source = args.get(0);
            if (source instanceof Map<?, ?> m) {
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    ns.attributes.put((String) e.getKey(), e.getValue());
                }
            } else if (source instanceof List<?> pairs) {
                for (Object p : pairs) {
                    if (!(p instanceof List<?> pair) || pair.size() != 2 || !(pair.get(0) instanceof String k)) {
                        throw new IllegalArgumentException("namespace() takes a dict or a list of [key, value] pairs");
                    }
                    ns.attributes.put(k, pair.get(1));
                }
            } else {
                throw new IllegalArgumentException("namespace() cannot be built from " + Values.aTypeName(source));
            }
        }
        ns.attributes.putAll(kw);
        return ns;
    }

    private static Object range(List<Object> args, long maxItems) {
        if (args.isEmpty() || args.size() > 3 || !args.stream().allMatch(a -> a instanceof Long)) {
            throw new IllegalArgumentException("range() takes one to three integers");
        }
        long start = args.size() == 1 ? 0 : (Long) args.get(0);
        long stop = args.size() == 1 ? (Long) args.get(0) : (Long) args.get(1);
        long step = args.size() == 3 ? (Long) args.get(2) : 1;
        if (step == 0) {
            throw new IllegalArgumentException("range() step must not be zero");
        }
        List<Object> out = new ArrayList<>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (out.size() >= maxItems) {
                throw new IllegalArgumentException("range() of more than " + maxItems + " items");
            }
            out.add(i);
        }
        return out;
    }

    static String strftime(ZonedDateTime t, String format) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 >= format.length()) {
                b.append(c);
                continue;
            }
            char f = format.charAt(++i);
            switch (f) {
                case 'Y' -> b.append(t.getYear());
                case 'm' -> b.append(String.format("%02d", t.getMonthValue()));
                case 'd' -> b.append(String.format("%02d", t.getDayOfMonth()));
                case 'b' -> b.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.US));
                case 'B' -> b.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.US));
                case 'H' -> b.append(String.format("%02d", t.getHour()));
                case 'M' -> b.append(String.format("%02d", t.getMinute()));
                case '%' -> b.append('%');
                default -> b.append('%').append(f);
            }
        }
        return b.toString();
    }
}
