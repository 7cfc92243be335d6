package io.spotserve.metrics;

import io.spotserve.engine.Reconfiguration;
import java.util.EnumSet;
import java.util.Set;

/** Why the engine reconfigured, as a small fixed set of tag values: one per {@link Reconfiguration.Trigger}. */
enum ReconfigurationCause {
    PREEMPTION_NOTICE(Reconfiguration.Trigger.NOTICE),
    PREEMPTION(Reconfiguration.Trigger.DEADLINE),
    INSTANCE_ACQUIRED(Reconfiguration.Trigger.ACQUIRED),
    INSTANCE_RELEASED(Reconfiguration.Trigger.RELEASED),
    INSTANCE_LOST(Reconfiguration.Trigger.LOST),
    PIPELINE_RETIRED(Reconfiguration.Trigger.RETIRED),
    REPLAN(Reconfiguration.Trigger.REPLAN);

    private final Reconfiguration.Trigger trigger;

    ReconfigurationCause(Reconfiguration.Trigger trigger) {
        this.trigger = trigger;
    }

    /** The tag value, e.g. {@code preemption_notice}. */
    String tag() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** The distinct causes of a reconfiguration (each counted once per reconfiguration). */
    static Set<ReconfigurationCause> of(Reconfiguration r) {
        Set<ReconfigurationCause> out = EnumSet.noneOf(ReconfigurationCause.class);
        for (ReconfigurationCause k : values()) {
            if (r.triggers().contains(k.trigger)) {
                out.add(k);
            }
        }
        return out;
    }
}
