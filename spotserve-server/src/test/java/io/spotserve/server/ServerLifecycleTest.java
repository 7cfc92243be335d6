package io.spotserve.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.InternalServerException;
import com.openai.errors.RateLimitException;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import io.spotserve.engine.GenerationRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Admission, shutdown, readiness and preemption as a client of the server sees them. */
@Timeout(180)
class ServerLifecycleTest {
    /**
     * Blocking tasks each get a thread of their own: from JDK 25 on, {@code CompletableFuture}'s default executor is the
     * common pool even when its parallelism is 1 (2 CPUs), so a second task waited for the first to finish.
     */
    private static final Executor OWN_THREAD = r -> {
        Thread t = new Thread(r, "test-task");
        t.setDaemon(true);
        t.start();
    };

    private static final HttpClient HTTP = HttpClient.newHttpClient();

    private static HttpResponse<String> get(SpotServeServer s, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + path))
                .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static CompletionCreateParams params(String prompt, int tokens) {
        return CompletionCreateParams.builder().model("spotserve").prompt(prompt).maxTokens(tokens).temperature(0.0)
                .build();
    }

    @Test
    void fullQueueIs429AndShuttingDownIs503WhileRequestsInFlightFinish() throws Exception {
        // no instances: accepted requests wait in the queue, which holds one
        try (TestModel.Served served = TestModel.engine(0, b -> b.queueCapacity(1).drainTimeout(Duration.ofSeconds(2)))) {
            SpotServeServer server = SpotServeServer.builder().engine(served.engine()).port(0)
                    .drainTimeout(Duration.ofSeconds(3)).build().start();
            try {
                OpenAIClient client = SpotServeServerTest.client(server, "unused");
                HttpResponse<String> health = get(server, "/health");
                assertEquals(503, health.statusCode(), "no configuration is serving: " + health.body());
                assertTrue(health.body().contains("no_configuration"), health.body());

                CompletableFuture<Completion> waiting = CompletableFuture.supplyAsync(
                        () -> client.completions().create(params("One day", 4)), OWN_THREAD);
                long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
                while (served.engine().metrics().queued() < 1 && System.nanoTime() < deadline) {
                    Thread.sleep(10);
                }
                RateLimitException full = assertThrows(RateLimitException.class,
                        () -> client.completions().create(params("One day", 4)));
                assertEquals(429, full.statusCode());
                assertEquals("queue_full", full.code().orElse(null));

                // shutting down: new requests get 503 while the one in flight is drained
                CompletableFuture<Void> closing = CompletableFuture.runAsync(server::close, OWN_THREAD);
                deadline = System.nanoTime() + Duration.ofSeconds(2).toNanos();
                while (get(server, "/health").body().contains("no_configuration") && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                String status = get(server, "/health").body();
                assertTrue(status.contains("shutting_down"), status);
                InternalServerException unavailable = assertThrows(InternalServerException.class,
                        () -> client.completions().create(params("One day", 4)));
                assertEquals(503, unavailable.statusCode());
                closing.get(20, TimeUnit.SECONDS);
                assertTrue(waiting.isDone() || served.engine().metrics().queued() == 1);
            } finally {
                server.close();
            }
        }
    }

    /**
     * Four streams run, two on each instance's pipeline; one instance is preempted (with or without grace) once
     * all four have started. Both clients read exactly the text of an undisturbed run, with no error: only latency changes.
     * The grace is shorter than what is left of the streams (≈ 470 tokens, tens of milliseconds even with today's
     * kernels): with 100 ms, a fast run let the doomed streams finish inside the grace and nothing was interrupted.
     */
    @ParameterizedTest(name = "grace {0} ms")
    @ValueSource(ints = {0, 5})
    void preemptionDuringAStreamIsInvisibleExceptForLatency(int graceMs) throws Exception {
        String[] prompts = {"Once upon a time", "The little dog", "Lily and Ben", "One day"};
        int tokens = 480;
        try (TestModel.Served served = TestModel.engine(2, b -> b.parallelism(1, 2).maxBatch(2))) {
            List<String> expected = new ArrayList<>();
            for (String p : prompts) {
                expected.add(served.engine().submit(GenerationRequest.of(p, tokens)).join().text());
            }
            SpotServeServer server = SpotServeServer.builder().engine(served.engine()).port(0).build().start();
            try {
                OpenAIClient client = SpotServeServerTest.client(server, "unused");
                CountDownLatch started = new CountDownLatch(prompts.length);
                List<CompletableFuture<String>> streams = new ArrayList<>();
                for (String p : prompts) {
                    streams.add(CompletableFuture.supplyAsync(() -> {
                        StringBuilder text = new StringBuilder();
                        try (StreamResponse<Completion> stream = client.completions().createStreaming(params(p, tokens))) {
                            Iterator<Completion> it = stream.stream().iterator();
                            boolean first = true;
                            while (it.hasNext()) {
                                text.append(it.next().choices().get(0).text());
                                if (first && text.length() > 0) {
                                    started.countDown();
                                    first = false;
                                }
                            }
                        }
                        return text.toString();
                    }, OWN_THREAD));
                }
                assertTrue(started.await(60, TimeUnit.SECONDS), "both streams started");
                long before = served.engine().metrics().restarts() + served.engine().metrics().migrations();
                served.provider().preempt(served.instances().get(0).id(), Duration.ofMillis(graceMs));
                List<String> got = streams.stream().map(CompletableFuture::join).collect(Collectors.toList());
                assertEquals(expected, got);
                var m = served.engine().metrics();
                assertTrue(m.restarts() + m.migrations() > before, "the preemption hit a running request: " + m);
                assertEquals(1, m.notices(), m.toString());
                String metrics = get(server, "/metrics").body();
                assertEquals(1, PrometheusText.value(metrics, "spotserve_instances", "market=\"spot\",state=\"ended\""),
                        metrics);
                assertTrue(PrometheusText.value(metrics, "spotserve_reconfigurations_total",
                        graceMs > 0 ? "cause=\"preemption_notice\"" : "cause=\"preemption\"") >= 1, metrics);
                // the hit requests resumed with their KV cache or recomputed (grace 0, or too little time to move it)
                assertTrue(PrometheusText.value(metrics, "spotserve_resumed_requests_total", "")
                        + PrometheusText.value(metrics, "spotserve_interrupted_requests_total", "") >= 1, metrics);
            } finally {
                server.close();
            }
        }
    }
}
