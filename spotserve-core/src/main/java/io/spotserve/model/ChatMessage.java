package io.spotserve.model;

import java.util.Objects;

/**
 * One message of a chat: who said it and what.
 *
 * @param role    {@code system}, {@code developer}, {@code user} or {@code assistant}
 * @param content the text
 */
public record ChatMessage(String role, String content) {
    public ChatMessage {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content");
    }
}
