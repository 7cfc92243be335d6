package io.spotserve.instance;

import java.time.Duration;
import java.util.Objects;

/**
 * Something the cloud did to one instance. The three cases are the only membership changes SpotServe
 * reacts to (§1.3, §1.4 of the paper): a new instance is usable, an instance will be taken away at a known
 * deadline (the grace period), or an instance is gone; and, optionally and before its {@link Acquired}, that a new
 * instance is on its way ({@link Launching}, the paper's acquisition notice). Times are offsets on the engine's
 * clock, so the same events drive a real deployment and a simulated replay.
 */
public sealed interface InstanceEvent {
    /** The instance this event is about. */
    String instanceId();

    /** When the event happened, as an offset on the engine clock. */
    Duration at();

    /** A new instance finished launching and can take work. */
    record Acquired(Instance instance, Duration at) implements InstanceEvent {
        public Acquired {
            Objects.requireNonNull(instance, "instance");
            requireTime(at);
        }

        @Override
        public String instanceId() {
            return instance.id();
        }
    }

    /**
     * The acquisition notice (SpotServe §3.4): the cloud granted an instance that will be usable at {@code readyAt},
     * once it has booted and initialized; its {@link Acquired} follows. Optional: a provider that cannot tell sends
     * only {@code Acquired}. With it, the engine's interruption arranger decides when the newcomer joins: the running
     * batches keep decoding while it initializes (S_t = the fewest steps that cover the initialization time), their
     * caches then move to the new configuration, or they finish first, or they are rerouted without their caches
     * when moving them would take longer than those steps.
     */
    record Launching(String instanceId, Duration at, Duration readyAt) implements InstanceEvent {
        public Launching {
            Objects.requireNonNull(instanceId, "instanceId");
            requireTime(at);
            requireTime(readyAt);
            if (readyAt.compareTo(at) < 0) {
                throw new IllegalArgumentException(
                        "instance " + instanceId + " cannot be ready at " + readyAt + ", before its launch notice at " + at);
            }
        }

        /** The initialization time this notice announces (T⁺ of the paper). */
        public Duration startup() {
            return readyAt.minus(at);
        }
    }

    /**
     * The cloud will take the instance away at {@code deadline}; until then it still computes and can send
     * its context to the survivors.
     */
    record PreemptionNotice(String instanceId, Duration at, Duration deadline) implements InstanceEvent {
        public PreemptionNotice {
            Objects.requireNonNull(instanceId, "instanceId");
            requireTime(at);
            requireTime(deadline);
            if (deadline.compareTo(at) < 0) {
                throw new IllegalArgumentException(
                        "preemption deadline " + deadline + " is before the notice time " + at + " for " + instanceId);
            }
        }

        /** The grace period this notice leaves. */
        public Duration grace() {
            return deadline.minus(at);
        }
    }

    /** The instance is gone (preempted, crashed or released); its memory content is lost. */
    record Terminated(String instanceId, Duration at) implements InstanceEvent {
        public Terminated {
            Objects.requireNonNull(instanceId, "instanceId");
            requireTime(at);
        }
    }

    private static void requireTime(Duration t) {
        Objects.requireNonNull(t, "time");
        if (t.isNegative()) {
            throw new IllegalArgumentException("event time must be >= 0, was " + t);
        }
    }
}
