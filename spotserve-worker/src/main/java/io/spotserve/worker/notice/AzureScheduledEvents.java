package io.spotserve.worker.notice;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Objects;

/**
 * Azure Spot VM eviction through Scheduled Events: {@code GET metadata/scheduledevents?api-version=2020-07-01}
 * with header {@code Metadata: true} every poll interval; an event with {@code "EventType": "Preempt"} whose
 * {@code Resources} name this VM (or are empty) is the notice, its {@code NotBefore} (RFC 1123) the deadline.
 * The event is then acknowledged by {@code POST {"StartRequests": [{"EventId": ...}]}} to the same URL, which
 * tells Azure this VM is ready to go (we have handed our context over by then, or have no time left).
 */
public final class AzureScheduledEvents implements NoticeWatcher {
    /** The scheduled-events endpoint on Azure. */
    public static final URI DEFAULT_URL = URI.create("http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01");

    private final HttpClient http;
    private final URI url;
    private final String vmName;
    private final Duration poll;
    private final Clock clock;

    /**
     * @param url    the scheduled-events URL including its api-version
     * @param vmName this VM's name as Scheduled Events list it in {@code Resources}, or null to accept any
     */
    public AzureScheduledEvents(URI url, String vmName, Duration poll, Clock clock) {
        this.url = Objects.requireNonNull(url, "url");
        this.vmName = vmName;
        this.poll = Objects.requireNonNull(poll, "poll");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    }

    public AzureScheduledEvents(String vmName) {
        this(DEFAULT_URL, vmName, Duration.ofSeconds(1), Clock.systemUTC());
    }

    @Override
    public String name() {
        return "azure";
    }

    @Override
    public CloudNotice await() throws InterruptedException, IOException {
        while (true) {
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(url).header("Metadata", "true")
                        .timeout(Duration.ofSeconds(5)).GET().build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() != 200) {
                    throw new IOException("scheduled events answered " + r.statusCode() + "; expected 200");
                }
                JsonObject preempt = findPreempt(r.body());
                if (preempt != null) {
                    String id = preempt.get("EventId").getAsString();
                    Duration grace = grace(preempt);
                    acknowledge(id);
                    return new CloudNotice("azure", grace, "Preempt event " + id + " NotBefore "
                            + (preempt.has("NotBefore") ? preempt.get("NotBefore").getAsString() : "(none)"));
                }
            } catch (java.net.ConnectException | java.net.http.HttpTimeoutException e) {
                // the metadata service is briefly unreachable: try again next poll
            }
            Thread.sleep(poll.toMillis());
        }
    }

    JsonObject findPreempt(String body) throws IOException {
        try {
            JsonArray events = JsonParser.parseString(body).getAsJsonObject().getAsJsonArray("Events");
            if (events == null) {
                throw new IOException("scheduled events document lacks 'Events': " + body);
            }
            for (JsonElement e : events) {
                JsonObject ev = e.getAsJsonObject();
                if (!"Preempt".equals(ev.has("EventType") ? ev.get("EventType").getAsString() : null)) {
                    continue;
                }
                if (!ev.has("EventId")) {
                    throw new IOException("Preempt event without EventId: " + ev);
                }
                JsonArray res = ev.has("Resources") ? ev.getAsJsonArray("Resources") : new JsonArray();
                boolean mine = vmName == null || res.isEmpty();
                for (JsonElement n : res) {
                    mine |= n.getAsString().equals(vmName);
                }
                if (mine) {
                    return ev;
                }
            }
            return null;
        } catch (JsonParseException | IllegalStateException | ClassCastException | UnsupportedOperationException e) {
            throw new IOException("scheduled events document is malformed: " + body, e);
        }
    }

    private Duration grace(JsonObject ev) throws IOException {
        String nb = ev.has("NotBefore") ? ev.get("NotBefore").getAsString() : "";
        if (nb.isBlank()) {
            return Duration.ZERO; // started already
        }
        try {
            return Duration.between(clock.instant(), ZonedDateTime.parse(nb, DateTimeFormatter.RFC_1123_DATE_TIME).toInstant());
        } catch (DateTimeParseException e) {
            throw new IOException("NotBefore '" + nb + "' is not an RFC 1123 date", e);
        }
    }

    private void acknowledge(String eventId) throws IOException, InterruptedException {
        JsonObject start = new JsonObject();
        JsonArray reqs = new JsonArray();
        JsonObject one = new JsonObject();
        one.addProperty("EventId", eventId);
        reqs.add(one);
        start.add("StartRequests", reqs);
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(url).header("Metadata", "true")
                .header("Content-Type", "application/json").timeout(Duration.ofSeconds(5))
                .POST(HttpRequest.BodyPublishers.ofString(start.toString())).build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() / 100 != 2) {
            throw new IOException("acknowledging event " + eventId + " answered " + r.statusCode());
        }
    }
}
