package io.spotserve.plan;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Offline-profiled per-layer execution times of one model on one GPU type: the input of the SpotServe cost
 * model (paper §5 "cost model + offline profiler"; the artifact's {@code profile/T4-4x/*.json}).
 *
 * <p>JSON format (the artifact's, read and written unchanged):
 * <pre>{@code
 * {
 *   "name": "megatron_6.7B_profile",   // free text
 *   "layer_num": 32,                   // real transformer layers L
 *   "padded_layer_num": 36,            // layers after padding; the artifact requires padded_layer_num % P == 0
 *   "final_fix_factor": 1.1,           // multiplies every estimate
 *   "pp_init_comm": 5.3,               // ms per pipeline-stage boundary, prompt phase
 *   "pp_incr_comm": 0.07,              // ms per pipeline-stage boundary, one decode step
 *   "hidden_size": 4096,
 *   "max_tp": 16,                      // optional: largest tensor degree searched (default: largest tp-M present)
 *   "prompt_tokens": 512,              // optional (ours): prompt length the "init" times were taken at (default 512)
 *   "embed": [0.298, 0.372, 0.461, 0.719],       // ms, indexed by log2(B)
 *   "tp-1": {"bsz-1": {"init": 44.087, "incr": 3.224}, "bsz-2": {...}, ...},  // ms per layer
 *   "tp-2": {...}, ...
 * }
 * }</pre>
 * {@code init} is the time of one layer for the prompt phase of a micro-batch of {@code bsz} requests,
 * {@code incr} of one incremental decoding step; both already include the tensor-parallel all-reduce.
 * Tensor degrees and batch sizes are powers of two.
 *
 * @param name             free-text name of the profile
 * @param layerNum         real transformer layers L
 * @param paddedLayerNum   layers after padding (&gt;= L)
 * @param finalFixFactor   multiplier applied to every estimate
 * @param ppInitCommMs     ms per stage boundary in the prompt phase
 * @param ppIncrCommMs     ms per stage boundary in one decode step
 * @param hiddenSize       model width
 * @param maxTensorParallel largest tensor-parallel degree the optimizer may use
 * @param promptTokens     prompt length at which {@code init} was measured
 * @param embedMs          embedding time in ms, index log2(B)
 * @param layerTimes       tensor degree M → micro-batch size → per-layer times
 */
public record LatencyProfile(String name, int layerNum, int paddedLayerNum, double finalFixFactor,
                             double ppInitCommMs, double ppIncrCommMs, int hiddenSize, int maxTensorParallel,
                             int promptTokens, List<Double> embedMs,
                             SortedMap<Integer, SortedMap<Integer, LayerTimes>> layerTimes) {

    /** Prompt length the artifact's T4 profiles were taken at (profiles/README.md). */
    public static final int DEFAULT_PROMPT_TOKENS = 512;

    /**
     * Per-layer times of one (tensor degree, micro-batch size) cell.
     *
     * @param initMs ms per layer, prompt (initial) phase
     * @param incrMs ms per layer, one incremental decoding step
     */
    public record LayerTimes(double initMs, double incrMs) {
        public LayerTimes {
            if (!(initMs > 0) || Double.isInfinite(initMs) || !(incrMs > 0) || Double.isInfinite(incrMs)) {
                throw new IllegalArgumentException(
                        "layer times must be finite and > 0 ms, was init=" + initMs + " incr=" + incrMs);
            }
        }
    }

    public LatencyProfile {
        Objects.requireNonNull(name, "name");
        if (layerNum < 1) {
            throw new IllegalArgumentException("layer_num must be >= 1, was " + layerNum);
        }
        if (paddedLayerNum < layerNum) {
            throw new IllegalArgumentException(
                    "padded_layer_num must be >= layer_num " + layerNum + ", was " + paddedLayerNum);
        }
        if (!(finalFixFactor > 0) || Double.isInfinite(finalFixFactor)) {
            throw new IllegalArgumentException("final_fix_factor must be finite and > 0, was " + finalFixFactor);
        }
        requireNonNegative("pp_init_comm", ppInitCommMs);
        requireNonNegative("pp_incr_comm", ppIncrCommMs);
        if (hiddenSize < 1) {
            throw new IllegalArgumentException("hidden_size must be >= 1, was " + hiddenSize);
        }
        if (promptTokens < 1) {
            throw new IllegalArgumentException("prompt_tokens must be >= 1, was " + promptTokens);
        }
        Objects.requireNonNull(embedMs, "embed");
        if (embedMs.isEmpty()) {
            throw new IllegalArgumentException("embed must list at least one time (index log2 B), was empty");
        }
        for (int i = 0; i < embedMs.size(); i++) {
            requireNonNegative("embed[" + i + "]", Objects.requireNonNull(embedMs.get(i), "embed[" + i + "]"));
        }
        embedMs = List.copyOf(embedMs);
        Objects.requireNonNull(layerTimes, "layer times");
        if (layerTimes.isEmpty()) {
            throw new IllegalArgumentException("profile has no tp-M tables; expected at least tp-1");
        }
        SortedMap<Integer, SortedMap<Integer, LayerTimes>> copy = new TreeMap<>();
        for (Map.Entry<Integer, SortedMap<Integer, LayerTimes>> tp : layerTimes.entrySet()) {
            requirePowerOfTwo("tensor degree tp-", tp.getKey());
            if (tp.getValue().isEmpty()) {
                throw new IllegalArgumentException("tp-" + tp.getKey() + " has no bsz-B entries");
            }
            SortedMap<Integer, LayerTimes> row = new TreeMap<>();
            for (Map.Entry<Integer, LayerTimes> b : tp.getValue().entrySet()) {
                requirePowerOfTwo("batch size bsz-", b.getKey());
                row.put(b.getKey(), Objects.requireNonNull(b.getValue(), "tp-" + tp.getKey() + "/bsz-" + b.getKey()));
            }
            copy.put(tp.getKey(), Collections.unmodifiableSortedMap(row));
        }
        layerTimes = Collections.unmodifiableSortedMap(copy);
        if (maxTensorParallel < 1) {
            throw new IllegalArgumentException("max_tp must be >= 1, was " + maxTensorParallel);
        }
    }

    private static void requireNonNegative(String field, double v) {
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException(field + " must be finite and >= 0 ms, was " + v);
        }
    }

    private static void requirePowerOfTwo(String what, int v) {
        if (v < 1 || Integer.bitCount(v) != 1) {
            throw new IllegalArgumentException(what + v + " is not a power of two; expected 1, 2, 4, 8, ...");
        }
    }

    /** Per-layer times for tensor degree {@code tp} and micro-batch size {@code batch}. */
    public LayerTimes times(int tp, int batch) {
        SortedMap<Integer, LayerTimes> row = layerTimes.get(tp);
        if (row == null) {
            throw new IllegalArgumentException("profile '" + name + "' has no tp-" + tp + "; it has tp-" + layerTimes.keySet());
        }
        LayerTimes t = row.get(batch);
        if (t == null) {
            throw new IllegalArgumentException(
                    "profile '" + name + "' has no tp-" + tp + "/bsz-" + batch + "; it has bsz-" + row.keySet());
        }
        return t;
    }

    /** Reads a profile file; see the class javadoc for the format. */
    public static LatencyProfile read(Path file) {
        try {
            return parse(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read latency profile " + file, e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** Parses the JSON text of a profile. */
    public static LatencyProfile parse(String json) {
        JsonObject o;
        try {
            JsonElement root = JsonParser.parseString(json);
            if (!root.isJsonObject()) {
                throw new IllegalArgumentException("latency profile must be a JSON object, was " + kind(root));
            }
            o = root.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new IllegalArgumentException("latency profile is not valid JSON: " + e.getMessage(), e);
        }
        SortedMap<Integer, SortedMap<Integer, LayerTimes>> tables = new TreeMap<>();
        for (Map.Entry<String, JsonElement> e : o.entrySet()) {
            if (!e.getKey().startsWith("tp-")) {
                continue;
            }
            int tp = parseSuffix(e.getKey(), "tp-");
            if (!e.getValue().isJsonObject()) {
                throw new IllegalArgumentException(e.getKey() + " must be an object of bsz-B entries, was " + kind(e.getValue()));
            }
            SortedMap<Integer, LayerTimes> row = new TreeMap<>();
            for (Map.Entry<String, JsonElement> b : e.getValue().getAsJsonObject().entrySet()) {
                int bsz = parseSuffix(b.getKey(), "bsz-");
                String where = e.getKey() + "/" + b.getKey();
                if (!b.getValue().isJsonObject()) {
                    throw new IllegalArgumentException(where + " must be an object {init, incr}, was " + kind(b.getValue()));
                }
                JsonObject cell = b.getValue().getAsJsonObject();
                try {
                    row.put(bsz, new LayerTimes(number(cell, "init", where), number(cell, "incr", where)));
                } catch (IllegalArgumentException ex) {
                    throw new IllegalArgumentException(where + ": " + ex.getMessage(), ex);
                }
            }
            tables.put(tp, row);
        }
        JsonElement embedElement = o.get("embed");
        if (embedElement == null || !embedElement.isJsonArray()) {
            throw new IllegalArgumentException("field 'embed' must be an array of ms indexed by log2(B), was "
                    + (embedElement == null ? "missing" : kind(embedElement)));
        }
        List<Double> embed = new ArrayList<>();
        for (JsonElement x : embedElement.getAsJsonArray()) {
            if (!x.isJsonPrimitive() || !x.getAsJsonPrimitive().isNumber()) {
                throw new IllegalArgumentException("embed entries must be numbers, found " + x);
            }
            embed.add(x.getAsDouble());
        }
        int maxTp = o.has("max_tp") ? integer(o, "max_tp") : (tables.isEmpty() ? 1 : tables.lastKey());
        int prompt = o.has("prompt_tokens") ? integer(o, "prompt_tokens") : DEFAULT_PROMPT_TOKENS;
        JsonElement nameElement = o.get("name");
        if (nameElement != null && !(nameElement.isJsonPrimitive() && nameElement.getAsJsonPrimitive().isString())) {
            throw new IllegalArgumentException("field 'name' must be a string, was " + nameElement);
        }
        String name = nameElement == null ? "unnamed" : nameElement.getAsString();
        return new LatencyProfile(name, integer(o, "layer_num"), integer(o, "padded_layer_num"),
                number(o, "final_fix_factor", "profile"), number(o, "pp_init_comm", "profile"),
                number(o, "pp_incr_comm", "profile"), integer(o, "hidden_size"), maxTp, prompt, embed, tables);
    }

    /** This profile in the JSON format it was read from (always writing max_tp and prompt_tokens). */
    public String toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("name", name);
        o.addProperty("layer_num", layerNum);
        o.addProperty("padded_layer_num", paddedLayerNum);
        o.addProperty("final_fix_factor", finalFixFactor);
        o.addProperty("pp_init_comm", ppInitCommMs);
        o.addProperty("pp_incr_comm", ppIncrCommMs);
        o.addProperty("hidden_size", hiddenSize);
        o.addProperty("max_tp", maxTensorParallel);
        o.addProperty("prompt_tokens", promptTokens);
        JsonArray embed = new JsonArray();
        embedMs.forEach(embed::add);
        o.add("embed", embed);
        for (Map.Entry<Integer, SortedMap<Integer, LayerTimes>> tp : layerTimes.entrySet()) {
            JsonObject row = new JsonObject();
            for (Map.Entry<Integer, LayerTimes> b : tp.getValue().entrySet()) {
                JsonObject cell = new JsonObject();
                cell.addProperty("init", b.getValue().initMs());
                cell.addProperty("incr", b.getValue().incrMs());
                row.add("bsz-" + b.getKey(), cell);
            }
            o.add("tp-" + tp.getKey(), row);
        }
        return new GsonBuilder().setPrettyPrinting().create().toJson(o);
    }

    /** Writes {@link #toJson()} to {@code file}. */
    public void write(Path file) {
        try {
            Files.writeString(file, toJson(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write latency profile " + file, e);
        }
    }

    private static int parseSuffix(String key, String prefix) {
        if (!key.startsWith(prefix)) {
            throw new IllegalArgumentException("unexpected key '" + key + "'; expected " + prefix + "N");
        }
        try {
            return Integer.parseInt(key.substring(prefix.length()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("key '" + key + "' has no integer after '" + prefix + "'", e);
        }
    }

    private static double number(JsonObject o, String field, String where) {
        JsonElement e = o.get(field);
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
            throw new IllegalArgumentException(where + ": field '" + field + "' must be a number, was "
                    + (e == null ? "missing" : e.toString()));
        }
        return e.getAsDouble();
    }

    private static int integer(JsonObject o, String field) {
        double v = number(o, field, "profile");
        if (v != Math.rint(v) || Math.abs(v) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("field '" + field + "' must be an integer, was " + v);
        }
        return (int) v;
    }

    private static String kind(JsonElement e) {
        return e.isJsonArray() ? "an array" : e.isJsonObject() ? "an object" : e.isJsonNull() ? "null" : e.toString();
    }
}
