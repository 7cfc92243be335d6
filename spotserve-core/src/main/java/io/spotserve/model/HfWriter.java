package io.spotserve.model;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.spotserve.model.LlamaCheckpoint.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Writes a model as a Hugging Face {@code LlamaForCausalLM} folder: {@code config.json} and the weights as one
 * {@code model.safetensors} or several shards with {@code model.safetensors.index.json}, in F32, F16 or BF16. q and
 * k rows are permuted into Hugging Face's rotate-half order (the inverse of what {@link HfModel} undoes). Rows are
 * streamed to the file one at a time. Our converter and the source of the folders the tests read.
 */
public final class HfWriter {
    private HfWriter() {
    }

    /** Llama-3.1 {@code rope_scaling} parameters to record in config.json. */
    public record Llama3Rope(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {
    }

    private record Entry(String name, Tensor kind, int layer, long rows, int cols) {
    }

    /**
     * Writes {@code weights} into {@code dir} (created if needed) as {@code shards} safetensors files of dtype
     * {@code type}.
     *
     * @param rope the llama3 parameters when the config has rope scaling (config.json stores parameters, not factors)
     */
    public static void write(Path dir, ModelWeights weights, TensorType type, int shards, Llama3Rope rope)
            throws IOException {
        Objects.requireNonNull(type, "type");
        if (type != TensorType.F32 && type != TensorType.F16 && type != TensorType.BF16) {
            throw new IllegalArgumentException("safetensors dtype " + type + " not supported; use F32, F16 or BF16");
        }
        LlamaConfig c = weights.config();
        if ((c.ropeScaling() == null) != (rope == null)) {
            throw new IllegalArgumentException("llama3 rope parameters must be given exactly when the config has rope scaling");
        }
        Files.createDirectories(dir);
        JsonObject j = new JsonObject();
        JsonArray arch = new JsonArray();
        arch.add("LlamaForCausalLM");
        j.add("architectures", arch);
        j.addProperty("model_type", "llama");
        j.addProperty("hidden_size", c.dim());
        j.addProperty("intermediate_size", c.hiddenDim());
        j.addProperty("num_hidden_layers", c.layers());
        j.addProperty("num_attention_heads", c.heads());
        j.addProperty("num_key_value_heads", c.kvHeads());
        j.addProperty("vocab_size", c.vocabSize());
        j.addProperty("max_position_embeddings", c.seqLen());
        j.addProperty("rms_norm_eps", c.normEps());
        j.addProperty("rope_theta", c.ropeTheta());
        j.addProperty("tie_word_embeddings", c.sharedClassifier());
        j.addProperty("bos_token_id", c.bosId());
        j.addProperty("eos_token_id", c.eosId());
        j.addProperty("torch_dtype", type == TensorType.F32 ? "float32" : type == TensorType.F16 ? "float16" : "bfloat16");
        if (rope != null) {
            JsonObject s = new JsonObject();
            s.addProperty("rope_type", "llama3");
            s.addProperty("factor", rope.factor());
            s.addProperty("low_freq_factor", rope.lowFreqFactor());
            s.addProperty("high_freq_factor", rope.highFreqFactor());
            s.addProperty("original_max_position_embeddings", rope.originalMaxPositions());
            j.add("rope_scaling", s);
        }
        Files.writeString(dir.resolve(HfModel.CONFIG), new GsonBuilder().setPrettyPrinting().create().toJson(j));

        List<Entry> entries = new ArrayList<>();
        entries.add(entry(c, Tensor.TOKEN_EMBEDDING, 0));
        for (int l = 0; l < c.layers(); l++) {
            for (Tensor k : new Tensor[]{Tensor.RMS_ATT, Tensor.WQ, Tensor.WK, Tensor.WV, Tensor.WO, Tensor.RMS_FFN,
                    Tensor.W1, Tensor.W2, Tensor.W3}) {
                entries.add(entry(c, k, l));
            }
        }
        entries.add(entry(c, Tensor.RMS_FINAL, 0));
        if (!c.sharedClassifier()) {
            entries.add(entry(c, Tensor.CLASSIFIER, 0));
        }
        if (shards < 1 || shards > entries.size()) {
            throw new IllegalArgumentException("shards must be in [1, " + entries.size() + "], was " + shards);
        }
        JsonObject weightMap = new JsonObject();
        int per = (entries.size() + shards - 1) / shards;
        for (int s = 0; s < shards; s++) {
            List<Entry> part = entries.subList(Math.min(entries.size(), s * per), Math.min(entries.size(), (s + 1) * per));
            String name = shards == 1 ? HfModel.SINGLE
                    : String.format("model-%05d-of-%05d.safetensors", s + 1, shards);
            writeFile(dir.resolve(name), weights, part, type);
            for (Entry e : part) {
                weightMap.addProperty(e.name, name);
            }
        }
        if (shards > 1) {
            JsonObject index = new JsonObject();
            index.add("metadata", new JsonObject());
            index.add("weight_map", weightMap);
            Files.writeString(dir.resolve(HfModel.INDEX), new GsonBuilder().setPrettyPrinting().create().toJson(index));
        }
    }

    private static Entry entry(LlamaConfig c, Tensor kind, int layer) {
        long[] d = TensorSetWeights.dims(c, kind);
        return new Entry(HfModel.tensorName(kind, layer), kind, layer, d[0], (int) d[1]);
    }

    private static void writeFile(Path file, ModelWeights weights, List<Entry> entries, TensorType type)
            throws IOException {
        LlamaConfig c = weights.config();
        String dtype = type == TensorType.F32 ? "F32" : type == TensorType.F16 ? "F16" : "BF16";
        JsonObject header = new JsonObject();
        long offset = 0;
        for (Entry e : entries) {
            JsonObject t = new JsonObject();
            t.addProperty("dtype", dtype);
            JsonArray shape = new JsonArray();
            if (e.rows != 1 || e.kind == Tensor.TOKEN_EMBEDDING || e.kind == Tensor.CLASSIFIER) {
                shape.add(e.rows);
            }
            shape.add(e.cols);
            t.add("shape", shape);
            long bytes = type.rowBytes(e.cols) * e.rows;
            JsonArray off = new JsonArray();
            off.add(offset);
            off.add(offset + bytes);
            t.add("data_offsets", off);
            header.add(e.name, t);
            offset += bytes;
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();
        int hs = c.headSize();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            long pos = 0;
            while (head.hasRemaining()) {
                pos += ch.write(head, pos);
            }
            for (Entry e : entries) {
                float[] row = new float[e.cols];
                ByteBuffer out = ByteBuffer.allocate((int) type.rowBytes(e.cols)).order(ByteOrder.LITTLE_ENDIAN);
                boolean permute = e.kind == Tensor.WQ || e.kind == Tensor.WK;
                for (long stored = 0; stored < e.rows; stored++) {
                    long canonical = permute ? canonicalRow(stored, hs) : stored;
                    weights.read(e.kind, e.layer, canonical * e.cols, row, 0, e.cols);
                    out.clear();
                    type.encode(row, 0, e.cols, out);
                    out.flip();
                    while (out.hasRemaining()) {
                        pos += ch.write(out, pos);
                    }
                }
            }
        }
    }

    /** The canonical (interleaved) row stored at rotate-half row {@code stored}: inverse of {@link TensorSetWeights#hfRow}. */
    static long canonicalRow(long stored, int hs) {
        long head = stored / hs;
        int r = (int) (stored % hs);
        int j = r / (hs / 2);
        int i = r % (hs / 2);
        return head * hs + 2L * i + j;
    }
}
