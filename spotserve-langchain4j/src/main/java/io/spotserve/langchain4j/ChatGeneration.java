package io.spotserve.langchain4j;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.ChatResponseMetadata;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import io.spotserve.engine.Completion;
import io.spotserve.engine.Token;
import io.spotserve.model.StopMatcher;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.function.Consumer;

/**
 * One chat generation on the engine as a token subscriber: applies stop sequences, hands released text to
 * {@code partial} and completes {@link #result()} with the {@link ChatResponse} (or exceptionally). Signals
 * arrive on the engine thread, so {@code partial} must not block; the models hand them to their own threads.
 */
final class ChatGeneration implements Flow.Subscriber<Token> {
    private final ChatSettings settings;
    private final ChatSettings.Translated translated;
    private final StopMatcher stop;
    private final Consumer<String> partial;
    private final StringBuilder text = new StringBuilder();
    private final CompletableFuture<ChatResponse> result = new CompletableFuture<>();
    private volatile Flow.Subscription subscription;
    private int tokens;

    ChatGeneration(ChatSettings settings, ChatSettings.Translated translated, Consumer<String> partial) {
        this.settings = settings;
        this.translated = translated;
        this.stop = new StopMatcher(translated.stops());
        this.partial = partial;
    }

    /** Submits to the engine; the engine's completion completes {@link #result()}. */
    ChatGeneration start() {
        CompletableFuture<Completion> f = settings.engine().submit(translated.request(), this);
        f.whenComplete((c, e) -> {
            if (e != null) {
                result.completeExceptionally(e);
            } else {
                synchronized (this) {
                    release(stop.flush()); // the text held back for stop sequences, if onComplete has not yet
                    finish(c.reason() == Completion.FinishReason.LENGTH ? FinishReason.LENGTH : FinishReason.STOP,
                            c.promptLength(), c.tokens().length);
                }
            }
        });
        return this;
    }

    CompletableFuture<ChatResponse> result() {
        return result;
    }

    /** Stops generating; the result completes as cancelled. */
    void cancel() {
        Flow.Subscription s = subscription;
        if (s != null) {
            s.cancel();
        }
        result.cancel(false);
    }

    @Override
    public void onSubscribe(Flow.Subscription s) {
        subscription = s;
        s.request(Long.MAX_VALUE);
    }

    @Override
    public synchronized void onNext(Token t) {
        if (stop.stopped() || result.isDone()) {
            return;
        }
        tokens++;
        release(stop.accept(t.text()));
        if (stop.stopped()) {
            subscription.cancel();
            finish(FinishReason.STOP, translated.promptTokens(), tokens);
        }
    }

    @Override
    public void onError(Throwable t) {
        result.completeExceptionally(t);
    }

    @Override
    public synchronized void onComplete() {
        release(stop.flush());
    }

    private void release(String s) {
        if (!s.isEmpty()) {
            text.append(s);
            partial.accept(s);
        }
    }

    private synchronized void finish(FinishReason reason, int promptTokens, int generated) {
        result.complete(ChatResponse.builder().aiMessage(AiMessage.from(text.toString()))
                .metadata(ChatResponseMetadata.builder().modelName(settings.modelName()).finishReason(reason)
                        .tokenUsage(new TokenUsage(promptTokens, generated)).build()).build());
    }
}
