package io.spotserve.server;

import io.spotserve.model.StopMatcher;

import io.spotserve.model.ChatTemplate;
import io.spotserve.model.jinja.JinjaException;

import com.google.gson.JsonArray;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.sun.net.httpserver.HttpExchange;
import io.spotserve.engine.Completion;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.RequestRejectedException;
import io.spotserve.engine.ServingEngine;
import io.spotserve.engine.Token;
import io.spotserve.model.Tokenizer;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;

/**
 * One completion or chat completion request, from the validated body to the last byte of the answer: submits it
 * to the engine, applies stop sequences, and answers with one JSON object or a stream of server-sent events that
 * ends with {@code data: [DONE]}. A client that goes away mid-stream cancels its request in the engine.
 */
final class CompletionExchange {
    /** Default {@code max_tokens} of {@code /v1/completions}, as OpenAI's. */
    static final int DEFAULT_COMPLETION_TOKENS = 16;

    private final ServingEngine engine;
    private final String modelName;
    private final ChatTemplate template;
    private final Consumer<Completion> completed;
    private final String id;
    private final long created = System.currentTimeMillis() / 1000;

    CompletionExchange(ServingEngine engine, String modelName, ChatTemplate template, Consumer<Completion> completed,
                       String id) {
        this.engine = engine;
        this.modelName = modelName;
        this.template = template;
        this.completed = completed;
        this.id = id;
    }

