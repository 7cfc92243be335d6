package io.spotserve.worker.notice;

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
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Objects;

/**
 * AWS EC2 Spot interruption notices through IMDSv2: a session token from {@code PUT latest/api/token}, then
 * {@code GET latest/meta-data/spot/instance-action} every poll interval (5 s by default, as AWS recommends):
 * 404 until the interruption is scheduled, then {@code {"action": "terminate|stop|hibernate", "time":
 * "2026-12-06T07:00:00Z"}} (AWS's metadata mock writes the key {@code instance-action}, accepted as well). The
 * token is renewed on 401.
 */
public final class AwsSpotNotices implements NoticeWatcher {
    /** The instance metadata service's address on EC2. */
    public static final URI DEFAULT_BASE = URI.create("http://169.254.169.254/");

    private final HttpClient http;
    private final URI base;
    private final Duration poll;
    private final Clock clock;
    private String token;

    public AwsSpotNotices(URI base, Duration poll, Clock clock) {
        this.base = Objects.requireNonNull(base, "base");
        this.poll = Objects.requireNonNull(poll, "poll");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    }

    public AwsSpotNotices() {
        this(DEFAULT_BASE, Duration.ofSeconds(5), Clock.systemUTC());
    }

    @Override
    public String name() {
        return "aws";
    }

    @Override
    public CloudNotice await() throws InterruptedException, IOException {
        while (true) {
            try {
                if (token == null) {
                    token = fetchToken();
                }
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve("latest/meta-data/spot/instance-action"))
                        .header("X-aws-ec2-metadata-token", token).timeout(Duration.ofSeconds(2)).GET().build(),
                        HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) {
                    return parse(r.body());
                }
                if (r.statusCode() == 401) {
                    token = null; // expired session token: fetch a new one at once
                    continue;
                }
                if (r.statusCode() != 404) {
                    throw new IOException("IMDS answered " + r.statusCode() + " for spot/instance-action; expected 200 "
                            + "or 404");
                }
            } catch (java.net.ConnectException | java.net.http.HttpTimeoutException e) {
                // the metadata service is briefly unreachable: try again next poll
            }
            Thread.sleep(poll.toMillis());
        }
    }

    private String fetchToken() throws IOException, InterruptedException {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve("latest/api/token"))
                .header("X-aws-ec2-metadata-token-ttl-seconds", "21600").timeout(Duration.ofSeconds(2))
                .PUT(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200 || r.body().isBlank()) {
            throw new IOException("IMDSv2 token request answered " + r.statusCode() + "; expected 200 with a token");
        }
        return r.body().strip();
    }

    CloudNotice parse(String body) throws IOException {
        try {
            JsonObject o = JsonParser.parseString(body).getAsJsonObject();
            JsonElement action = o.has("action") ? o.get("action") : o.get("instance-action");
            if (action == null || !o.has("time")) {
                throw new IOException("spot/instance-action lacks 'action' (or 'instance-action') and 'time': " + body);
            }
            Instant at = Instant.parse(o.get("time").getAsString());
            return new CloudNotice("aws", Duration.between(clock.instant(), at), action.getAsString() + " at " + at);
        } catch (JsonParseException | IllegalStateException | DateTimeParseException | UnsupportedOperationException e) {
            throw new IOException("spot/instance-action is not {\"action\": ..., \"time\": ISO-8601}: " + body, e);
        }
    }
}
