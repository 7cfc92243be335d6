package io.spotserve.engine;

import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The subscription of one streaming request (Reactive Streams rules via {@link Flow}): tokens are buffered
 * (at most maxNewTokens of them, so memory is bounded) and handed out as the subscriber requests them;
 * onNext/onComplete/onError are serialised by a work-in-progress counter, so they never overlap and arrive in
 * order whichever thread (engine or subscriber) triggers delivery.
 */
final class TokenPublisher implements Flow.Subscription {
    private static final Logger LOG = LoggerFactory.getLogger(TokenPublisher.class);

    private final Flow.Subscriber<? super Token> subscriber;
    private final ConcurrentLinkedQueue<Token> buffer = new ConcurrentLinkedQueue<>();
    private final AtomicLong demand = new AtomicLong();
    private final AtomicInteger wip = new AtomicInteger();
    private volatile boolean cancelled;
    private volatile boolean done;
    private volatile Throwable error;
    /** What the subscriber did wrong (onNext threw, request(n <= 0)), or null. */
    private volatile Throwable subscriberError;
    private boolean terminated;

    TokenPublisher(Flow.Subscriber<? super Token> subscriber) {
        this.subscriber = Objects.requireNonNull(subscriber, "subscriber");
    }

    void subscribe() {
        subscriber.onSubscribe(this);
    }

    boolean isCancelled() {
        return cancelled;
    }

    /**
     * What the subscriber did wrong, or null: {@code onNext} threw (rule 2.13) or it requested {@code n <= 0}
     * (rule 3.9). The engine fails the request with it as the cause rather than treating it as a cancellation.
     */
    Throwable subscriberError() {
        return subscriberError;
    }

    void offer(Token token) {
        if (!cancelled) {
            buffer.add(token);
            drain();
        }
    }

    void complete() {
        done = true;
        drain();
    }

    void fail(Throwable t) {
        error = t;
        done = true;
        drain();
    }

    @Override
    public void request(long n) {
        if (n <= 0) {
            IllegalArgumentException e = new IllegalArgumentException(
                    "Subscription.request(n) needs n > 0, was " + n + " (rule 3.9)");
            if (subscriberError == null) {
                subscriberError = e;
            }
            fail(e);
            cancelled = true;
            return;
        }
        demand.getAndAccumulate(n, (a, b) -> a + b < 0 ? Long.MAX_VALUE : a + b);
        drain();
    }

    @Override
    public void cancel() {
        cancelled = true;
        buffer.clear();
    }

    private void drain() {
        if (wip.getAndIncrement() != 0) {
            return;
        }
        int missed = 1;
        do {
            try {
                while (!cancelled && demand.get() > 0) {
                    Token t = buffer.poll();
                    if (t == null) {
                        break;
                    }
                    demand.decrementAndGet();
                    subscriber.onNext(t);
                }
                if (!terminated && done && (buffer.isEmpty() || error != null)) {
                    terminated = true;
                    if (error != null) {
                        if (!cancelled) {
                            subscriber.onError(error);
                        }
                    } else if (!cancelled) {
                        subscriber.onComplete();
                    }
                }
            } catch (RuntimeException e) {
                LOG.warn("streaming subscriber threw; cancelling its subscription", e);
                if (subscriberError == null) {
                    subscriberError = e;
                }
                cancelled = true;
                buffer.clear();
            }
            missed = wip.addAndGet(-missed);
        } while (missed != 0);
    }
}
