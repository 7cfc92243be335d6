package io.spotserve.server;

import io.spotserve.model.ChatMessage;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A validated body of {@code POST /v1/completions} or {@code POST /v1/chat/completions}. Every field that is
 * wrong fails with a 400 naming it; fields the server cannot honour (n &gt; 1, echo, logprobs, penalties, tools,
 * ...) are rejected rather than silently ignored.
 *
 * @param chat         a chat request (messages) rather than a text completion (prompt)
 * @param model        the model asked for, or null
 * @param prompt       the prompt text of a completion request, null for chat
 * @param messages     the messages of a chat request, null for a completion
 * @param maxTokens    most tokens to generate, or null for the endpoint's default
 * @param temperature  0 = greedy
 * @param topP         nucleus mass in (0, 1]
 * @param seed         sampler seed, or null for a fresh one
 * @param stop         stop sequences (at most 4, none empty)
 * @param stream       answer with server-sent events
 * @param includeUsage {@code stream_options.include_usage}: a last chunk with the usage
 */
record OpenAiRequest(boolean chat, String model, String prompt, List<ChatMessage> messages, Integer maxTokens,
                     float temperature, float topP, Long seed, List<String> stop, boolean stream,
                     boolean includeUsage) {

    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant");
    /** Fields with no effect at their neutral value that we cannot honour otherwise: name → neutral value test. */
    private static final Map<String, String> UNSUPPORTED = Map.of(
            "echo", "false", "best_of", "1", "logprobs", "false|null|0", "top_logprobs", "null|0",
            "presence_penalty", "0|0.0", "frequency_penalty", "0|0.0", "suffix", "null|\"\"",
            "tools", "null|[]", "functions", "null|[]", "logit_bias", "null|{}");

    static OpenAiRequest parse(String body, boolean chat) throws ApiException {
        JsonObject o;
        try {
            JsonElement e = JsonParser.parseString(body);
            if (!e.isJsonObject()) {
                throw ApiException.badRequest("the request body must be a JSON object");
            }
            o = e.getAsJsonObject();
        } catch (JsonParseException e) {
            throw ApiException.badRequest("the request body is not valid JSON");
        }
        for (Map.Entry<String, String> u : UNSUPPORTED.entrySet()) {
            JsonElement v = o.get(u.getKey());
            if (v != null && !Set.of(u.getValue().split("\\|")).contains(v.toString())) {
                throw ApiException.badField(u.getKey(), "'" + u.getKey() + "' is not supported by this server (got "
                        + v + ")");
            }
        }
        String model = string(o, "model");
        String prompt = null;
        List<ChatMessage> messages = null;
        if (chat) {
            messages = messages(o);
        } else {
            prompt = prompt(o);
        }
        Integer n = integer(o, "n");
        if (n != null && n != 1) {
            throw ApiException.badField("n", "only n = 1 is supported, got " + n);
        }
        Integer maxTokens = integer(o, "max_tokens");
        Integer maxCompletion = chat ? integer(o, "max_completion_tokens") : null;
        if (maxTokens == null) {
            maxTokens = maxCompletion;
        }
        String maxField = o.has("max_tokens") || !o.has("max_completion_tokens") ? "max_tokens" : "max_completion_tokens";
        if (maxTokens != null && maxTokens < 1) {
            throw ApiException.badField(maxField, "'" + maxField + "' must be >= 1, got " + maxTokens);
        }
        Double t = number(o, "temperature");
        float temperature = t == null ? 1f : t.floatValue();
        if (t != null && !(t >= 0 && t <= 2)) {
            throw ApiException.badField("temperature", "'temperature' must be in [0, 2], got " + t);
        }
        Double p = number(o, "top_p");
        float topP = p == null ? 1f : p.floatValue();
        if (p != null && !(p > 0 && p <= 1)) {
            throw ApiException.badField("top_p", "'top_p' must be in (0, 1], got " + p);
        }
        Long seed = null;
        JsonElement s = o.get("seed");
        if (s != null && !s.isJsonNull()) {
            try {
                seed = s.getAsJsonPrimitive().isNumber() ? s.getAsBigDecimal().longValueExact() : null;
            } catch (ArithmeticException | NumberFormatException | UnsupportedOperationException | IllegalStateException e) {
                seed = null;
            }
            if (seed == null) {
                throw ApiException.badField("seed", "'seed' must be a 64-bit integer, got " + s);
            }
        }
        List<String> stop = stop(o);
        Boolean stream = bool(o, "stream");
        boolean includeUsage = false;
        JsonElement so = o.get("stream_options");
        if (so != null && !so.isJsonNull()) {
            if (!so.isJsonObject()) {
                throw ApiException.badField("stream_options", "'stream_options' must be an object, got " + so);
            }
            Boolean iu = bool(so.getAsJsonObject(), "include_usage");
            includeUsage = iu != null && iu;
        }
        return new OpenAiRequest(chat, model, prompt, messages, maxTokens, temperature, topP, seed, stop,
                stream != null && stream, includeUsage);
    }

    private static String prompt(JsonObject o) throws ApiException {
        JsonElement e = o.get("prompt");
        if (e == null || e.isJsonNull()) {
            throw ApiException.badField("prompt", "'prompt' is required");
        }
        if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isString()) {
            return e.getAsString();
        }
        if (e.isJsonArray() && e.getAsJsonArray().size() == 1 && e.getAsJsonArray().get(0).isJsonPrimitive()
                && e.getAsJsonArray().get(0).getAsJsonPrimitive().isString()) {
            return e.getAsJsonArray().get(0).getAsString();
        }
        throw ApiException.badField("prompt", "'prompt' must be a string (or an array of one string), got "
                + abbreviate(e));
    }

    private static List<ChatMessage> messages(JsonObject o) throws ApiException {
        JsonElement e = o.get("messages");
        if (e == null || !e.isJsonArray() || e.getAsJsonArray().isEmpty()) {
            throw ApiException.badField("messages", "'messages' must be a non-empty array of {role, content}");
        }
        List<ChatMessage> out = new ArrayList<>();
        JsonArray a = e.getAsJsonArray();
        for (int i = 0; i < a.size(); i++) {
            String field = "messages[" + i + "]";
            if (!a.get(i).isJsonObject()) {
                throw ApiException.badField(field, "'" + field + "' must be an object {role, content}");
            }
            JsonObject m = a.get(i).getAsJsonObject();
            String role = string(m, "role", field + ".role");
            if (role == null || !ROLES.contains(role)) {
                throw ApiException.badField(field + ".role", "'" + field + ".role' must be one of " + ROLES
                        + ", got " + m.get("role"));
            }
            out.add(new ChatMessage(role, content(m.get("content"), field + ".content")));
        }
        return out;
    }

    /** A message's content: a string or an array of {type: "text", text} parts. */
    private static String content(JsonElement c, String field) throws ApiException {
        if (c != null && c.isJsonPrimitive() && c.getAsJsonPrimitive().isString()) {
            return c.getAsString();
        }
        if (c != null && c.isJsonArray()) {
            StringBuilder b = new StringBuilder();
            for (JsonElement part : c.getAsJsonArray()) {
                if (!part.isJsonObject() || !"text".equals(string(part.getAsJsonObject(), "type", field))
                        || string(part.getAsJsonObject(), "text", field) == null) {
                    throw ApiException.badField(field, "'" + field + "' parts must be {\"type\": \"text\", \"text\": "
                            + "...}; only text is supported, got " + abbreviate(part));
                }
                b.append(part.getAsJsonObject().get("text").getAsString());
            }
            return b.toString();
        }
        throw ApiException.badField(field, "'" + field + "' must be a string or an array of text parts, got "
                + (c == null ? "nothing" : abbreviate(c)));
    }

    private static List<String> stop(JsonObject o) throws ApiException {
        JsonElement e = o.get("stop");
        List<String> out = new ArrayList<>();
        if (e == null || e.isJsonNull()) {
            return out;
        }
        if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isString()) {
            out.add(e.getAsString());
        } else if (e.isJsonArray()) {
            for (JsonElement s : e.getAsJsonArray()) {
                if (!s.isJsonPrimitive() || !s.getAsJsonPrimitive().isString()) {
                    throw ApiException.badField("stop", "'stop' must be a string or an array of strings, got "
                            + abbreviate(e));
                }
                out.add(s.getAsString());
            }
        } else {
            throw ApiException.badField("stop", "'stop' must be a string or an array of strings, got " + abbreviate(e));
        }
        if (out.size() > 4 || out.stream().anyMatch(String::isEmpty)) {
            throw ApiException.badField("stop", "'stop' takes at most 4 non-empty sequences, got " + abbreviate(e));
        }
        return out;
    }

    private static String string(JsonObject o, String key) throws ApiException {
        return string(o, key, key);
    }

    private static String string(JsonObject o, String key, String field) throws ApiException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return null;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw ApiException.badField(field, "'" + field + "' must be a string, got " + abbreviate(e));
        }
        return e.getAsString();
    }

    private static Integer integer(JsonObject o, String key) throws ApiException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return null;
        }
        try {
            if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
                return e.getAsBigDecimal().intValueExact();
            }
        } catch (ArithmeticException ignored) {
            // not an int: reported below
        }
        throw ApiException.badField(key, "'" + key + "' must be an integer, got " + abbreviate(e));
    }

    private static Double number(JsonObject o, String key) throws ApiException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return null;
        }
        if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
            return e.getAsDouble();
        }
        throw ApiException.badField(key, "'" + key + "' must be a number, got " + abbreviate(e));
    }

    private static Boolean bool(JsonObject o, String key) throws ApiException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return null;
        }
        if (e.isJsonPrimitive() && ((JsonPrimitive) e).isBoolean()) {
            return e.getAsBoolean();
        }
        throw ApiException.badField(key, "'" + key + "' must be true or false, got " + abbreviate(e));
    }

    private static String abbreviate(JsonElement e) {
        String s = e.toString();
        return s.length() <= 60 ? s : s.substring(0, 57) + "...";
    }
}
