package io.spotserve.model;

import java.util.List;

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
}
