package io.spotserve.worker.notice;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Each cloud's notice watcher against a JDK HttpServer on 127.0.0.1 answering as the provider documents it:
 * headers are required as the real services require them, and the notice arrives only once the server says so.
 */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class NoticeWatchersTest {
    private static final Instant NOW = Instant.parse("2026-12-06T05:00:00Z");
    private static final Clock CLOCK = Clock.fixed(NOW, ZoneOffset.UTC);
    private HttpServer server;
    private final List<String> log = new CopyOnWriteArrayList<>();

    private URI serve(String path, Handler h) throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext(path, ex -> {
            try {
                log.add(ex.getRequestMethod() + " " + ex.getRequestURI());
                h.handle(ex);
            } finally {
                ex.close();
            }
        });
        server.start();
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/");
    }

    @AfterEach
    void stop() {
        if (server != null) {
            server.stop(0);
        }
    }

    interface Handler {
        void handle(HttpExchange ex) throws IOException;
    }

    private static void reply(HttpExchange ex, int code, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(code, b.length == 0 ? -1 : b.length);
        if (b.length > 0) {
            ex.getResponseBody().write(b);
        }
    }

    // ------------------------------------------------------------------ AWS

    /** IMDSv2: a token from PUT, required on every GET; the token expires after the first poll; 404 until poll 4. */
    private URI aws(String key) throws IOException {
        AtomicInteger issued = new AtomicInteger();
        AtomicInteger polls = new AtomicInteger();
        String[] valid = {null};
        return serve("/latest/", ex -> {
            String path = ex.getRequestURI().getPath();
            if (path.equals("/latest/api/token")) {
                if (!ex.getRequestMethod().equals("PUT")
                        || ex.getRequestHeaders().getFirst("X-aws-ec2-metadata-token-ttl-seconds") == null) {
                    reply(ex, 400, "");
                    return;
                }
                valid[0] = "token-" + issued.incrementAndGet();
                reply(ex, 200, valid[0]);
            } else if (path.equals("/latest/meta-data/spot/instance-action")) {
                String t = ex.getRequestHeaders().getFirst("X-aws-ec2-metadata-token");
                if (t == null || !t.equals(valid[0])) {
                    reply(ex, 401, "");
                    return;
                }
                int n = polls.incrementAndGet();
                if (n == 1) {
                    valid[0] = null; // the session token expires after this answer
                }
                if (n < 4) {
                    reply(ex, 404, "");
                    return;
                }
                reply(ex, 200, "{\"" + key + "\": \"terminate\", \"time\": \"2026-12-06T05:02:00Z\"}");
            } else {
                reply(ex, 404, "");
            }
        });
    }

    @Test
    void awsPollsWithAnImdsV2TokenUntilTheInstanceActionAppears() throws Exception {
        URI base = aws("action");
        CloudNotice n = new AwsSpotNotices(base, Duration.ofMillis(10), CLOCK).await();
        assertEquals("aws", n.source());
        assertEquals(Duration.ofMinutes(2), n.grace());
        assertTrue(n.detail().contains("terminate"), n.detail());
        assertTrue(log.get(0).startsWith("PUT /latest/api/token"), log.toString());
        assertEquals(2, log.stream().filter(l -> l.startsWith("PUT")).count(), "the token was renewed after a 401: " + log);
    }

    @Test
    void awsAcceptsTheMetadataMocksInstanceActionKey() throws Exception {
        URI base = aws("instance-action");
        CloudNotice n = new AwsSpotNotices(base, Duration.ofMillis(10), CLOCK).await();
        assertEquals(Duration.ofMinutes(2), n.grace());
    }

    @Test
    void awsRejectsADocumentWithoutTime() throws Exception {
        URI base = serve("/latest/", ex -> reply(ex, 200, ex.getRequestURI().getPath().endsWith("token") ? "t"
                : "{\"action\": \"stop\"}"));
        IOException e = assertThrows(IOException.class, () -> new AwsSpotNotices(base, Duration.ofMillis(10), CLOCK)
                .await());
        assertTrue(e.getMessage().contains("time"), e.getMessage());
    }

    // ------------------------------------------------------------------ GCP

    @Test
    void gcpWaitsForPreemptedToTurnTrueWithTheMetadataFlavorHeader() throws Exception {
        URI base = serve("/computeMetadata/", ex -> {
            if (!"Google".equals(ex.getRequestHeaders().getFirst("Metadata-Flavor"))) {
                reply(ex, 403, "missing Metadata-Flavor");
                return;
            }
            String q = ex.getRequestURI().getQuery();
            if (!ex.getRequestURI().getPath().equals("/computeMetadata/v1/instance/preempted")
                    || q == null || !q.contains("wait_for_change=true")) {
                reply(ex, 400, "");
                return;
            }
            if (!q.contains("last_etag=")) {
                ex.getResponseHeaders().add("ETag", "5f1a2b");
                reply(ex, 200, "FALSE");
                return;
            }
            // the hanging GET returns when the value changes
            ex.getResponseHeaders().add("ETag", "77e0c1");
            reply(ex, 200, q.contains("last_etag=5f1a2b") ? "TRUE" : "FALSE");
        });
        CloudNotice n = new GcpPreemptionNotices(base, GcpPreemptionNotices.SPOT_GRACE, Duration.ofMillis(10)).await();
        assertEquals("gcp", n.source());
        assertEquals(Duration.ofSeconds(30), n.grace());
        assertEquals(2, log.size(), "one request per value change, no busy polling: " + log);
        assertTrue(log.get(1).contains("last_etag=5f1a2b"), log.toString());
    }

    // ------------------------------------------------------------------ Azure

    @Test
    void azureFindsThisVmsPreemptEventAndAcknowledgesIt() throws Exception {
        String notBefore = DateTimeFormatter.RFC_1123_DATE_TIME.format(NOW.plusSeconds(30).atZone(ZoneOffset.UTC));
        AtomicInteger gets = new AtomicInteger();
        List<String> acks = new CopyOnWriteArrayList<>();
        URI base = serve("/metadata/scheduledevents", ex -> {
            if (!"true".equals(ex.getRequestHeaders().getFirst("Metadata"))) {
                reply(ex, 400, "{\"error\": \"Bad request. Required metadata header not specified\"}");
                return;
            }
            if (!"api-version=2020-07-01".equals(ex.getRequestURI().getQuery())) {
                reply(ex, 400, "");
                return;
            }
            if (ex.getRequestMethod().equals("POST")) {
                acks.add(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
                reply(ex, 200, "");
                return;
            }
            String events = gets.incrementAndGet() < 3 ? "[]"
                    : "[{\"EventId\": \"A123\", \"EventType\": \"Freeze\", \"ResourceType\": \"VirtualMachine\", "
                    + "\"Resources\": [\"other-vm\"], \"EventStatus\": \"Scheduled\", \"NotBefore\": \"" + notBefore
                    + "\"}, {\"EventId\": \"B456\", \"EventType\": \"Preempt\", \"ResourceType\": \"VirtualMachine\", "
                    + "\"Resources\": [\"other-vm\"], \"EventStatus\": \"Scheduled\", \"NotBefore\": \"" + notBefore
                    + "\"}, {\"EventId\": \"C789\", \"EventType\": \"Preempt\", \"ResourceType\": \"VirtualMachine\", "
                    + "\"Resources\": [\"my-vm\"], \"EventStatus\": \"Scheduled\", \"NotBefore\": \"" + notBefore
                    + "\", \"Description\": \"eviction\", \"EventSource\": \"Platform\", \"DurationInSeconds\": -1}]";
            reply(ex, 200, "{\"DocumentIncarnation\": " + gets.get() + ", \"Events\": " + events + "}");
        });
        URI url = base.resolve("metadata/scheduledevents?api-version=2020-07-01");
        CloudNotice n = new AzureScheduledEvents(url, "my-vm", Duration.ofMillis(10), CLOCK).await();
        assertEquals("azure", n.source());
        assertEquals(Duration.ofSeconds(30), n.grace());
        assertTrue(n.detail().contains("C789"), n.detail());
        assertEquals(1, acks.size());
        JsonObject ack = JsonParser.parseString(acks.get(0)).getAsJsonObject();
        assertEquals("C789", ack.getAsJsonArray("StartRequests").get(0).getAsJsonObject().get("EventId").getAsString());
    }

    @Test
    void azureRejectsAMalformedDocument() throws Exception {
        URI base = serve("/metadata/scheduledevents", ex -> reply(ex, 200, "{\"DocumentIncarnation\": 1}"));
        URI url = base.resolve("metadata/scheduledevents?api-version=2020-07-01");
        assertThrows(IOException.class, () -> new AzureScheduledEvents(url, "my-vm", Duration.ofMillis(10), CLOCK).await());
    }
}
