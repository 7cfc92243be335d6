package io.spotserve.model.jinja;

import java.util.HashMap;
import java.util.Map;

/**
 * Variables visible at one point of a template. A for loop and a macro call open a child scope, so {@code set}
 * inside them does not leak out (that is what {@code namespace()} is for); {@code if} does not open one.
 */
final class Scope {
    private final Scope parent;
    private final Map<String, Object> variables = new HashMap<>();

    Scope(Scope parent) {
        this.parent = parent;
    }

    Object lookup(String name) {
        for (Scope s = this; s != null; s = s.parent) {
            if (s.variables.containsKey(name)) {
                return s.variables.get(name);
            }
        }
        return Undefined.INSTANCE;
    }

    void set(String name, Object value) {
        variables.put(name, value);
    }
}
