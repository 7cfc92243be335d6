package io.spotserve.metrics;

import java.util.EnumSet;
import java.util.Set;

/**
 * Why the engine reconfigured, as a small fixed set of tag values: the engine records free-text reasons such as
 * {@code "notice i-3, acquired i-7"}, one clause per event that triggered the change.
 */
enum ReconfigurationCause {
    PREEMPTION_NOTICE("notice "),
    PREEMPTION("deadline of "),
    INSTANCE_ACQUIRED("acquired "),
    INSTANCE_RELEASED("releas"),
    INSTANCE_LOST("lost "),
    PIPELINE_RETIRED("retired "),
    OTHER("");

    private final String prefix;

    ReconfigurationCause(String prefix) {
        this.prefix = prefix;
    }

    /** The tag value, e.g. {@code preemption_notice}. */
    String tag() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** The distinct causes named by a reason text (each counted once per reconfiguration). */
    static Set<ReconfigurationCause> of(String reason) {
        Set<ReconfigurationCause> out = EnumSet.noneOf(ReconfigurationCause.class);
        for (String clause : reason.split(",")) {
            String c = clause.trim();
            ReconfigurationCause found = OTHER;
            for (ReconfigurationCause k : values()) {
                if (k != OTHER && c.startsWith(k.prefix)) {
                    found = k;
                    break;
                }
            }
            out.add(found);
        }
        return out;
    }
}
