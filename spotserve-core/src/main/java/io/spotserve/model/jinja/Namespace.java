package io.spotserve.model.jinja;

import java.util.LinkedHashMap;
import java.util.Map;

/** What {@code namespace(...)} returns: a mutable bag of attributes that {@code {% set ns.x = ... %}} may change. */
final class Namespace {
    final Map<String, Object> attributes = new LinkedHashMap<>();
}
