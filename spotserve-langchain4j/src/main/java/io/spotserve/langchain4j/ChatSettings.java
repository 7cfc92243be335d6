package io.spotserve.langchain4j;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.ServingEngine;
import io.spotserve.model.ChatTemplate;
import io.spotserve.model.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;

/**
 * What both chat models share: the engine, the chat template, the model name and the defaults; and the
 * translation of a LangChain4j {@link ChatRequest} into an engine {@link GenerationRequest}.
 */
record ChatSettings(ServingEngine engine, ChatTemplate template, String modelName, double temperature, double topP,
                    Long seed) {

    ChatSettings {
        Objects.requireNonNull(engine, "engine");
        Objects.requireNonNull(template, "chatTemplate");
        Objects.requireNonNull(modelName, "modelName");
    }

    /** A request translated: the engine's request, the prompt's token count and the stop sequences. */
    record Translated(GenerationRequest request, int promptTokens, List<String> stops) {
    }

    /**
     * Translates {@code r}; parameters it leaves null take this model's defaults.
     *
     * @throws UnsupportedFeatureException for tools, JSON response formats, top-k and penalties
     * @throws IllegalArgumentException    for values out of range or a prompt longer than the context
     */
    Translated translate(ChatRequest r) {
        ChatRequestParameters p = r.parameters();
        if (p.toolSpecifications() != null && !p.toolSpecifications().isEmpty()) {
            throw new UnsupportedFeatureException("tools are not supported by SpotServe-J chat models");
        }
        if (p.responseFormat() != null && p.responseFormat().type() == ResponseFormatType.JSON) {
            throw new UnsupportedFeatureException("JSON response format is not supported by SpotServe-J chat models");
        }
        if (p.topK() != null) {
            throw new UnsupportedFeatureException("topK is not supported (use topP)");
        }
        if (p.frequencyPenalty() != null && p.frequencyPenalty() != 0 || p.presencePenalty() != null && p.presencePenalty() != 0) {
            throw new UnsupportedFeatureException("frequency and presence penalties are not supported");
        }
        if (p.modelName() != null && !p.modelName().equals(modelName)) {
            throw new IllegalArgumentException("modelName '" + p.modelName() + "' is not served here; this model is '"
                    + modelName + "'");
        }
        List<io.spotserve.model.ChatMessage> messages = new ArrayList<>();
        for (ChatMessage m : r.messages()) {
            if (m instanceof SystemMessage s) {
                messages.add(new io.spotserve.model.ChatMessage("system", s.text()));
            } else if (m instanceof UserMessage u) {
                if (!u.hasSingleText()) {
                    throw new UnsupportedFeatureException("only text user messages are supported");
                }
                messages.add(new io.spotserve.model.ChatMessage("user", u.singleText()));
            } else if (m instanceof AiMessage a) {
                if (a.hasToolExecutionRequests()) {
                    throw new UnsupportedFeatureException("tool execution requests are not supported");
                }
                messages.add(new io.spotserve.model.ChatMessage("assistant", a.text() == null ? "" : a.text()));
            } else {
                throw new UnsupportedFeatureException("message type " + m.type() + " is not supported");
            }
        }
        String prompt = template.render(messages);
        Tokenizer t = engine.tokenizer();
        int promptTokens = t == null ? 1 : t.encode(prompt, true, false).length;
        int context = engine.contextLength();
        if (promptTokens >= context) {
            throw new IllegalArgumentException("the prompt has " + promptTokens + " tokens, the model's context is "
                    + context);
        }
        int maxTokens = p.maxOutputTokens() != null ? p.maxOutputTokens() : context - promptTokens;
        long s = seed != null ? seed : ThreadLocalRandom.current().nextLong();
        GenerationRequest request = GenerationRequest.builder().prompt(prompt).maxNewTokens(maxTokens)
                .temperature((float) (p.temperature() != null ? p.temperature() : temperature))
                .topP((float) (p.topP() != null ? p.topP() : topP)).seed(s != 0 ? s : 1).build();
        return new Translated(request, promptTokens, p.stopSequences() == null ? List.of() : p.stopSequences());
    }
}
