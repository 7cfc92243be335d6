package io.spotserve.langchain4j;

import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.DefaultChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import io.spotserve.engine.ServingEngine;
import io.spotserve.model.ChatTemplate;
import io.spotserve.model.ModelChatTemplate;
import io.spotserve.model.ModelSource;
import java.io.IOException;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * A LangChain4j {@link ChatModel} on a {@link ServingEngine}: each call renders the messages with the chat
 * template, generates on the engine (surviving preemptions like any engine request) and answers with the text,
 * finish reason and token usage. Tools, JSON response formats, top-k and penalties are refused with
 * {@link dev.langchain4j.exception.UnsupportedFeatureException}. An interrupted caller cancels its request.
 *
 * <pre>{@code
 * ChatModel model = SpotServeChatModel.builder().engine(engine).build();
 * String answer = model.chat("Tell me a story");
 * }</pre>
 */
public final class SpotServeChatModel implements ChatModel {
    private final ChatSettings settings;

    SpotServeChatModel(ChatSettings settings) {
        this.settings = settings;
    }

    /** A builder; {@link Builder#engine} is required. */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        ChatGeneration g = new ChatGeneration(settings, settings.translate(request), s -> { }).start();
        try {
            return g.result().get();
        } catch (InterruptedException e) {
            g.cancel();
            Thread.currentThread().interrupt();
            throw new CancellationException("interrupted while generating; the request was cancelled");
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            throw c instanceof RuntimeException r ? r : new CompletionException(c);
        }
    }

    @Override
    public ChatRequestParameters defaultRequestParameters() {
        return DefaultChatRequestParameters.builder().modelName(settings.modelName())
                .temperature(settings.temperature()).topP(settings.topP()).build();
    }

    /** Configures {@link SpotServeChatModel} and {@link SpotServeStreamingChatModel}. */
    public static final class Builder {
        private ServingEngine engine;
        private ChatTemplate template;
        private ChatTemplate modelTemplate;
        private String modelName = "spotserve";
        private double temperature = 0;
        private double topP = 1;
        private Long seed;

        private Builder() {
        }

        /** The engine to generate on (required); the models do not close it. */
        public Builder engine(ServingEngine engine) {
            this.engine = Objects.requireNonNull(engine, "engine");
            return this;
        }

        /**
         * How messages become a prompt. It wins over the template of {@link #model(ModelSource)}; without either,
         * {@link ChatTemplate#plain()}.
         */
        public Builder chatTemplate(ChatTemplate template) {
            this.template = Objects.requireNonNull(template, "chatTemplate");
            return this;
        }

        /**
         * The model the engine serves, for its chat template: the Jinja2 template a GGUF file or a Hugging Face folder
         * ships (with its BOS/EOS token texts) becomes the default; a model without one leaves
         * {@link ChatTemplate#plain()}. A template set with {@link #chatTemplate(ChatTemplate)} still wins.
         *
         * @throws IOException if the model's template field is malformed
         * @throws io.spotserve.model.jinja.JinjaException if the model's template does not parse
         */
        public Builder model(ModelSource source) throws IOException {
            Optional<ModelChatTemplate> t = Objects.requireNonNull(source, "model").chatTemplate();
            this.modelTemplate = t.isPresent() ? t.get().template() : null;
            return this;
        }

        /** The model name responses report; default {@code spotserve}. */
        public Builder modelName(String name) {
            this.modelName = Objects.requireNonNull(name, "modelName");
            return this;
        }

        /** Default temperature for requests that set none; default 0 (greedy). */
        public Builder temperature(double t) {
            if (!(t >= 0) || Double.isInfinite(t)) {
                throw new IllegalArgumentException("temperature must be a finite number >= 0, was " + t);
            }
            this.temperature = t;
            return this;
        }

        /** Default nucleus mass for requests that set none, in (0, 1]; default 1. */
        public Builder topP(double p) {
            if (!(p > 0 && p <= 1)) {
                throw new IllegalArgumentException("topP must be in (0, 1], was " + p);
            }
            this.topP = p;
            return this;
        }

        /** Sampler seed of every request (reproducible sampling); default a fresh one per request. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        private ChatSettings settings() {
            if (engine == null) {
                throw new IllegalStateException("engine is required: builder().engine(engine)");
            }
            ChatTemplate chosen = template != null ? template : modelTemplate != null ? modelTemplate
                    : ChatTemplate.plain();
            return new ChatSettings(engine, chosen, modelName, temperature, topP, seed);
        }

        /** The blocking chat model. */
        public SpotServeChatModel build() {
            return new SpotServeChatModel(settings());
        }

        /** The streaming chat model. */
        public SpotServeStreamingChatModel buildStreaming() {
            return new SpotServeStreamingChatModel(settings());
        }
    }
}
