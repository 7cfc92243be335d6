package io.spotserve.instance;

import java.time.Duration;
import java.util.Objects;

/**
 * Something the cloud did to one instance. The three cases are the only membership changes SpotServe
 * reacts to (§1.3, §1.4 of the paper): a new instance is usable, an instance will be taken away at a known
 * deadline (the grace period), or an instance is gone. Times are offsets on the engine's clock, so the same
 * events drive a real deployment and a simulated replay.
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
