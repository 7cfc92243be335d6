package io.spotserve.worker;

import io.spotserve.engine.Token;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Flow;

/** Collects the tokens streamed to one request; opens {@code streamed} once it has seen {@code after}. */
final class TokenCollector implements Flow.Subscriber<Token> {
    final List<Integer> tokens = new CopyOnWriteArrayList<>();
    private final CountDownLatch streamed;
    private final int after;

    TokenCollector(CountDownLatch streamed, int after) {
        this.streamed = streamed;
        this.after = after;
    }

    @Override
    public void onSubscribe(Flow.Subscription s) {
        s.request(Long.MAX_VALUE);
    }

    @Override
    public void onNext(Token t) {
        tokens.add(t.id());
        if (tokens.size() == after) {
            streamed.countDown();
        }
    }

    @Override
    public void onError(Throwable t) {
    }

    @Override
    public void onComplete() {
    }
}
