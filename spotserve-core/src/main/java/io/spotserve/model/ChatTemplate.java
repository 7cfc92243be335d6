package io.spotserve.model;

import io.spotserve.model.jinja.JinjaTemplate;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Turns the messages of a chat request into the prompt text the model continues. A model that was trained with
 * a chat format supplies its own; {@link #plain()} is the default for models without one.
 */
@FunctionalInterface
public interface ChatTemplate {
    /** The prompt for {@code messages}, ending where the assistant's reply should begin. */
    String render(List<ChatMessage> messages);

    /**
     * The plain template: one {@code Role: content} paragraph per message ({@code System}, {@code User},
     * {@code Assistant}; {@code developer} counts as system), then {@code Assistant:} for the reply.
     */
    static ChatTemplate plain() {
        return messages -> {
            StringBuilder b = new StringBuilder();
            for (ChatMessage m : messages) {
                String role = switch (m.role()) {
                    case "system", "developer" -> "System";
                    case "assistant" -> "Assistant";
                    default -> "User";
                };
                b.append(role).append(": ").append(m.content()).append("\n\n");
            }
            return b.append("Assistant:").toString();
        };
    }

    /**
     * A model's own Jinja2 chat template (see {@link JinjaTemplate} for the language), rendered with
     * {@code messages} (each a dict of {@code role} and {@code content}), {@code add_generation_prompt = true},
     * {@code tools = none} unless given, and {@code extraVariables} (typically {@code bos_token} and
     * {@code eos_token}; they may override the defaults).
     *
     * @throws io.spotserve.model.jinja.JinjaException if {@code source} does not parse (rendering errors, such as
     *                                                  the template's {@code raise_exception} on a conversation it
     *                                                  does not accept, come from {@link #render})
     */
    static ChatTemplate jinja(String source, Map<String, ?> extraVariables) {
        return jinja(JinjaTemplate.parse(source), extraVariables);
    }

    /** {@link #jinja(String, Map)} for an already parsed template (e.g. one with custom limits or clock). */
    static ChatTemplate jinja(JinjaTemplate template, Map<String, ?> extraVariables) {
        Objects.requireNonNull(template, "template");
        Map<String, Object> fixed = new HashMap<>();
        fixed.put("add_generation_prompt", true);
        fixed.put("tools", null);
        fixed.putAll(Objects.requireNonNull(extraVariables, "extraVariables"));
        return messages -> {
            Map<String, Object> vars = new HashMap<>(fixed);
            List<Map<String, Object>> list = new ArrayList<>(messages.size());
            for (ChatMessage m : messages) { // the interpreter knows plain values only, not our types
                Map<String, Object> message = new LinkedHashMap<>();
                message.put("role", m.role());
                message.put("content", m.content());
                list.add(message);
            }
            vars.put("messages", list);
            return template.render(vars);
        };
    }
}
