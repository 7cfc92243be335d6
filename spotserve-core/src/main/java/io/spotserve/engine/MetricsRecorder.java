package io.spotserve.engine;

import io.spotserve.instance.Instance;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Counters behind {@link EngineMetrics}: written by the engine thread, read by any thread through
 * {@link #snapshot}. Latency samples are kept in bounded rings (the most recent {@value #WINDOW}).
 */
final class MetricsRecorder {
    static final int WINDOW = 10_000;

    private final long[] latencies = new long[WINDOW];
    private final long[] ttfts = new long[WINDOW];
    private int samples;
    private long submitted;
    private long rejected;
    private long completed;
    private long failed;
    private long cancelled;
    private long generated;
    private long restarts;
    private long migrations;
    private long migratedBytes;
    private int queued;
    private int running;
    private final List<Reconfiguration> reconfigurations = new ArrayList<>();
    private final Map<String, Usage> usage = new LinkedHashMap<>();

    private long notices;
    private double kvCacheUsage;

    private record Usage(Instance instance, Duration from, Duration to, boolean noticed) {
    }

    synchronized void submitted() {
        submitted++;
    }

    synchronized void rejected() {
        rejected++;
    }

    synchronized void completed(Completion c) {
        int slot = (int) (completed % WINDOW);
        latencies[slot] = saturatedNanos(c.latency());
        ttfts[slot] = saturatedNanos(c.timeToFirstToken());
        samples = Math.min(WINDOW, samples + 1);
        completed++;
    }

    /** A completion counted by {@link #completed} lost the race with a cancel: count it as cancelled. */
    synchronized void completionLost() {
        completed--;
        cancelled++;
    }

    /** A failure counted by {@link #failed} lost the race with a cancel. */
    synchronized void failureLost() {
        failed--;
        cancelled++;
    }

    synchronized void failed() {
        failed++;
    }

    synchronized void cancelled() {
        cancelled++;
    }

    synchronized void generated(int n) {
        generated += n;
    }

    synchronized void migrated(int requests, long bytes) {
        migrations += requests;
        migratedBytes += bytes;
    }

    synchronized void restarted(int n) {
        restarts += n;
    }

    synchronized void load(int queued, int running, double kvCacheUsage) {
        this.queued = queued;
        this.running = running;
        this.kvCacheUsage = kvCacheUsage;
    }

    synchronized void reconfigured(Reconfiguration r) {
        reconfigurations.add(r);
    }

    synchronized void instanceStarted(Instance i, Duration at) {
        usage.putIfAbsent(i.id(), new Usage(i, at, null, false));
    }

    synchronized void instanceEnded(String id, Duration at) {
        Usage u = usage.get(id);
        if (u != null && u.to == null) {
            usage.put(id, new Usage(u.instance, u.from, at, u.noticed));
        }
    }

    /** A first preemption notice for instance {@code id}. */
    synchronized void noticed(String id) {
        notices++;
        Usage u = usage.get(id);
        if (u != null) {
            usage.put(id, new Usage(u.instance, u.from, u.to, true));
        }
    }

    synchronized EngineMetrics snapshot(Duration now) {
        long[] lat = Arrays.copyOf(latencies, samples);
        long[] ttf = Arrays.copyOf(ttfts, samples);
        Arrays.sort(lat);
        Arrays.sort(ttf);
        double spotHours = 0;
        double odHours = 0;
        double spotCost = 0;
        double odCost = 0;
        List<EngineMetrics.InstanceUsage> instances = new ArrayList<>(usage.size());
        for (Usage u : usage.values()) {
            instances.add(new EngineMetrics.InstanceUsage(u.instance.id(), u.instance.type().market(),
                    u.to != null ? EngineMetrics.InstanceUsage.State.ENDED : u.noticed
                            ? EngineMetrics.InstanceUsage.State.NOTICED : EngineMetrics.InstanceUsage.State.RUNNING));
            Duration end = u.to != null ? u.to : now;
            double hours = Math.max(0, saturatedNanos(end.minus(u.from))) / 3.6e12;
            double cost = hours * u.instance.type().pricePerHour();
            if (u.instance.type().preemptible()) {
                spotHours += hours;
                spotCost += cost;
            } else {
                odHours += hours;
                odCost += cost;
            }
        }
        return new EngineMetrics(now, submitted, rejected, completed, failed, cancelled, queued, running, generated,
                restarts, migrations, migratedBytes, EngineMetrics.Percentiles.of(lat, samples), EngineMetrics.Percentiles.of(ttf, samples),
                reconfigurations, spotHours, odHours, spotCost, odCost, instances, notices, kvCacheUsage);
    }

    /** Nanoseconds of {@code d}, saturated at Long.MAX_VALUE (a simulated clock may run centuries ahead). */
    private static long saturatedNanos(Duration d) {
        try {
            return d.toNanos();
        } catch (ArithmeticException e) {
            return d.isNegative() ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
    }
}
