package io.spotserve.langchain4j;

import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.DefaultChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.chat.response.StreamingHandle;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A LangChain4j {@link StreamingChatModel} on a {@link io.spotserve.engine.ServingEngine}: partial responses as
 * tokens are committed (never retracted, even across a preemption), then the complete response; or one
 * {@code onError}. The handler is called from a thread of this model, never the engine's, one call at a time per
 * request. {@link StreamingHandle#cancel()} (from {@link PartialResponseContext#streamingHandle()}) cancels the
 * request in the engine; the handler hears nothing more after it. Built by
 * {@link SpotServeChatModel.Builder#buildStreaming()}.
 */
public final class SpotServeStreamingChatModel implements StreamingChatModel {
    private static final ExecutorService DELIVERY = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "spotserve-langchain4j");
        t.setDaemon(true);
        return t;
    });

    private final ChatSettings settings;

    SpotServeStreamingChatModel(ChatSettings settings) {
        this.settings = settings;
    }

    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        ChatSettings.Translated translated;
        try {
            translated = settings.translate(request);
        } catch (RuntimeException e) {
            handler.onError(e);
            return;
        }
        LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
        ChatGeneration g = new ChatGeneration(settings, translated, events::add);
        Handle handle = new Handle(g);
        try {
            g.start();
        } catch (RuntimeException e) {
            handler.onError(e);
            return;
        }
        g.result().whenComplete((r, e) -> events.add(e != null ? new Failure(e) : r));
        DELIVERY.execute(() -> deliver(events, handler, handle));
    }

    private static void deliver(LinkedBlockingQueue<Object> events, StreamingChatResponseHandler handler, Handle handle) {
        PartialResponseContext context = new PartialResponseContext(handle);
        try {
            while (!handle.isCancelled()) {
                Object e = events.take();
                if (handle.isCancelled()) {
                    return;
                }
                if (e instanceof String s) {
                    handler.onPartialResponse(new PartialResponse(s), context);
                } else if (e instanceof ChatResponse r) {
                    handler.onCompleteResponse(r);
                    return;
                } else {
                    Throwable t = ((Failure) e).cause();
                    if (t instanceof CancellationException || handle.isCancelled()) {
                        return;
                    }
                    handler.onError(t instanceof CompletionException && t.getCause() != null ? t.getCause() : t);
                    return;
                }
            }
        } catch (InterruptedException e) {
            handle.cancel();
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            handle.cancel(); // a handler that throws ends its own stream, nobody else's
            try {
                handler.onError(e);
            } catch (RuntimeException ignored) {
                // the handler failed twice: nothing left to tell it
            }
        }
    }

    @Override
    public ChatRequestParameters defaultRequestParameters() {
        return DefaultChatRequestParameters.builder().modelName(settings.modelName())
                .temperature(settings.temperature()).topP(settings.topP()).build();
    }

    private record Failure(Throwable cause) {
    }

    /** Cancels one request. */
    private static final class Handle implements StreamingHandle {
        private final ChatGeneration generation;
        private final AtomicBoolean cancelled = new AtomicBoolean();

        Handle(ChatGeneration generation) {
            this.generation = generation;
        }

        @Override
        public void cancel() {
            if (cancelled.compareAndSet(false, true)) {
                generation.cancel();
            }
        }

        @Override
        public boolean isCancelled() {
            return cancelled.get();
        }
    }
}