    void run(HttpExchange ex, OpenAiRequest r) throws ApiException, IOException {
        if (r.model() != null && !r.model().equals(modelName)) {
            throw new ApiException(404, "invalid_request_error", "model", "model_not_found", "the model '"
                    + r.model() + "' does not exist; this server serves '" + modelName + "'");
        }
        String prompt;
        try {
            prompt = r.chat() ? template.render(r.messages()) : r.prompt();
        } catch (JinjaException e) {
            // the model's template refuses this conversation (raise_exception) or cannot render it
            throw ApiException.badField("messages", e.getMessage());
        }
        int promptTokens = promptTokens(prompt);
        int maxTokens = r.maxTokens() != null ? r.maxTokens() : r.chat()
                ? Math.max(1, engine.contextLength() - promptTokens) : DEFAULT_COMPLETION_TOKENS;
        String maxField = "max_tokens";
        if (promptTokens >= engine.contextLength()) {
            throw ApiException.badField(r.chat() ? "messages" : "prompt", "the prompt has " + promptTokens
                    + " tokens, the model's context is " + engine.contextLength());
        }
        if ((long) promptTokens + maxTokens > engine.contextLength()) {
            throw ApiException.badField(maxField, "the prompt's " + promptTokens + " tokens + max_tokens " + maxTokens
                    + " exceed the model's context of " + engine.contextLength() + " tokens");
        }
        long seed = r.seed() != null ? r.seed() : ThreadLocalRandom.current().nextLong();
        GenerationRequest request = GenerationRequest.builder().prompt(prompt).maxNewTokens(maxTokens)
                .temperature(r.temperature()).topP(r.topP()).seed(seed != 0 ? seed : 0x9E3779B97F4A7C15L).build();
        TokenQueue tokens = new TokenQueue();
        CompletableFuture<Completion> future;
        try {
            future = engine.submit(request, tokens);
        } catch (IllegalArgumentException e) {
            throw ApiException.badField(maxField, e.getMessage());
        } catch (RequestRejectedException e) {
            throw e.reason() == RequestRejectedException.Reason.CLOSING
                    ? new ApiException(503, "service_unavailable", null, null, "the server is shutting down")
                    : new ApiException(429, "rate_limit_exceeded", null, "queue_full", e.getMessage());
        }
        SseWriter sse = null;
        StopMatcher stop = new StopMatcher(r.stop());
        StringBuilder text = new StringBuilder();
        int generated = 0;
        String finish;
        try {
            if (r.stream()) {
                sse = new SseWriter(ex);
                if (r.chat()) {
                    JsonObject delta = new JsonObject();
                    delta.addProperty("role", "assistant");
                    delta.addProperty("content", "");
                    sse.event(chunk(r, delta, null));
                }
            }
            while (true) {
                Object next = tokens.poll(15_000);
                if (next == null) {
                    if (sse != null) {
                        sse.comment(); // a keep-alive that also finds out whether the client is still there
                    }
                    continue;
                }
                if (next instanceof Token t) {
                    generated++;
                    String out = stop.accept(t.text());
                    emit(r, sse, text, out);
                    if (stop.stopped()) {
                        tokens.cancel();
                        finish = "stop";
                        break;
                    }
                    continue;
                }
                TokenQueue.End end = (TokenQueue.End) next;
                if (end.error() != null) {
                    fail(end.error(), sse);
                    return;
                }
                emit(r, sse, text, stop.flush());
                Completion c = future.get();
                completed.accept(c);
                finish = c.reason() == Completion.FinishReason.LENGTH ? "length" : "stop";
                promptTokens = c.promptLength();
                generated = c.tokens().length;
                break;
            }
        } catch (IOException e) {
            tokens.cancel(); // the client went away: free its place in the engine
            throw e;
        } catch (InterruptedException e) {
            tokens.cancel();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (ExecutionException e) {
            fail(e.getCause(), sse);
            return;
        } catch (ApiException | RuntimeException e) {
            tokens.cancel();
            throw e;
        }
        JsonObject usage = new JsonObject();
        usage.addProperty("prompt_tokens", promptTokens);
        usage.addProperty("completion_tokens", generated);
        usage.addProperty("total_tokens", promptTokens + generated);
        if (sse != null) {
            JsonObject last = chunk(r, r.chat() ? new JsonObject() : null, finish);
            sse.event(last);
            if (r.includeUsage()) {
                JsonObject u = chunk(r, null, null);
                u.add("choices", new JsonArray());
                u.add("usage", usage);
                sse.event(u);
            }
            sse.done();
            return;
        }
        JsonObject choice = new JsonObject();
        choice.addProperty("index", 0);
        if (r.chat()) {
            JsonObject message = new JsonObject();
            message.addProperty("role", "assistant");
            message.addProperty("content", text.toString());
            message.add("refusal", JsonNull.INSTANCE);
            choice.add("message", message);
        } else {
            choice.addProperty("text", text.toString());
        }
        choice.add("logprobs", JsonNull.INSTANCE);
        choice.addProperty("finish_reason", finish);
        JsonObject o = header(r.chat() ? "chat.completion" : "text_completion");
        JsonArray choices = new JsonArray();
        choices.add(choice);
        o.add("choices", choices);
        o.add("usage", usage);
        SpotServeServer.sendJson(ex, 200, o);
    }

    private int promptTokens(String prompt) {
        Tokenizer t = engine.tokenizer();
        return t == null ? 1 : t.encode(prompt, true, false).length;
    }

    private void emit(OpenAiRequest r, SseWriter sse, StringBuilder text, String out) throws IOException {
        if (out.isEmpty()) {
            return;
        }
        text.append(out);
        if (sse != null) {
            JsonObject delta = null;
            if (r.chat()) {
                delta = new JsonObject();
                delta.addProperty("content", out);
            }
            JsonObject c = chunk(r, delta, null);
            if (!r.chat()) {
                c.getAsJsonArray("choices").get(0).getAsJsonObject().addProperty("text", out);
            }
            sse.event(c);
        }
    }

    /** A failed request: thrown as an error answer, or (once streaming) an error event that ends the stream. */
    private static void fail(Throwable cause, SseWriter sse) throws IOException, ApiException {
        ApiException e = new ApiException(500, "server_error", null, null, "generation failed: " + cause.getMessage());
        if (sse == null) {
            throw e;
        }
        sse.event(e.toJson());
        sse.done();
    }

    private JsonObject header(String object) {
        JsonObject o = new JsonObject();
        o.addProperty("id", id);
        o.addProperty("object", object);
        o.addProperty("created", created);
        o.addProperty("model", modelName);
        return o;
    }

    /** A stream chunk with one choice: a chat delta or a text piece (set by the caller), and a finish reason. */
    private JsonObject chunk(OpenAiRequest r, JsonObject delta, String finish) {
        JsonObject o = header(r.chat() ? "chat.completion.chunk" : "text_completion");
        JsonArray choices = new JsonArray();
        if (delta != null || !r.chat()) {
            JsonObject choice = new JsonObject();
            choice.addProperty("index", 0);
            if (r.chat()) {
                choice.add("delta", delta);
            } else {
                choice.addProperty("text", "");
            }
            choice.add("logprobs", JsonNull.INSTANCE);
            choice.add("finish_reason", finish == null ? JsonNull.INSTANCE : new com.google.gson.JsonPrimitive(finish));
            choices.add(choice);
        }
        o.add("choices", choices);
        return o;
    }

    /** Server-sent events on a chunked 200 response. */
    static final class SseWriter {
        private final OutputStream out;

        SseWriter(HttpExchange ex) throws IOException {
            ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
            ex.getResponseHeaders().set("Cache-Control", "no-cache");
            ex.sendResponseHeaders(200, 0);
            out = ex.getResponseBody();
        }

        void event(JsonObject data) throws IOException {
            write("data: " + data + "\n\n");
        }

        void comment() throws IOException {
            write(": keep-alive\n\n");
        }

        void done() throws IOException {
            write("data: [DONE]\n\n");
            out.close();
        }

        private void write(String s) throws IOException {
            out.write(s.getBytes(StandardCharsets.UTF_8));
            out.flush();
        }
    }
}
