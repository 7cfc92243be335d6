package io.spotserve.worker.notice;

import java.time.Duration;
import java.util.Objects;

/**
 * A preemption notice read on the instance itself.
 *
 * @param source which watcher saw it: aws, gcp, azure or signal
 * @param grace  how long from the moment it was read until the cloud takes the instance (never negative)
 * @param detail the provider's own words, for the log
 */
public record CloudNotice(String source, Duration grace, String detail) {
    public CloudNotice {
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(grace, "grace");
        Objects.requireNonNull(detail, "detail");
        if (grace.isNegative()) {
            grace = Duration.ZERO; // the deadline already passed: act at once
        }
    }
}
