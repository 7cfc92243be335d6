package io.spotserve.model.jinja;

import java.util.List;
import java.util.Map;

/** A callable value: a global such as {@code range}, a macro, or a bound method such as {@code s.strip}. */
@FunctionalInterface
interface JinjaFunction {
    Object call(List<Object> args, Map<String, Object> kwargs);
}
