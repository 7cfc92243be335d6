package io.spotserve.worker.notice;

import java.io.IOException;

/**
 * Watches the cloud's metadata service of the instance this process runs on for a preemption notice. Each
 * implementation speaks one provider's documented protocol over the JDK {@link java.net.http.HttpClient}, with
 * a configurable base URL so tests (and metadata proxies) can stand in for the real endpoint.
 */
public interface NoticeWatcher {
    /** Short name: aws, gcp, azure. */
    String name();

    /**
     * Blocks until the provider announces this instance's preemption and returns the notice; transient
     * errors of the metadata service are retried.
     *
     * @throws InterruptedException if the thread is interrupted while waiting
     * @throws IOException          if the metadata service answers something no provider documents
     */
    CloudNotice await() throws InterruptedException, IOException;
}
