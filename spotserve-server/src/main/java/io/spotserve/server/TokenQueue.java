package io.spotserve.server;

import io.spotserve.engine.Token;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The subscriber of one request's token stream: the engine's signals go into a queue (never blocking the engine
 * thread) that the HTTP thread of the request drains and writes to its client.
 */
final class TokenQueue implements Flow.Subscriber<Token> {
    /** The end of the stream: {@code error} is null when it completed normally. */
    record End(Throwable error) {
    }

    private final LinkedBlockingQueue<Object> queue = new LinkedBlockingQueue<>();
    private volatile Flow.Subscription subscription;

    @Override
    public void onSubscribe(Flow.Subscription s) {
        subscription = s;
        s.request(Long.MAX_VALUE);
    }

    @Override
    public void onNext(Token t) {
        queue.add(t);
    }

    @Override
    public void onError(Throwable t) {
        queue.add(new End(t));
    }

    @Override
    public void onComplete() {
        queue.add(new End(null));
    }

    /** The next {@link Token} or {@link End}, or null after {@code millis} without one. */
    Object poll(long millis) throws InterruptedException {
        return queue.poll(millis, TimeUnit.MILLISECONDS);
    }

    /** Cancels the request in the engine (client gone, stop sequence reached). */
    void cancel() {
        Flow.Subscription s = subscription;
        if (s != null) {
            s.cancel();
        }
    }
}
