package io.spotserve.model;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Reads a Hugging Face {@code tokenizer.json} of a byte-level BPE model into a {@link Tokenizer}. */
final class HfTokenizerJson {
    private HfTokenizerJson() {
    }

    static Tokenizer read(Path file, int bosId, int eosId) throws IOException {
        JsonObject j;
        try {
            j = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new ModelFormatException(file, "tokenizer.json", "not a JSON object (" + e.getMessage() + ")",
                    "a Hugging Face tokenizer");
        }
        JsonObject model = j.getAsJsonObject("model");
        String type = model == null || !model.has("type") ? "missing" : model.get("type").getAsString();
        if (!"BPE".equals(type)) {
            throw new ModelFormatException(file, "model.type", type, "BPE");
        }
        if (model.has("byte_fallback") && model.get("byte_fallback").getAsBoolean()) {
            throw new ModelFormatException(file, "model.byte_fallback", "true (a SentencePiece-style BPE, e.g. Llama 2)",
                    "a byte-level BPE (Llama 3); load Llama 2 vocabularies from GGUF or tokenizer.bin");
        }
        String pre = String.valueOf(j.get("pre_tokenizer"));
        if (!pre.contains("ByteLevel") || !pre.contains("\\\\p{N}{1,3}")) {
            throw new ModelFormatException(file, "pre_tokenizer", pre.length() > 200 ? pre.substring(0, 200) + "..." : pre,
                    "Llama 3's Split regex followed by ByteLevel");
        }
        JsonObject vocab = model.getAsJsonObject("vocab");
        Map<String, Integer> specials = new HashMap<>();
        int size = 0;
        for (Map.Entry<String, JsonElement> e : vocab.entrySet()) {
            size = Math.max(size, e.getValue().getAsInt() + 1);
        }
        JsonArray added = j.has("added_tokens") ? j.getAsJsonArray("added_tokens") : new JsonArray();
        for (JsonElement a : added) {
            size = Math.max(size, a.getAsJsonObject().get("id").getAsInt() + 1);
        }
        String[] tokens = new String[size];
        for (Map.Entry<String, JsonElement> e : vocab.entrySet()) {
            tokens[e.getValue().getAsInt()] = e.getKey();
        }
        for (JsonElement a : added) {
            JsonObject o = a.getAsJsonObject();
            int id = o.get("id").getAsInt();
            String content = o.get("content").getAsString();
            tokens[id] = content;
            specials.put(content, id);
        }
        for (int i = 0; i < size; i++) {
            if (tokens[i] == null) {
                throw new ModelFormatException(file, "vocab", "without id " + i, "contiguous ids 0.." + (size - 1));
            }
        }
        List<String> merges = new ArrayList<>();
        for (JsonElement m : model.getAsJsonArray("merges")) {
            if (m.isJsonArray()) {
                merges.add(m.getAsJsonArray().get(0).getAsString() + " " + m.getAsJsonArray().get(1).getAsString());
            } else {
                merges.add(m.getAsString());
            }
        }
        boolean ignoreMerges = model.has("ignore_merges") && model.get("ignore_merges").getAsBoolean();
        try {
            return Tokenizer.byteLevel(file, new ByteLevelBpe(tokens, merges, specials, ignoreMerges), bosId, eosId);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, "vocab/merges", e.getMessage(), "a byte-level BPE vocabulary");
        }
    }
}
