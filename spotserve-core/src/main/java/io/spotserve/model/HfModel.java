package io.spotserve.model;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.spotserve.model.LlamaCheckpoint.Tensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;

/**
 * A Hugging Face model folder of a {@code LlamaForCausalLM}: {@code config.json} and either one
 * {@code model.safetensors} or shards listed by {@code model.safetensors.index.json}, memory-mapped (F32, F16,
 * BF16). Hugging Face stores q and k rows permuted for its rotate-half rotary embedding; they are read back in the
 * interleaved order, so the math equals the GGUF and llama2.c files of the same model.
 */
public final class HfModel {
    static final String CONFIG = "config.json";
    static final String SINGLE = "model.safetensors";
    static final String INDEX = "model.safetensors.index.json";

    /** Hugging Face's tensor names for each kind of weight. */
    static String tensorName(Tensor kind, int layer) {
        String p = "model.layers." + layer + ".";
        return switch (kind) {
            case TOKEN_EMBEDDING -> "model.embed_tokens.weight";
            case RMS_ATT -> p + "input_layernorm.weight";
            case WQ -> p + "self_attn.q_proj.weight";
            case WK -> p + "self_attn.k_proj.weight";
            case WV -> p + "self_attn.v_proj.weight";
            case WO -> p + "self_attn.o_proj.weight";
            case RMS_FFN -> p + "post_attention_layernorm.weight";
            case W1 -> p + "mlp.gate_proj.weight";
            case W2 -> p + "mlp.down_proj.weight";
            case W3 -> p + "mlp.up_proj.weight";
            case RMS_FINAL -> "model.norm.weight";
            case CLASSIFIER -> "lm_head.weight";
            case FREQ_CIS -> throw new IllegalArgumentException("no rotary table in a Hugging Face folder");
        };
    }

    private final Path dir;
    private final TensorSetWeights weights;

    private HfModel(Path dir, TensorSetWeights weights) {
        this.dir = dir;
        this.weights = weights;
    }

    /** Whether {@code path} looks like a Hugging Face model folder (a directory with config.json). */
    public static boolean isModelFolder(Path path) {
        return Files.isDirectory(path) && Files.isRegularFile(path.resolve(CONFIG));
    }

    /**
     * Opens a model folder.
     *
     * @throws ModelFormatException if config.json is missing or not a llama config, the weights files are missing,
     *                              a tensor is missing, misshapen, of an unsupported dtype or outside its file
     */
    public static HfModel load(Path dir) throws IOException {
        Path cfgFile = dir.resolve(CONFIG);
        if (!Files.isRegularFile(cfgFile)) {
            throw new ModelFormatException(cfgFile, "config.json", "missing", "a Hugging Face model folder");
        }
        JsonObject cfg;
        try {
            cfg = JsonParser.parseString(Files.readString(cfgFile, StandardCharsets.UTF_8)).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new ModelFormatException(cfgFile, "config.json", "not a JSON object (" + e.getMessage() + ")",
                    "a model config");
        }
        LlamaConfig config = config(cfgFile, cfg);
        Map<String, MappedTensor> tensors = new HashMap<>();
        Path index = dir.resolve(INDEX);
        if (Files.isRegularFile(index)) {
            JsonObject map;
            try {
                map = JsonParser.parseString(Files.readString(index)).getAsJsonObject().getAsJsonObject("weight_map");
            } catch (RuntimeException e) {
                throw new ModelFormatException(index, "weight_map", "unreadable (" + e.getMessage() + ")",
                        "an object mapping tensor names to shard files");
            }
            if (map == null) {
                throw new ModelFormatException(index, "weight_map", "missing", "an object mapping names to files");
            }
            TreeSet<String> files = new TreeSet<>();
            for (Map.Entry<String, JsonElement> e : map.entrySet()) {
                files.add(e.getValue().getAsString());
            }
            for (String f : files) {
                Path shard = dir.resolve(f).normalize();
                if (!shard.startsWith(dir.normalize()) || !Files.isRegularFile(shard)) {
                    throw new ModelFormatException(index, "weight_map file", "\"" + f + "\"",
                            "a safetensors shard inside " + dir);
                }
                SafetensorsFile.read(shard, tensors);
            }
        } else if (Files.isRegularFile(dir.resolve(SINGLE))) {
            SafetensorsFile.read(dir.resolve(SINGLE), tensors);
        } else {
            throw new ModelFormatException(dir, "weights", "missing", SINGLE + " or " + INDEX + " in the folder");
        }
        // norms are stored 1-D: accept [dim] as [1, dim]
        return new HfModel(dir, TensorSetWeights.of(dir, config, tensors, HfModel::tensorName, true));
    }

