package io.spotserve.server;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.spotserve.engine.ServingEngine;
import io.spotserve.metrics.SpotServeMetrics;
import io.spotserve.model.ChatTemplate;
import io.spotserve.model.ModelChatTemplate;
import io.spotserve.model.ModelSource;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An OpenAI-compatible HTTP server on a {@link ServingEngine}, built on the JDK's {@code com.sun.net.httpserver}:
 *
 * <pre>{@code
 * try (SpotServeServer server = SpotServeServer.builder().engine(engine).port(8080).build().start()) {
 *     ... // POST http://127.0.0.1:8080/v1/chat/completions
 * }
 * }</pre>
 *
 * <p>Endpoints: {@code POST /v1/completions}, {@code POST /v1/chat/completions} (JSON, or server-sent events
 * ending with {@code data: [DONE]} when {@code stream} is true), {@code GET /v1/models}, {@code GET /health}
 * (200 only while a configuration is serving and the server is not shutting down) and {@code GET /metrics}
 * (Prometheus text). Errors use OpenAI's shape {@code {"error": {"message", "type", "param", "code"}}}: 400
 * naming the bad field, 401 without the API key, 404, 405, 413 for a body over the limit, 429 when the
 * engine's admission queue is full, 503 while shutting down.
 *
 * <p>Binds 127.0.0.1 unless told otherwise. With {@link Builder#apiKey} every endpoint but {@code /health}
 * needs {@code Authorization: Bearer <key>}. The server does not own the engine: closing the server leaves it
 * running.
 */
public final class SpotServeServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(SpotServeServer.class);

    private final ServingEngine engine;
    private final String host;
    private final int requestedPort;
    private final String modelName;
    private final byte[] apiKey;
    private final ChatTemplate template;
    private final int maxBodyBytes;
    private final int threads;
    private final Duration drainTimeout;
    private final PrometheusMeterRegistry registry;
    private final SpotServeMetrics metrics;
    private final long created = System.currentTimeMillis() / 1000;
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicLong ids = new AtomicLong();
    private final String idPrefix = Long.toHexString(System.nanoTime() & 0xffffffL);
    private HttpServer http;
    private ExecutorService executor;

    private SpotServeServer(Builder b) {
        this.engine = b.engine;
        this.host = b.host;
        this.requestedPort = b.port;
        this.modelName = b.modelName;
        this.apiKey = b.apiKey == null ? null : b.apiKey.getBytes(StandardCharsets.UTF_8);
        this.template = b.effectiveChatTemplate();
        this.maxBodyBytes = b.maxBodyBytes;
        this.threads = b.threads;
        this.drainTimeout = b.drainTimeout;
        this.registry = b.registry != null ? b.registry : new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        this.metrics = new SpotServeMetrics(engine);
        metrics.bindTo(registry);
    }

    /** A builder; {@link Builder#engine} is required. */
    public static Builder builder() {
        return new Builder();
    }

    /** Binds the port and starts serving; returns this server. */
    public synchronized SpotServeServer start() throws IOException {
        if (http != null) {
            throw new IllegalStateException("already started");
        }
        http = HttpServer.create(new InetSocketAddress(host, requestedPort), 128);
        AtomicInteger n = new AtomicInteger();
        executor = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "spotserve-http-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        http.setExecutor(executor);
        http.createContext("/", this::handle);
        http.start();
        LOG.info("OpenAI-compatible server on http://{}:{}/v1 (model '{}'{})", host, port(), modelName,
                apiKey != null ? ", API key required" : "");
        return this;
    }

    /** The port the server listens on (the one chosen by the system when the builder was given 0). */
    public int port() {
        HttpServer h = http;
        if (h == null) {
            throw new IllegalStateException("not started");
        }
        return h.getAddress().getPort();
    }

    /** The base URL of the API, e.g. {@code http://127.0.0.1:8080/v1}. */
    public URI baseUri() {
        return URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port() + "/v1");
    }

    /** The registry {@code /metrics} serves; the engine's meters are bound to it. */
    public PrometheusMeterRegistry meterRegistry() {
        return registry;
    }

    /**
     * Shuts down: from now on new requests get 503 and {@code /health} reports not ready; requests in flight
     * may finish within the drain timeout; then the port is closed. The engine is left running. Idempotent.
     */
    @Override
    public synchronized void close() {
        if (http == null || !stopping.compareAndSet(false, true)) {
            return;
        }
        long deadline = System.nanoTime() + drainTimeout.toNanos();
        while (inFlight.get() > 0 && System.nanoTime() < deadline) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        http.stop(0);
        executor.shutdownNow();
        try {
            executor.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        metrics.close();
        LOG.info("server on port {} stopped", http.getAddress().getPort());
    }

    private void handle(HttpExchange ex) throws IOException {
        inFlight.incrementAndGet();
        try {
            route(ex);
        } catch (ApiException e) {
            sendError(ex, e);
        } catch (IOException e) {
            LOG.debug("{} {}: client connection lost: {}", ex.getRequestMethod(), ex.getRequestURI(), e.toString());
        } catch (RuntimeException e) {
            LOG.warn("{} {} failed", ex.getRequestMethod(), ex.getRequestURI(), e);
            trySendError(ex, new ApiException(500, "server_error", null, null, "internal error: " + e));
        } finally {
            ex.close();
            inFlight.decrementAndGet();
        }
    }

    private void route(HttpExchange ex) throws ApiException, IOException {
        String path = ex.getRequestURI().getPath();
        String method = ex.getRequestMethod();
        if (path.equals("/health")) {
            expect(method, "GET");
            health(ex);
            return;
        }
        authenticate(ex);
        switch (path) {
            case "/metrics" -> {
                expect(method, "GET");
                byte[] body = registry.scrape().getBytes(StandardCharsets.UTF_8);
                ex.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
                ex.sendResponseHeaders(200, body.length);
                ex.getResponseBody().write(body);
            }
            case "/v1/models" -> {
                expect(method, "GET");
                JsonArray data = new JsonArray();
                data.add(model());
                JsonObject o = new JsonObject();
                o.addProperty("object", "list");
                o.add("data", data);
                sendJson(ex, 200, o);
            }
            case "/v1/completions", "/v1/chat/completions" -> {
                expect(method, "POST");
                boolean chat = path.equals("/v1/chat/completions");
                OpenAiRequest r = OpenAiRequest.parse(body(ex), chat);
                if (stopping.get()) {
                    throw new ApiException(503, "service_unavailable", null, null, "the server is shutting down");
                }
                String id = (chat ? "chatcmpl-" : "cmpl-") + idPrefix + "-" + ids.incrementAndGet();
                new CompletionExchange(engine, modelName, template, metrics::recordCompletion, id).run(ex, r);
            }
            default -> {
                if (path.startsWith("/v1/models/")) {
                    expect(method, "GET");
                    String id = path.substring("/v1/models/".length());
                    if (!id.equals(modelName)) {
                        throw new ApiException(404, "invalid_request_error", "model", "model_not_found",
                                "the model '" + id + "' does not exist; this server serves '" + modelName + "'");
                    }
                    sendJson(ex, 200, model());
                    return;
                }
                throw new ApiException(404, "invalid_request_error", null, "unknown_url",
                        "unknown URL " + method + " " + path + "; this server has /v1/completions, /v1/chat/completions, "
                                + "/v1/models, /health and /metrics");
            }
        }
    }

    private JsonObject model() {
        JsonObject model = new JsonObject();
        model.addProperty("id", modelName);
        model.addProperty("object", "model");
        model.addProperty("created", created);
        model.addProperty("owned_by", "spotserve");
        return model;
    }

    private void health(HttpExchange ex) throws IOException {
        String configuration = engine.configuration();
        boolean ready = !stopping.get() && !configuration.equals("[]");
        JsonObject o = new JsonObject();
        o.addProperty("status", ready ? "ready" : stopping.get() ? "shutting_down" : "no_configuration");
        o.addProperty("configuration", configuration);
        sendJson(ex, ready ? 200 : 503, o);
    }

    private void authenticate(HttpExchange ex) throws ApiException {
        if (apiKey == null) {
            return;
        }
        String h = ex.getRequestHeaders().getFirst("Authorization");
        byte[] given = h != null && h.startsWith("Bearer ") ? h.substring(7).trim().getBytes(StandardCharsets.UTF_8)
                : new byte[0];
        if (!MessageDigest.isEqual(given, apiKey)) {
            throw new ApiException(401, "invalid_request_error", null, "invalid_api_key",
                    h == null ? "missing API key: send Authorization: Bearer <key>" : "incorrect API key");
        }
    }

    private static void expect(String method, String allowed) throws ApiException {
        if (!method.equals(allowed)) {
            throw new ApiException(405, "invalid_request_error", null, "method_not_allowed", method
                    + " is not allowed here; use " + allowed);
        }
    }

    /**
     * Most bytes of an oversized body read and discarded before the 413 goes out. Closing a connection whose request
     * body is still unread makes the kernel reset it, and a client still sending can then lose the 413 itself
     * ("bytes received: 0"); a body beyond this is not read (the client may see a reset instead of the 413).
     */
    private static final long DISCARD_BYTES = 1L << 20;

    /** The request body as UTF-8, at most {@code maxBodyBytes} of it. */
    private String body(HttpExchange ex) throws IOException, ApiException {
        String length = ex.getRequestHeaders().getFirst("Content-Length");
        if (length != null) {
            long declared;
            try {
                declared = Long.parseLong(length.trim());
            } catch (NumberFormatException e) {
                throw ApiException.badRequest("bad Content-Length " + length);
            }
            if (declared > maxBodyBytes) {
                discard(ex.getRequestBody());
                throw tooLarge();
            }
        }
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        byte[] chunk = new byte[8192];
        try (InputStream in = ex.getRequestBody()) {
            for (int r; (r = in.read(chunk)) >= 0; ) {
                if (buf.size() + r > maxBodyBytes) {
                    discard(in);
                    throw tooLarge();
                }
                buf.write(chunk, 0, r);
            }
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    /** Reads and drops up to {@link #DISCARD_BYTES} of what is left of a request body. */
    private static void discard(InputStream in) throws IOException {
        byte[] sink = new byte[8192];
        long left = DISCARD_BYTES;
        for (int r; left > 0 && (r = in.read(sink, 0, (int) Math.min(sink.length, left))) >= 0; ) {
            left -= r;
        }
    }

    private ApiException tooLarge() {
        return new ApiException(413, "invalid_request_error", null, "request_too_large",
                "the request body exceeds " + maxBodyBytes + " bytes");
    }

    static void sendJson(HttpExchange ex, int status, JsonObject o) throws IOException {
        byte[] body = o.toString().getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, body.length);
        ex.getResponseBody().write(body);
    }

    private static void sendError(HttpExchange ex, ApiException e) throws IOException {
        if (e.status >= 500) {
            LOG.warn("{} {}: {} {}", ex.getRequestMethod(), ex.getRequestURI(), e.status, e.getMessage());
        }
        sendJson(ex, e.status, e.toJson());
    }

    private static void trySendError(HttpExchange ex, ApiException e) {
        try {
            sendError(ex, e);
        } catch (IOException | RuntimeException ignored) {
            // headers were already sent or the client is gone
        }
    }

    /** Configures a {@link SpotServeServer}. */
    public static final class Builder {
        private ServingEngine engine;
        private String host = "127.0.0.1";
        private int port = 8080;
        private String modelName = "spotserve";
        private String apiKey;
        private ChatTemplate template;
        private ChatTemplate modelTemplate;
        private int maxBodyBytes = 1 << 20;
        private int threads = 128;
        private Duration drainTimeout = Duration.ofSeconds(30);
        private PrometheusMeterRegistry registry;

        private Builder() {
        }

        /** The engine to serve (required). The server does not close it. */
        public Builder engine(ServingEngine engine) {
            this.engine = Objects.requireNonNull(engine, "engine");
            return this;
        }

        /** The address to bind; default 127.0.0.1 (this machine only). */
        public Builder host(String host) {
            this.host = Objects.requireNonNull(host, "host");
            return this;
        }

        /** The port; default 8080; 0 lets the system pick a free one ({@link #port()} tells which). */
        public Builder port(int port) {
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException("port must be in [0, 65535], was " + port);
            }
            this.port = port;
            return this;
        }

        /** The model id clients name and {@code /v1/models} lists; default {@code spotserve}. */
        public Builder modelName(String name) {
            if (Objects.requireNonNull(name, "modelName").isBlank()) {
                throw new IllegalArgumentException("modelName must not be blank");
            }
            this.modelName = name;
            return this;
        }

        /** Require {@code Authorization: Bearer key} on every endpoint but /health; null = no authentication. */
        public Builder apiKey(String key) {
            if (key != null && key.isBlank()) {
                throw new IllegalArgumentException("apiKey must not be blank (null turns authentication off)");
            }
            this.apiKey = key;
            return this;
        }

        /**
         * How chat messages become a prompt. It wins over the template of {@link #model(ModelSource)}; without
         * either, {@link ChatTemplate#plain()}.
         */
        public Builder chatTemplate(ChatTemplate template) {
            this.template = Objects.requireNonNull(template, "chatTemplate");
            return this;
        }

        /**
         * The model the engine serves, for its chat template: the Jinja2 template a GGUF file
         * ({@code tokenizer.chat_template}) or a Hugging Face folder ({@code tokenizer_config.json}) ships becomes the
         * default (with the model's BOS/EOS token texts); a model without one leaves {@link ChatTemplate#plain()}. A
         * template set with {@link #chatTemplate(ChatTemplate)} still wins.
         *
         * @throws IOException if the model's template field is malformed
         * @throws io.spotserve.model.jinja.JinjaException if the model's template does not parse
         */
        public Builder model(ModelSource source) throws IOException {
            Optional<ModelChatTemplate> t = Objects.requireNonNull(source, "model").chatTemplate();
            this.modelTemplate = t.isPresent() ? t.get().template() : null;
            return this;
        }

        /** The chat template {@link #build()} will use: the one set, else the model's, else the plain one. */
        ChatTemplate effectiveChatTemplate() {
            return template != null ? template : modelTemplate != null ? modelTemplate : ChatTemplate.plain();
        }

        /** Largest request body accepted (413 beyond); default 1 MiB. */
        public Builder maxBodyBytes(int bytes) {
            if (bytes < 1024) {
                throw new IllegalArgumentException("maxBodyBytes must be >= 1024, was " + bytes);
            }
            this.maxBodyBytes = bytes;
            return this;
        }

        /** Requests handled at once (each streaming client holds one); default 128. */
        public Builder threads(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("threads must be >= 1, was " + n);
            }
            this.threads = n;
            return this;
        }

        /** How long {@link #close()} lets requests in flight finish; default 30 s. */
        public Builder drainTimeout(Duration timeout) {
            if (timeout.isNegative()) {
                throw new IllegalArgumentException("drainTimeout must be >= 0, was " + timeout);
            }
            this.drainTimeout = timeout;
            return this;
        }

        /** The registry to bind the engine's meters to and serve on /metrics; default a new one. */
        public Builder meterRegistry(PrometheusMeterRegistry registry) {
            this.registry = Objects.requireNonNull(registry, "registry");
            return this;
        }

        /** The server, not yet started. */
        public SpotServeServer build() {
            if (engine == null) {
                throw new IllegalStateException("engine is required: builder().engine(engine)");
            }
            return new SpotServeServer(this);
        }
    }
}
