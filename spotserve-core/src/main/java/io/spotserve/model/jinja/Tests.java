package io.spotserve.model.jinja;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The tests of {@code x is name} / {@code x is not name}: {@code defined undefined none string number integer float
 * boolean true false iterable mapping sequence callable odd even lower upper}.
 */
final class Tests {
    private Tests() {
    }

    static boolean test(String name, Object v) {
        return switch (name) {
            case "defined" -> !(v instanceof Undefined);
            case "undefined" -> v instanceof Undefined;
            case "none" -> v == null;
            case "string" -> v instanceof String;
            case "number" -> Values.isNumber(v);
            case "integer" -> v instanceof Long;
            case "float" -> v instanceof Double;
            case "boolean" -> v instanceof Boolean;
            case "true" -> Boolean.TRUE.equals(v);
            case "false" -> Boolean.FALSE.equals(v);
            case "iterable" -> v instanceof List || v instanceof String;
            case "mapping" -> v instanceof Map;
            case "sequence" -> v instanceof List || v instanceof Map || v instanceof String;
            case "callable" -> v instanceof JinjaFunction;
            case "odd", "even" -> {
                if (!(v instanceof Long l)) {
                    throw new IllegalArgumentException("'is " + name + "' needs an integer, got a "
                            + Values.typeName(v));
                }
                yield (l % 2 != 0) == name.equals("odd");
            }
            case "lower" -> v instanceof String s && s.equals(s.toLowerCase(Locale.ROOT));
            case "upper" -> v instanceof String s && s.equals(s.toUpperCase(Locale.ROOT));
            default -> throw new IllegalArgumentException("unknown test 'is " + name + "'");
        };
    }
}
