package io.spotserve.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.MeterBinder;
import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.Reconfiguration;
import io.spotserve.engine.ServingEngine;
import io.spotserve.instance.InstanceType;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.function.ToDoubleFunction;

/**
 * Micrometer meters for a {@link ServingEngine}. Named like vLLM's where the meaning is the same, under the
 * {@code spotserve} prefix (Prometheus names shown):
 * <ul>
 *   <li>{@code spotserve_num_requests_running}, {@code spotserve_num_requests_waiting},
 *       {@code spotserve_kv_cache_usage_perc} (gauges; vLLM's {@code gpu_cache_usage_perc}, a fraction in [0, 1]);</li>
 *   <li>{@code spotserve_time_to_first_token_seconds}, {@code spotserve_e2e_request_latency_seconds}
 *       (histograms, engine clock) and {@code spotserve_prompt_tokens_total}: recorded from the
 *       {@link Completion}s handed to {@link #recordCompletion} by the front end that submitted them;</li>
 *   <li>{@code spotserve_generation_tokens_total}, {@code spotserve_requests_total{outcome}}
 *       (completed, failed, cancelled, rejected).</li>
 * </ul>
 * and SpotServe's own: {@code spotserve_reconfigurations_total{cause}}, {@code
 * spotserve_reconfiguration_pause_seconds_total}, {@code spotserve_migrated_bytes_total}, {@code
 * spotserve_kept_bytes_total}, {@code spotserve_reloaded_bytes_total}, {@code
 * spotserve_interrupted_requests_total} (recomputed from committed tokens), {@code
 * spotserve_resumed_requests_total} (resumed with a migrated or parked KV cache), {@code spotserve_restarts_total},
 * {@code spotserve_instances{market,state}}, {@code spotserve_preemption_notices_total}, {@code
 * spotserve_cost_usd{market}} and {@code spotserve_instance_hours{market}} (engine clock).
 *
 * <p>Everything but the histograms reads {@link ServingEngine#metrics()} when scraped (one snapshot per 100 ms at
 * most), so the meters follow the engine without hooks into it.
 */
public final class SpotServeMetrics implements MeterBinder, AutoCloseable {
    private static final long SNAPSHOT_NANOS = 100_000_000L;

    private final ServingEngine engine;
    private final List<Meter> meters = new ArrayList<>();
    private MeterRegistry registry;
    private Timer ttft;
    private Timer e2e;
    private Counter promptTokens;
    private EngineMetrics snapshot;
    private long snapshotAt;

    /** Meters for {@code engine}; nothing is registered until {@link #bindTo}. */
    public SpotServeMetrics(ServingEngine engine) {
        this.engine = Objects.requireNonNull(engine, "engine");
    }

