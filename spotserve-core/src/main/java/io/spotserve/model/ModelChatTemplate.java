package io.spotserve.model;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.spotserve.model.jinja.JinjaException;
import io.spotserve.model.jinja.JinjaTemplate;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * The chat template a model ships (Jinja2 source) with the special-token strings it refers to: GGUF's
 * {@code tokenizer.chat_template} (tokens named by {@code tokenizer.ggml.bos_token_id}/{@code eos_token_id}) or
 * Hugging Face's {@code tokenizer_config.json} ({@code chat_template}, {@code bos_token}, {@code eos_token}).
 *
 * @param source   the Jinja2 template text
 * @param bosToken the beginning-of-sequence token's text, {@code ""} if the model has none
 * @param eosToken the end-of-sequence token's text, {@code ""} if the model has none
 */
public record ModelChatTemplate(String source, String bosToken, String eosToken) {
    /** The Hugging Face file that holds the template. */
    public static final String TOKENIZER_CONFIG = "tokenizer_config.json";

    public ModelChatTemplate {
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(bosToken, "bosToken");
        Objects.requireNonNull(eosToken, "eosToken");
    }

    /**
     * The template ready to render chat messages ({@code bos_token} and {@code eos_token} set, generation prompt on).
     *
     * @throws JinjaException if the source does not parse
     */
    public ChatTemplate template() {
        return ChatTemplate.jinja(source, variables());
    }

    /** The same, on an already configured template (custom limits or clock). */
    public ChatTemplate template(JinjaTemplate.Limits limits) {
        return ChatTemplate.jinja(JinjaTemplate.parse(source, limits), variables());
    }

    private Map<String, Object> variables() {
        Map<String, Object> v = new HashMap<>();
        v.put("bos_token", bosToken);
        v.put("eos_token", eosToken);
        return v;
    }

    /**
     * Reads the template of a Hugging Face {@code tokenizer_config.json}. {@code chat_template} may be a string or a
     * list of {@code {name, template}} (the one named {@code default} is taken, else the first); tokens may be a
     * string or an object with {@code content}.
     *
     * @return empty when the file has no {@code chat_template}
     * @throws ModelFormatException if the file is not JSON or its fields have the wrong shape
     */
    public static Optional<ModelChatTemplate> fromTokenizerConfig(Path file) throws IOException {
        JsonObject j;
        try {
            j = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new ModelFormatException(file, TOKENIZER_CONFIG, "not a JSON object (" + e.getMessage() + ")",
                    "a tokenizer config");
        }
        JsonElement t = j.get("chat_template");
        if (t == null || t.isJsonNull()) {
            return Optional.empty();
        }
        String source;
        if (t.isJsonPrimitive() && t.getAsJsonPrimitive().isString()) {
            source = t.getAsString();
        } else if (t.isJsonArray()) {
            source = named((JsonArray) t, file);
        } else {
            throw new ModelFormatException(file, "chat_template", t.toString().length() > 40 ? "a "
                    + (t.isJsonObject() ? "JSON object" : "non-string value") : t.toString(),
                    "a string or a list of {name, template}");
        }
        return Optional.of(new ModelChatTemplate(source, token(j, "bos_token", file), token(j, "eos_token", file)));
    }

    private static String named(JsonArray list, Path file) throws ModelFormatException {
        String first = null;
        for (JsonElement e : list) {
            if (!e.isJsonObject() || !e.getAsJsonObject().has("template")
                    || !e.getAsJsonObject().get("template").isJsonPrimitive()) {
                throw new ModelFormatException(file, "chat_template[]", e.toString().length() > 40 ? "an entry"
                        : e.toString(), "{\"name\": ..., \"template\": \"...\"}");
            }
            JsonObject o = e.getAsJsonObject();
            String template = o.get("template").getAsString();
            if (o.has("name") && "default".equals(o.get("name").getAsString())) {
                return template;
            }
            if (first == null) {
                first = template;
            }
        }
        if (first == null) {
            throw new ModelFormatException(file, "chat_template", "an empty list", "at least one template");
        }
        return first;
    }

    private static String token(JsonObject j, String field, Path file) throws ModelFormatException {
        JsonElement e = j.get(field);
        if (e == null || e.isJsonNull()) {
            return "";
        }
        if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isString()) {
            return e.getAsString();
        }
        if (e.isJsonObject() && e.getAsJsonObject().has("content")
                && e.getAsJsonObject().get("content").isJsonPrimitive()) {
            return e.getAsJsonObject().get("content").getAsString();
        }
        throw new ModelFormatException(file, field, e.toString().length() > 60 ? "a " + (e.isJsonObject()
                ? "JSON object without content" : "non-string value") : e.toString(),
                "a string or {\"content\": \"...\"}");
    }
}
