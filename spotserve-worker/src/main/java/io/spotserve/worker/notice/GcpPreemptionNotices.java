package io.spotserve.worker.notice;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Objects;

/**
 * Google Compute Engine Spot / preemptible VM notices: a hanging {@code GET
 * computeMetadata/v1/instance/preempted?wait_for_change=true} with header {@code Metadata-Flavor: Google}
 * returns {@code TRUE} once the VM is being preempted; the VM then has 30 s (the documented Spot grace) to
 * shut down. The ETag of each answer is passed back as {@code last_etag}, so an unchanged {@code FALSE} never
 * turns into a busy loop.
 */
public final class GcpPreemptionNotices implements NoticeWatcher {
    /** The metadata server's address on GCE. */
    public static final URI DEFAULT_BASE = URI.create("http://metadata.google.internal/");
    /** The shutdown period GCE gives a Spot VM. */
    public static final Duration SPOT_GRACE = Duration.ofSeconds(30);

    private final HttpClient http;
    private final URI base;
    private final Duration grace;
    private final Duration retry;

    public GcpPreemptionNotices(URI base, Duration grace, Duration retry) {
        this.base = Objects.requireNonNull(base, "base");
        this.grace = Objects.requireNonNull(grace, "grace");
        this.retry = Objects.requireNonNull(retry, "retry");
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    }

    public GcpPreemptionNotices() {
        this(DEFAULT_BASE, SPOT_GRACE, Duration.ofSeconds(1));
    }

    @Override
    public String name() {
        return "gcp";
    }

    @Override
    public CloudNotice await() throws InterruptedException, IOException {
        String etag = null;
        while (true) {
            String query = "computeMetadata/v1/instance/preempted?wait_for_change=true"
                    + (etag == null ? "" : "&last_etag=" + etag);
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve(query))
                        .header("Metadata-Flavor", "Google").GET().build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() != 200) {
                    throw new IOException("metadata server answered " + r.statusCode() + " for instance/preempted");
                }
                String v = r.body().strip();
                if (v.equalsIgnoreCase("TRUE")) {
                    return new CloudNotice("gcp", grace, "instance/preempted = TRUE");
                }
                if (!v.equalsIgnoreCase("FALSE")) {
                    throw new IOException("instance/preempted is '" + v + "', expected TRUE or FALSE");
                }
                etag = r.headers().firstValue("ETag").orElse(null);
                if (etag != null && !etag.matches("[A-Za-z0-9]+")) {
                    throw new IOException("metadata server sent an unexpected ETag '" + etag + "'");
                }
                if (etag == null) {
                    Thread.sleep(retry.toMillis()); // no ETag to wait on: poll
                }
            } catch (java.net.ConnectException e) {
                Thread.sleep(retry.toMillis());
            }
        }
    }
}