    private static LlamaConfig config(Path file, JsonObject j) throws ModelFormatException {
        JsonArray arch = j.has("architectures") ? j.getAsJsonArray("architectures") : null;
        String modelType = j.has("model_type") ? j.get("model_type").getAsString() : null;
        boolean llama = "llama".equals(modelType);
        if (arch != null) {
            boolean found = false;
            for (JsonElement a : arch) {
                found |= a.getAsString().equals("LlamaForCausalLM");
            }
            llama = found;
        }
        if (!llama) {
            throw new ModelFormatException(file, "architectures", arch != null ? arch.toString() : String.valueOf(modelType),
                    "[\"LlamaForCausalLM\"] (the only architecture supported)");
        }
        int dim = requiredInt(file, j, "hidden_size");
        int heads = requiredInt(file, j, "num_attention_heads");
        int kvHeads = j.has("num_key_value_heads") && !j.get("num_key_value_heads").isJsonNull()
                ? requiredInt(file, j, "num_key_value_heads") : heads;
        if (heads <= 0 || dim % heads != 0) {
            throw new ModelFormatException(file, "num_attention_heads", String.valueOf(heads),
                    "a divisor of hidden_size " + dim);
        }
        if (j.has("head_dim") && !j.get("head_dim").isJsonNull() && j.get("head_dim").getAsInt() != dim / heads) {
            throw new ModelFormatException(file, "head_dim", j.get("head_dim").getAsString(),
                    "hidden_size / num_attention_heads = " + (dim / heads));
        }
        float theta = j.has("rope_theta") ? j.get("rope_theta").getAsFloat() : LlamaConfig.DEFAULT_ROPE_THETA;
        float eps = j.has("rms_norm_eps") ? j.get("rms_norm_eps").getAsFloat() : 1e-6f;
        boolean tied = j.has("tie_word_embeddings") && j.get("tie_word_embeddings").getAsBoolean();
        int vocab = requiredInt(file, j, "vocab_size");
        RopeScaling scaling = null;
        if (j.has("rope_scaling") && !j.get("rope_scaling").isJsonNull()) {
            JsonObject s = j.getAsJsonObject("rope_scaling");
            String type = s.has("rope_type") ? s.get("rope_type").getAsString()
                    : s.has("type") ? s.get("type").getAsString() : "?";
            if (!type.equals("llama3")) {
                throw new ModelFormatException(file, "rope_scaling.rope_type", "\"" + type + "\"",
                        "\"llama3\" (the only rope scaling supported)");
            }
            try {
                scaling = RopeScaling.llama3(theta, dim / heads, s.get("factor").getAsDouble(),
                        s.get("low_freq_factor").getAsDouble(), s.get("high_freq_factor").getAsDouble(),
                        s.get("original_max_position_embeddings").getAsInt());
            } catch (RuntimeException e) {
                throw new ModelFormatException(file, "rope_scaling", s.toString(),
                        "factor, low_freq_factor, high_freq_factor, original_max_position_embeddings ("
                                + e.getMessage() + ")");
            }
        }
        try {
            return new LlamaConfig(dim, requiredInt(file, j, "intermediate_size"),
                    requiredInt(file, j, "num_hidden_layers"), heads, kvHeads, vocab,
                    requiredInt(file, j, "max_position_embeddings"), tied, theta, scaling, eps,
                    tokenId(j, "bos_token_id", vocab > 1 ? 1 : -1), tokenId(j, "eos_token_id", vocab > 2 ? 2 : -1));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, "config", e.getMessage(), "a consistent llama config");
        }
    }

    private static int requiredInt(Path file, JsonObject j, String key) throws ModelFormatException {
        JsonElement e = j.get(key);
        if (e == null || e.isJsonNull() || !e.isJsonPrimitive()) {
            throw new ModelFormatException(file, key, "missing", "an integer");
        }
        return e.getAsInt();
    }

    /** A token id, or the first of a list of them (Llama 3.1 lists several EOS ids). */
    private static int tokenId(JsonObject j, String key, int fallback) {
        JsonElement e = j.get(key);
        if (e == null || e.isJsonNull()) {
            return fallback;
        }
        return e.isJsonArray() ? e.getAsJsonArray().get(0).getAsInt() : e.getAsInt();
    }

    public Path dir() {
        return dir;
    }

    public LlamaConfig config() {
        return weights.config();
    }

    /** The weights in the executors' canonical layout (q/k rows un-permuted). */
    public ModelWeights weights() {
        return weights;
    }

    /**
     * The chat template of the folder's {@code tokenizer_config.json} with its {@code bos_token}/{@code eos_token}.
     *
     * @return empty when there is no tokenizer_config.json or it has no {@code chat_template}
     * @throws ModelFormatException if tokenizer_config.json is malformed
     */
    public Optional<ModelChatTemplate> chatTemplate() throws IOException {
        Path f = dir.resolve(ModelChatTemplate.TOKENIZER_CONFIG);
        return Files.isRegularFile(f) ? ModelChatTemplate.fromTokenizerConfig(f) : Optional.empty();
    }

    @Override
    public String toString() {
        return "HfModel[" + dir + " " + config() + "]";
    }
}