    @Override
    public synchronized void bindTo(MeterRegistry registry) {
        if (this.registry != null) {
            throw new IllegalStateException("already bound to a registry");
        }
        this.registry = registry;
        gauge(registry, "spotserve.num.requests.running", "Requests on a pipeline", m -> m.running());
        gauge(registry, "spotserve.num.requests.waiting", "Requests waiting for a pipeline", m -> m.queued());
        gauge(registry, "spotserve.kv.cache.usage.perc", "Fraction of the pipelines' KV-cache capacity reserved by "
                + "running requests (1 = full)", m -> m.kvCacheUsage());
        ttft = add(Timer.builder("spotserve.time.to.first.token").description("Time to first token (engine clock)")
                .publishPercentileHistogram().minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofMinutes(5)).register(registry));
        e2e = add(Timer.builder("spotserve.e2e.request.latency").description("Request latency, submission to last "
                + "token (engine clock)").publishPercentileHistogram().minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofMinutes(30)).register(registry));
        promptTokens = add(Counter.builder("spotserve.prompt.tokens").description("Prompt tokens of recorded "
                + "completions").register(registry));
        counter(registry, "spotserve.generation.tokens", "Tokens generated", null, m -> m.generatedTokens());
        counter(registry, "spotserve.requests", "Requests by outcome", "outcome=completed", m -> m.completed());
        counter(registry, "spotserve.requests", "Requests by outcome", "outcome=failed", m -> m.failed());
        counter(registry, "spotserve.requests", "Requests by outcome", "outcome=cancelled", m -> m.cancelled());
        counter(registry, "spotserve.requests", "Requests by outcome", "outcome=rejected", m -> m.rejected());
        for (ReconfigurationCause cause : ReconfigurationCause.values()) {
            counter(registry, "spotserve.reconfigurations", "Reconfigurations by cause (one per cause it names)",
                    "cause=" + cause.tag(), m -> m.reconfigurations().stream()
                            .filter(r -> ReconfigurationCause.of(r).contains(cause)).count());
        }
        counter(registry, "spotserve.reconfiguration.pause.seconds", "Engine-clock time spent reconfiguring", null,
                m -> m.reconfigurations().stream().mapToLong(r -> r.pause().toNanos()).sum() / 1e9);
        counter(registry, "spotserve.migrated.bytes", "Weight and KV bytes copied device to device", null,
                m -> sum(m, Reconfiguration::bytesMigrated));
        counter(registry, "spotserve.kept.bytes", "Context bytes kept in place across reconfigurations", null,
                m -> sum(m, Reconfiguration::bytesKept));
        counter(registry, "spotserve.reloaded.bytes", "Weight bytes reloaded from the checkpoint", null,
                m -> sum(m, Reconfiguration::bytesLoaded));
        counter(registry, "spotserve.interrupted.requests", "Requests that lost their KV cache and recomputed", null,
                m -> sum(m, Reconfiguration::interruptedRequests));
        // the engine's own count: caches migrated by a reconfiguration and caches parked in host memory at a notice
        // and restored later (those no reconfiguration record counts)
        counter(registry, "spotserve.resumed.requests", "Requests resumed with a migrated or parked KV cache", null,
                EngineMetrics::migrations);
        counter(registry, "spotserve.restarts", "Times a request lost its KV cache and was recomputed", null,
                m -> m.restarts());
        counter(registry, "spotserve.preemption.notices", "Preemption notices received", null, m -> m.notices());
        for (InstanceType.Market market : InstanceType.Market.values()) {
            String mk = market.name().toLowerCase(Locale.ROOT);
            for (EngineMetrics.InstanceUsage.State state : EngineMetrics.InstanceUsage.State.values()) {
                add(Gauge.builder("spotserve.instances", this, self -> self.metrics().instances().stream()
                                .filter(i -> i.market() == market && i.state() == state).count())
                        .description("Instances the engine has used, by market and state")
                        .tags("market", mk, "state", state.name().toLowerCase(Locale.ROOT)).register(registry));
            }
            boolean spot = market == InstanceType.Market.SPOT;
            add(Gauge.builder("spotserve.cost.usd", this, self -> spot ? self.metrics().spotCost()
                            : self.metrics().onDemandCost())
                    .description("USD spent on instances so far (engine clock)").tags("market", mk).register(registry));
            add(Gauge.builder("spotserve.instance.hours", this, self -> spot ? self.metrics().spotInstanceHours()
                            : self.metrics().onDemandInstanceHours())
                    .description("Instance-hours so far (engine clock)").tags("market", mk).register(registry));
        }
    }

    /**
     * Records a finished request in the latency histograms and the prompt token counter. Front ends call it for
     * each {@link Completion} their requests complete with (the engine does not publish completions itself).
     */
    public void recordCompletion(Completion c) {
        Timer t = ttft;
        if (t == null) {
            throw new IllegalStateException("bind to a registry first");
        }
        t.record(c.timeToFirstToken());
        e2e.record(c.latency());
        promptTokens.increment(c.promptLength());
    }

    /** Removes every meter from the registry. */
    @Override
    public synchronized void close() {
        if (registry != null) {
            for (Meter m : meters) {
                registry.remove(m);
            }
            meters.clear();
        }
    }

    /** The engine's metrics, at most {@value #SNAPSHOT_NANOS} ns old (a scrape reads many meters). */
    synchronized EngineMetrics metrics() {
        long now = System.nanoTime();
        if (snapshot == null || now - snapshotAt > SNAPSHOT_NANOS) {
            snapshot = engine.metrics();
            snapshotAt = now;
        }
        return snapshot;
    }

    private static long sum(EngineMetrics m, java.util.function.ToLongFunction<Reconfiguration> f) {
        return m.reconfigurations().stream().mapToLong(f).sum();
    }

    private void gauge(MeterRegistry registry, String name, String description, ToDoubleFunction<EngineMetrics> f) {
        add(Gauge.builder(name, this, self -> f.applyAsDouble(self.metrics())).description(description)
                .register(registry));
    }

    private void counter(MeterRegistry registry, String name, String description, String tag,
                         ToDoubleFunction<EngineMetrics> f) {
        FunctionCounter.Builder<SpotServeMetrics> b = FunctionCounter.builder(name, this,
                self -> f.applyAsDouble(self.metrics())).description(description);
        if (tag != null) {
            String[] kv = tag.split("=", 2);
            b.tags(kv[0], kv[1]);
        }
        add(b.register(registry));
    }

    private <M extends Meter> M add(M meter) {
        meters.add(meter);
        return meter;
    }
}
