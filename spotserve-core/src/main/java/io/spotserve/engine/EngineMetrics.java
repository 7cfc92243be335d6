package io.spotserve.engine;

import io.spotserve.instance.InstanceType;

import java.time.Duration;
import java.util.List;

/**
 * A snapshot of what the engine did, for the metrics the paper reports (§6): request latency and time to
 * first token percentiles, throughput, every reconfiguration, and instance-hours and cost per market.
 * Percentiles use the nearest-rank method over the most recent completions (a bounded window).
 *
 * @param now                 engine-clock time of the snapshot
 * @param submitted           requests accepted
 * @param rejected            requests refused at submission (queue full, engine closed)
 * @param completed           requests that completed
 * @param failed              accepted requests that failed (deadline, close)
 * @param cancelled           accepted requests cancelled by the caller
 * @param queued              requests waiting for a pipeline
 * @param running             requests on a pipeline
 * @param generatedTokens     tokens committed
 * @param restarts            times a request lost its KV cache and was recomputed
 * @param migrations          times a request resumed on a new configuration with its migrated KV cache
 * @param migratedBytes       weight and KV-cache bytes reconfigurations copied from one device to another
 * @param latency             request latency percentiles
 * @param timeToFirstToken    time-to-first-token percentiles
 * @param reconfigurations    every configuration change, oldest first
 * @param spotInstanceHours   instance-hours of spot instances
 * @param onDemandInstanceHours instance-hours of on-demand instances
 * @param spotCost            USD for spot instances
 * @param onDemandCost        USD for on-demand instances
 * @param instances           every instance the engine has used, in order of acquisition, with its state now
 * @param notices             preemption notices received (a repeated notice for the same instance counts once)
 * @param kvCacheUsage        fraction in [0, 1] of the pipelines' KV-cache capacity (B sequences of seq_len
 *                            positions each) that running requests have reserved (prompt + maxNewTokens each)
 */
public record EngineMetrics(Duration now, long submitted, long rejected, long completed, long failed, long cancelled,
                            int queued, int running, long generatedTokens, long restarts, long migrations, long migratedBytes,
                            Percentiles latency,
                            Percentiles timeToFirstToken, List<Reconfiguration> reconfigurations,
                            double spotInstanceHours, double onDemandInstanceHours, double spotCost,
                            double onDemandCost, List<InstanceUsage> instances, long notices,
                            double kvCacheUsage) {

    public EngineMetrics {
        reconfigurations = List.copyOf(reconfigurations);
        instances = List.copyOf(instances);
    }

    /**
     * One instance the engine has used.
     *
     * @param id     the provider's instance id
     * @param market spot or on-demand
     * @param state  what it is doing now
     */
    public record InstanceUsage(String id, InstanceType.Market market, State state) {
        /** Where an instance is in its life, as the engine sees it. */
        public enum State {
            /** Serving, no notice received. */
            RUNNING,
            /** A preemption notice was received; it is still there until its deadline. */
            NOTICED,
            /** Gone: preempted, terminated or released. */
            ENDED
        }
    }

    /** Below it, {@code Duration.toNanos()} cannot overflow. */
    private static final Duration NANOS_RANGE = Duration.ofSeconds(9_000_000_000L);

    /** Committed tokens per second of engine-clock time since the engine started. */
    public double tokensPerSecond() {
        double s = now.compareTo(NANOS_RANGE) < 0 ? now.toNanos() / 1e9 : now.getSeconds();
        return s > 0 ? generatedTokens / s : 0;
    }

    /** Completed requests per second of engine-clock time since the engine started. */
    public double requestsPerSecond() {
        double s = now.compareTo(NANOS_RANGE) < 0 ? now.toNanos() / 1e9 : now.getSeconds();
        return s > 0 ? completed / s : 0;
    }

    /** Total USD spent on instances. */
    public double totalCost() {
        return spotCost + onDemandCost;
    }

    /** Instance-hours of both markets together. */
    public double instanceHours() {
        return spotInstanceHours + onDemandInstanceHours;
    }

    /**
     * The on-demand-only baseline of the paper's cost comparison (§6): what the same instance-hours would have
     * cost had every spot hour been bought on-demand at {@code onDemandPricePerHour} (on-demand hours keep the
     * price they were bought at). Hours run from acquisition to termination or release (or the snapshot), on the
     * engine clock.
     *
     * @throws IllegalArgumentException if the price is negative, NaN or infinite
     */
    public double onDemandOnlyCost(double onDemandPricePerHour) {
        if (!(onDemandPricePerHour >= 0) || Double.isInfinite(onDemandPricePerHour)) {
            throw new IllegalArgumentException("onDemandPricePerHour must be a finite value >= 0, was "
                    + onDemandPricePerHour);
        }
        return onDemandCost + spotInstanceHours * onDemandPricePerHour;
    }

    /**
     * Nearest-rank percentiles of a sample of durations.
     *
     * @param count samples the percentiles were taken over (0: all are zero)
     */
    public record Percentiles(int count, Duration p50, Duration p90, Duration p99, Duration max) {
        static final Percentiles EMPTY = new Percentiles(0, Duration.ZERO, Duration.ZERO, Duration.ZERO, Duration.ZERO);

        /** Percentiles of {@code sortedNanos[0..n)}, sorted ascending. */
        static Percentiles of(long[] sortedNanos, int n) {
            if (n == 0) {
                return EMPTY;
            }
            return new Percentiles(n, Duration.ofNanos(rank(sortedNanos, n, 50)), Duration.ofNanos(rank(sortedNanos, n, 90)),
                    Duration.ofNanos(rank(sortedNanos, n, 99)), Duration.ofNanos(sortedNanos[n - 1]));
        }

        /** Nearest rank: the smallest value with at least q% of the sample at or below it. */
        static long rank(long[] sorted, int n, int q) {
            int idx = (int) Math.ceil(q / 100.0 * n) - 1;
            return sorted[Math.max(0, Math.min(n - 1, idx))];
        }
    }
}
