package io.spotserve.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.spotserve.testing.SharedData;
import io.spotserve.engine.Completion;
import io.spotserve.engine.EngineMetrics;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.Reconfiguration;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.SystemEngineClock;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The meters, scraped as Prometheus text, follow a real engine through requests and a preemption. */
@Timeout(120)
class SpotServeMetricsTest {

    /** One sample of the scrape; 0 when absent. */
    private static double value(String text, String sample) {
        for (String line : text.split("\n")) {
            if (line.startsWith(sample + " ")) {
                return Double.parseDouble(line.substring(sample.length() + 1).trim().split(" ")[0]);
            }
        }
        return 0;
    }

    private static String scrape(PrometheusMeterRegistry registry) throws InterruptedException {
        Thread.sleep(120); // past the 100 ms snapshot cache
        return registry.scrape();
    }

    @Test
    void metersMoveWithRequestsAndAPreemption() throws Exception {
        LlamaCheckpoint checkpoint = LlamaCheckpoint.load(SharedData.file("models/stories260K.bin"));
        Tokenizer tokenizer = Tokenizer.load(SharedData.file("models/tok512.bin"), checkpoint.config().vocabSize());
        SystemEngineClock clock = new SystemEngineClock();
        LocalInstanceProvider provider = new LocalInstanceProvider(clock, null);
        InstanceType spot = new InstanceType("local.2x", 2, 64L << 20, 1.9, InstanceType.Market.SPOT);
        Instance a = provider.add(spot);
        provider.add(spot);
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        try (ServingEngine engine = ServingEngine.builder().model(checkpoint, tokenizer).instances(provider).clock(clock)
                .parallelism(1, 2).maxBatch(2).build();
             SpotServeMetrics metrics = new SpotServeMetrics(engine)) {
            metrics.bindTo(registry);
            String idle = scrape(registry);
            assertEquals(0, value(idle, "spotserve_generation_tokens_total"));
            assertEquals(0, value(idle, "spotserve_preemption_notices_total"));

            List<CompletableFuture<Completion>> futures = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                futures.add(engine.submit(GenerationRequest.of(i % 2 == 0 ? "Once upon a time" : "One day", 400)));
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (engine.metrics().running() < 4 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            String busy = scrape(registry);
            assertTrue(value(busy, "spotserve_num_requests_running") >= 1, busy);
            // 4 requests reserve (prompt + 400) positions each of 2 pipelines x B 2 x seq_len 512
            double kv = value(busy, "spotserve_kv_cache_usage_perc");
            assertTrue(kv > 0.75 && kv <= 1.0, busy);
            assertEquals(2, value(busy, "spotserve_instances{market=\"spot\",state=\"running\"}"), busy);
            provider.preempt(a.id(), Duration.ofMillis(100));
            long tokens = 0;
            for (CompletableFuture<Completion> f : futures) {
                Completion c = f.join();
                metrics.recordCompletion(c);
                tokens += c.tokens().length;
            }
            Thread.sleep(300); // the noticed instance's deadline passes
            EngineMetrics m = engine.metrics();
            String done = scrape(registry);
            assertEquals(tokens, value(done, "spotserve_generation_tokens_total"), done);
            assertEquals(4, value(done, "spotserve_requests_total{outcome=\"completed\"}"), done);
            assertEquals(4, value(done, "spotserve_time_to_first_token_seconds_count"), done);
            assertEquals(4, value(done, "spotserve_e2e_request_latency_seconds_count"), done);
            long prompt = futures.stream().mapToLong(f -> f.join().promptLength()).sum();
            assertEquals(prompt, value(done, "spotserve_prompt_tokens_total"), done);
            assertEquals(0, value(done, "spotserve_num_requests_running"), done);
            assertEquals(0, value(done, "spotserve_kv_cache_usage_perc"), done);
            assertEquals(1, value(done, "spotserve_preemption_notices_total"), done);
            assertEquals(1, value(done, "spotserve_instances{market=\"spot\",state=\"ended\"}"), done);
            assertEquals(1, value(done, "spotserve_instances{market=\"spot\",state=\"running\"}"), done);
            assertTrue(value(done, "spotserve_reconfigurations_total{cause=\"preemption_notice\"}") >= 1, done);
            assertEquals(1, value(done, "spotserve_reconfigurations_total{cause=\"instance_acquired\"}"), done);
            long kept = m.reconfigurations().stream().mapToLong(Reconfiguration::bytesKept).sum();
            long migrated = m.reconfigurations().stream().mapToLong(Reconfiguration::bytesMigrated).sum();
            assertEquals(kept, value(done, "spotserve_kept_bytes_total"), done);
            assertEquals(migrated, value(done, "spotserve_migrated_bytes_total"), done);
            // the preemption hit running requests: they resumed with their KV cache (moved by the reconfiguration,
            // or parked in host memory when the surviving pipeline was full and restored once it had room: then no
            // reconfiguration record counts them, only the engine's migrations) or, with too little time left to
            // move it on a busy machine, recomputed
            long resumed = m.reconfigurations().stream().mapToLong(Reconfiguration::resumedRequests).sum();
            long interrupted = m.reconfigurations().stream().mapToLong(Reconfiguration::interruptedRequests).sum();
            assertTrue(m.migrations() + m.restarts() >= 1, m.toString());
            assertTrue(m.migrations() >= resumed && m.restarts() >= interrupted, m.toString());
            assertEquals(m.migrations(), value(done, "spotserve_resumed_requests_total"), done);
            assertEquals(interrupted, value(done, "spotserve_interrupted_requests_total"), done);
            assertEquals(m.restarts(), value(done, "spotserve_restarts_total"), done);
            assertTrue(value(done, "spotserve_reconfiguration_pause_seconds_total") > 0, done);
            assertTrue(value(done, "spotserve_cost_usd{market=\"spot\"}") > 0, done);
        }
        assertTrue(registry.getMeters().isEmpty(), "close removed the meters");
    }

    @Test
    void causesAreTheEnginesTriggers() {
        assertEquals(EnumSet.of(ReconfigurationCause.PREEMPTION_NOTICE, ReconfigurationCause.INSTANCE_LOST,
                        ReconfigurationCause.PREEMPTION),
                ReconfigurationCause.of(record(Reconfiguration.Trigger.NOTICE, Reconfiguration.Trigger.LOST,
                        Reconfiguration.Trigger.DEADLINE)));
        assertEquals(EnumSet.of(ReconfigurationCause.INSTANCE_ACQUIRED),
                ReconfigurationCause.of(record(Reconfiguration.Trigger.ACQUIRED)));
        assertEquals(EnumSet.of(ReconfigurationCause.REPLAN, ReconfigurationCause.INSTANCE_RELEASED),
                ReconfigurationCause.of(record(Reconfiguration.Trigger.RELEASED, Reconfiguration.Trigger.REPLAN)));
        // every trigger has its tag
        assertEquals(Reconfiguration.Trigger.values().length, ReconfigurationCause.values().length);
        assertEquals(EnumSet.allOf(ReconfigurationCause.class),
                ReconfigurationCause.of(record(Reconfiguration.Trigger.values())));
    }

    private static Reconfiguration record(Reconfiguration.Trigger... triggers) {
        return new Reconfiguration(java.time.Duration.ZERO, "test", java.util.Set.of(triggers), "[]", "[]", null, 0, 0,
                0, 0, 0, 0, 0, 0, java.time.Duration.ZERO);
    }
}
