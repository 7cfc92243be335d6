package io.spotserve.server;

import io.spotserve.model.ChatMessage;

import io.spotserve.model.ChatTemplate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.errors.OpenAIServiceException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import io.spotserve.engine.GenerationRequest;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The server on the real stories260K model, driven by the official OpenAI Java client (and, where the client
 * hides the wire, by the JDK's HTTP client): answers equal the engine's own for the same greedy request.
 */
@Timeout(120)
class SpotServeServerTest {
    static final String KEY = "test-key-123";
    static TestModel.Served served;
    static SpotServeServer server;
    static OpenAIClient client;
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    @BeforeAll
    static void start() throws IOException {
        served = TestModel.engine(2, b -> b.maxBatch(4));
        server = SpotServeServer.builder().engine(served.engine()).port(0).apiKey(KEY).maxBodyBytes(64 * 1024)
                .build().start();
        client = client(server, KEY);
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
        if (served != null) {
            served.close();
        }
    }

    static OpenAIClient client(SpotServeServer s, String key) {
        return OpenAIOkHttpClient.builder().baseUrl(s.baseUri().toString()).apiKey(key).maxRetries(0)
                .timeout(Duration.ofSeconds(60)).build();
    }

    /** The engine's own greedy text for {@code prompt}. */
    static io.spotserve.engine.Completion direct(String prompt, int tokens) {
        return served.engine().submit(GenerationRequest.of(prompt, tokens)).join();
    }

    static HttpResponse<String> raw(String method, String path, String body, String key) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
                .timeout(Duration.ofSeconds(60)).method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json");
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void completionEqualsTheEnginesGreedyTextWithUsage() {
        io.spotserve.engine.Completion expected = direct("Once upon a time", 24);
        Completion c = client.completions().create(CompletionCreateParams.builder().model("spotserve")
                .prompt("Once upon a time").maxTokens(24).temperature(0.0).build());
        assertEquals(expected.text(), c.choices().get(0).text());
        assertEquals(expected.reason() == io.spotserve.engine.Completion.FinishReason.LENGTH ? "length" : "stop",
                c.choices().get(0).finishReason().asString());
        assertEquals(expected.tokens().length, c.usage().orElseThrow().completionTokens());
        assertEquals(expected.promptLength(), c.usage().orElseThrow().promptTokens());
        assertEquals(c.usage().orElseThrow().promptTokens() + c.usage().orElseThrow().completionTokens(),
                c.usage().orElseThrow().totalTokens());
    }

    @Test
    void streamedCompletionConcatenatesToTheSameText() {
        io.spotserve.engine.Completion expected = direct("The little dog", 30);
        StringBuilder text = new StringBuilder();
        String finish = null;
        try (StreamResponse<Completion> stream = client.completions().createStreaming(CompletionCreateParams.builder()
                .model("spotserve").prompt("The little dog").maxTokens(30).temperature(0.0).build())) {
            for (Iterator<Completion> it = stream.stream().iterator(); it.hasNext(); ) {
                Completion chunk = it.next();
                text.append(chunk.choices().get(0).text());
                var reason = chunk.choices().get(0)._finishReason().asKnown();
                if (reason.isPresent()) {
                    finish = reason.get().asString();
                }
            }
        }
        assertEquals(expected.text(), text.toString());
        assertEquals("length", finish);
    }

    @Test
    void chatStreamingAndNotAgreeAndUseThePlainTemplate() throws Exception {
        String prompt = ChatTemplate.plain().render(List.of(new ChatMessage("system", "Tell a story."),
                new ChatMessage("user", "A cat")));
        io.spotserve.engine.Completion expected = direct(prompt, 20);
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model("spotserve")
                .addSystemMessage("Tell a story.").addUserMessage("A cat").maxCompletionTokens(20).temperature(0.0)
                .seed(7).build();
        ChatCompletion c = client.chat().completions().create(params);
        assertEquals(expected.text(), c.choices().get(0).message().content().orElseThrow());
        assertEquals("length", c.choices().get(0).finishReason().asString());
        assertEquals(20, c.usage().orElseThrow().completionTokens());

        StringBuilder text = new StringBuilder();
        String finish = null;
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
            for (Iterator<ChatCompletionChunk> it = stream.stream().iterator(); it.hasNext(); ) {
                ChatCompletionChunk chunk = it.next();
                for (ChatCompletionChunk.Choice choice : chunk.choices()) {
                    choice.delta().content().ifPresent(text::append);
                    if (choice.finishReason().isPresent()) {
                        finish = choice.finishReason().get().asString();
                    }
                }
            }
        }
        assertEquals(expected.text(), text.toString());
        assertEquals("length", finish);

        // on the wire: events, the usage chunk when asked for, and [DONE] last
        HttpResponse<String> r = raw("POST", "/v1/chat/completions", "{\"model\":\"spotserve\",\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true},\"max_tokens\":5,\"temperature\":0,"
                + "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", KEY);
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<String> events = r.body().lines().filter(l -> l.startsWith("data: ")).toList();
        assertEquals("data: [DONE]", events.get(events.size() - 1));
        JsonObject usage = JsonParser.parseString(events.get(events.size() - 2).substring(6)).getAsJsonObject();
        assertEquals(5, usage.getAsJsonObject("usage").get("completion_tokens").getAsInt(), usage.toString());
        assertEquals(0, usage.getAsJsonArray("choices").size());
    }

    @Test
    void stopSequencesEndTheTextBeforeThemStreamingOrNot() {
        String full = direct("Once upon a time", 60).text();
        // a stop sequence from the middle of the text: the answer is everything before its first occurrence
        String stop = full.substring(full.length() / 2, full.length() / 2 + 3);
        String before = full.substring(0, full.indexOf(stop));
        CompletionCreateParams params = CompletionCreateParams.builder().model("spotserve").prompt("Once upon a time")
                .maxTokens(60).temperature(0.0).stop(stop).build();
        Completion c = client.completions().create(params);
        assertEquals(before, c.choices().get(0).text());
        assertEquals("stop", c.choices().get(0).finishReason().asString());
        try (StreamResponse<Completion> stream = client.completions().createStreaming(params)) {
            String streamed = stream.stream().map(x -> x.choices().get(0).text()).collect(Collectors.joining());
            assertEquals(before, streamed);
        }
    }

    @Test
    void badFieldsAre400NamingTheField() {
        record Case(CompletionCreateParams params, String field) {
        }
        CompletionCreateParams.Builder base = CompletionCreateParams.builder().model("spotserve").prompt("Hi");
        for (Case k : List.of(new Case(base.build().toBuilder().n(2).build(), "n"),
                new Case(base.build().toBuilder().temperature(3.5).build(), "temperature"),
                new Case(base.build().toBuilder().topP(0.0).build(), "top_p"),
                new Case(base.build().toBuilder().maxTokens(100_000).build(), "max_tokens"),
                new Case(base.build().toBuilder().maxTokens(0).build(), "max_tokens"),
                new Case(base.build().toBuilder().echo(true).build(), "echo"),
                new Case(base.build().toBuilder().bestOf(3).build(), "best_of"))) {
            BadRequestException e = assertThrows(BadRequestException.class, () -> client.completions().create(k.params()),
                    k.field());
            assertEquals(400, e.statusCode());
            assertEquals(k.field(), e.param().orElse(null), e.getMessage());
            assertEquals("invalid_request_error", e.type().orElse(null));
        }
        NotFoundException nf = assertThrows(NotFoundException.class, () -> client.completions().create(
                base.build().toBuilder().model("gpt-4o").build()));
        assertEquals("model_not_found", nf.code().orElse(null));
    }

    @Test
    void wireLevelErrorsUseOpenAisShape() throws Exception {
        HttpResponse<String> badJson = raw("POST", "/v1/completions", "{\"prompt\": ", KEY);
        assertEquals(400, badJson.statusCode());
        JsonObject err = JsonParser.parseString(badJson.body()).getAsJsonObject().getAsJsonObject("error");
        assertTrue(err.get("message").getAsString().contains("not valid JSON"), badJson.body());
        assertEquals("invalid_request_error", err.get("type").getAsString());

        HttpResponse<String> badRole = raw("POST", "/v1/chat/completions",
                "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", KEY);
        assertEquals(400, badRole.statusCode());
        assertEquals("messages[0].role", JsonParser.parseString(badRole.body()).getAsJsonObject()
                .getAsJsonObject("error").get("param").getAsString());

        String big = "{\"prompt\":\"" + "a".repeat(70 * 1024) + "\"}";
        assertEquals(413, raw("POST", "/v1/completions", big, KEY).statusCode());
        assertEquals(405, raw("GET", "/v1/completions", null, KEY).statusCode());
        assertEquals(404, raw("GET", "/v2/nothing", null, KEY).statusCode());
        assertEquals(401, raw("GET", "/v1/models", null, null).statusCode());
        assertEquals(401, raw("GET", "/metrics", null, "wrong").statusCode());
        assertThrows(UnauthorizedException.class, () -> client(server, "wrong").models().list());
    }

    /**
     * An oversized body gets its 413 every time: the server reads and drops the rest of the body (up to 1 MiB) before
     * answering, so closing the connection does not reset it while the client is still sending (which made the
     * client see "fixed content-length: 131, bytes received: 0" instead of the 413, now and then).
     */
    @Test
    void anOversizedBodyAlwaysGetsItsAnswer() throws Exception {
        String big = "{\"prompt\":\"" + "a".repeat(512 * 1024) + "\"}";
        for (int i = 0; i < 40; i++) {
            HttpResponse<String> r = raw("POST", "/v1/completions", big, KEY);
            assertEquals(413, r.statusCode(), "attempt " + i);
            assertTrue(r.body().contains("request_too_large"), r.body());
        }
    }

    @Test
    void modelsAndHealth() throws Exception {
        assertEquals(List.of("spotserve"), client.models().list().data().stream().map(m -> m.id()).toList());
        assertEquals("spotserve", client.models().retrieve("spotserve").id());
        assertThrows(NotFoundException.class, () -> client.models().retrieve("gpt-4o"));
        HttpResponse<String> health = raw("GET", "/health", null, null); // no key needed
        assertEquals(200, health.statusCode(), health.body());
        assertTrue(health.body().contains("\"ready\""), health.body());
    }

    @Test
    void metricsEndpointServesPrometheusTextThatMovesWithRequests() throws Exception {
        String before = raw("GET", "/metrics", null, KEY).body();
        double tokens0 = PrometheusText.value(before, "spotserve_generation_tokens_total", "");
        double ttft0 = PrometheusText.value(before, "spotserve_time_to_first_token_seconds_count", "");
        client.completions().create(CompletionCreateParams.builder().model("spotserve").prompt("One day")
                .maxTokens(12).temperature(0.0).build());
        Thread.sleep(150); // snapshots are cached for 100 ms
        HttpResponse<String> after = raw("GET", "/metrics", null, KEY);
        assertEquals(200, after.statusCode());
        assertTrue(after.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"));
        assertTrue(PrometheusText.value(after.body(), "spotserve_generation_tokens_total", "") >= tokens0 + 12,
                after.body());
        assertTrue(PrometheusText.value(after.body(), "spotserve_time_to_first_token_seconds_count", "") >= ttft0 + 1);
        assertTrue(PrometheusText.value(after.body(), "spotserve_e2e_request_latency_seconds_count", "") >= 1);
        assertEquals(2, PrometheusText.value(after.body(), "spotserve_instances", "market=\"spot\",state=\"running\""));
        assertTrue(PrometheusText.value(after.body(), "spotserve_cost_usd", "market=\"spot\"") > 0);
        assertFalse(after.body().contains("NaN"), after.body());
    }

    @Test
    void anyServiceErrorCarriesAStatusAndMessage() {
        OpenAIServiceException e = assertThrows(OpenAIServiceException.class, () -> client.chat().completions().create(
                ChatCompletionCreateParams.builder().model("spotserve").addUserMessage("x").n(3).build()));
        assertEquals(400, e.statusCode());
        assertTrue(e.getMessage().contains("only n = 1 is supported"), e.getMessage());
    }
}
