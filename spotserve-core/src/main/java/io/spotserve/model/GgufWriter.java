package io.spotserve.model;

import io.spotserve.model.LlamaCheckpoint.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Writes a model as a GGUF v3 file of the {@code llama} architecture, the layout {@link GgufModel} and llama.cpp
 * read: {@code llama.*} metadata, the tokenizer (when given, as {@code tokenizer.ggml.model = "llama"}), and the
 * tensors under llama.cpp's names. Matrices are stored in the requested type; norms stay F32 (as llama.cpp keeps
 * them: its CPU backend asserts f32 norm weights); a matrix whose row length is not a multiple of a block type's 32 falls back to F16. Tensors are written
 * one row at a time, never the whole model on the heap. This is our converter (llama2.c → GGUF) and the source of
 * the GGUF files the tests read.
 */
public final class GgufWriter {
    private static final int ALIGNMENT = 32;

    private GgufWriter() {
    }

    /** One tensor to write: where its rows come from ({@code values} for a small literal tensor). */
    private record Entry(String name, Tensor kind, int layer, long rows, int cols, TensorType type, float[] values) {
    }

    /**
     * Writes {@code weights} (and {@code tokenizer}, may be null) to {@code file} with matrices of type {@code type}.
     */
    public static void write(Path file, ModelWeights weights, Tokenizer tokenizer, TensorType type) throws IOException {
        write(file, weights, tokenizer, type, null);
    }

    /**
     * Writes {@code weights} (and {@code tokenizer}, may be null) to {@code file} with matrices of type {@code type},
     * storing {@code chatTemplate} (Jinja2 source; null for none) as {@code tokenizer.chat_template}.
     */
    public static void write(Path file, ModelWeights weights, Tokenizer tokenizer, TensorType type,
            String chatTemplate) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(type, "type");
        LlamaConfig c = weights.config();
        Map<String, Object[]> meta = new LinkedHashMap<>(); // key -> {gguf type, value}
        meta.put("general.architecture", new Object[]{8, "llama"});
        meta.put("general.name", new Object[]{8, weights.description()});
        meta.put("general.alignment", new Object[]{4, (long) ALIGNMENT});
        meta.put("llama.context_length", new Object[]{4, (long) c.seqLen()});
        meta.put("llama.embedding_length", new Object[]{4, (long) c.dim()});
        meta.put("llama.block_count", new Object[]{4, (long) c.layers()});
        meta.put("llama.feed_forward_length", new Object[]{4, (long) c.hiddenDim()});
        meta.put("llama.attention.head_count", new Object[]{4, (long) c.heads()});
        meta.put("llama.attention.head_count_kv", new Object[]{4, (long) c.kvHeads()});
        meta.put("llama.rope.dimension_count", new Object[]{4, (long) c.headSize()});
        meta.put("llama.rope.freq_base", new Object[]{6, (double) c.ropeTheta()});
        meta.put("llama.attention.layer_norm_rms_epsilon", new Object[]{6, (double) c.normEps()});
        meta.put("llama.vocab_size", new Object[]{4, (long) c.vocabSize()});
        if (tokenizer != null && tokenizer.bpe() != null) {
            if (tokenizer.vocabSize() != c.vocabSize()) {
                throw new IllegalArgumentException("tokenizer has " + tokenizer.vocabSize() + " tokens, the model "
                        + c.vocabSize());
            }
            ByteLevelBpe bpe = tokenizer.bpe();
            List<Object> tokens = new ArrayList<>();
            List<Object> types = new ArrayList<>();
            for (int i = 0; i < c.vocabSize(); i++) {
                tokens.add(bpe.token(i));
                types.add((long) (bpe.isSpecial(i) ? 3 : 1));
            }
            meta.put("tokenizer.ggml.model", new Object[]{8, "gpt2"});
            meta.put("tokenizer.ggml.pre", new Object[]{8, "llama-bpe"});
            meta.put("tokenizer.ggml.tokens", new Object[]{9, 8, tokens});
            meta.put("tokenizer.ggml.token_type", new Object[]{9, 5, types});
            meta.put("tokenizer.ggml.merges", new Object[]{9, 8, new ArrayList<Object>(bpe.merges())});
        } else if (tokenizer != null) {
            if (tokenizer.vocabSize() != c.vocabSize()) {
                throw new IllegalArgumentException("tokenizer has " + tokenizer.vocabSize() + " tokens, the model "
                        + c.vocabSize());
            }
            List<Object> tokens = new ArrayList<>();
            List<Object> scores = new ArrayList<>();
            List<Object> types = new ArrayList<>();
            for (int i = 0; i < c.vocabSize(); i++) {
                String p = new String(tokenizer.piece(i), StandardCharsets.UTF_8);
                tokens.add(p.replace(' ', '\u2581'));
                scores.add((double) tokenizer.score(i));
                boolean isByte = p.length() == 6 && p.startsWith("<0x") && p.endsWith(">");
                types.add((long) (i == Tokenizer.UNK ? 2 : i == Tokenizer.BOS || i == Tokenizer.EOS ? 3 : isByte ? 6 : 1));
            }
            meta.put("tokenizer.ggml.model", new Object[]{8, "llama"});
            meta.put("tokenizer.ggml.tokens", new Object[]{9, 8, tokens});
            meta.put("tokenizer.ggml.scores", new Object[]{9, 6, scores});
            meta.put("tokenizer.ggml.token_type", new Object[]{9, 5, types});
            meta.put("tokenizer.ggml.unknown_token_id", new Object[]{4, (long) Tokenizer.UNK});
        }
        if (chatTemplate != null) {
            meta.put(GgufModel.CHAT_TEMPLATE, new Object[]{8, chatTemplate});
        }
        if (c.bosId() >= 0) {
            meta.put("tokenizer.ggml.bos_token_id", new Object[]{4, (long) c.bosId()});
        }
        if (c.eosId() >= 0) {
            meta.put("tokenizer.ggml.eos_token_id", new Object[]{4, (long) c.eosId()});
        }

        List<Entry> entries = new ArrayList<>();
        add(entries, c, Tensor.TOKEN_EMBEDDING, 0, type);
        if (c.ropeScaling() != null) {
            float[] f = new float[c.headSize() / 2];
            for (int i = 0; i < f.length; i++) {
                f[i] = c.ropeScaling().factors().get(i);
            }
            entries.add(new Entry(GgufModel.ROPE_FREQS, null, 0, 1, f.length, TensorType.F32, f));
        }
        for (int l = 0; l < c.layers(); l++) {
            for (Tensor k : new Tensor[]{Tensor.RMS_ATT, Tensor.WQ, Tensor.WK, Tensor.WV, Tensor.WO, Tensor.RMS_FFN,
                    Tensor.W1, Tensor.W2, Tensor.W3}) {
                add(entries, c, k, l, type);
            }
        }
        add(entries, c, Tensor.RMS_FINAL, 0, type);
        if (!c.sharedClassifier()) {
            add(entries, c, Tensor.CLASSIFIER, 0, type);
        }

        ByteBuffer head = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        head = putInt(head, GgufFile.MAGIC);
        head = putInt(head, 3);
        head = putLong(head, entries.size());
        head = putLong(head, meta.size());
        for (Map.Entry<String, Object[]> e : meta.entrySet()) {
            head = putString(head, e.getKey());
            int t = (Integer) e.getValue()[0];
            head = putInt(head, t);
            if (t == 9) {
                int et = (Integer) e.getValue()[1];
                List<?> list = (List<?>) e.getValue()[2];
                head = putInt(head, et);
                head = putLong(head, list.size());
                for (Object o : list) {
                    head = putValue(head, et, o);
                }
            } else {
                head = putValue(head, t, e.getValue()[1]);
            }
        }
        long offset = 0;
        long[] offsets = new long[entries.size()];
        for (int i = 0; i < entries.size(); i++) {
            Entry e = entries.get(i);
            head = putString(head, e.name);
            boolean vector = e.rows == 1;
            head = putInt(head, vector ? 1 : 2);
            head = putLong(head, e.cols);
            if (!vector) {
                head = putLong(head, e.rows);
            }
            head = putInt(head, e.type.ggmlId);
            head = putLong(head, offset);
            offsets[i] = offset;
            offset = align(offset + MappedTensor.bytes(e.type, e.rows, e.cols));
        }
        int headLen = head.position();
        long dataStart = align(headLen);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            head.flip();
            writeAll(ch, head, 0);
            float[] row = new float[0];
            for (int i = 0; i < entries.size(); i++) {
                Entry e = entries.get(i);
                long pos = dataStart + offsets[i];
                ByteBuffer out = ByteBuffer.allocate((int) e.type.rowBytes(e.cols)).order(ByteOrder.LITTLE_ENDIAN);
                if (row.length < e.cols) {
                    row = new float[e.cols];
                }
                for (long r = 0; r < e.rows; r++) {
                    if (e.values != null) {
                        System.arraycopy(e.values, 0, row, 0, e.cols);
                    } else {
                        weights.read(e.kind, e.layer, r * e.cols, row, 0, e.cols);
                    }
                    out.clear();
                    e.type.encode(row, 0, e.cols, out);
                    out.flip();
                    writeAll(ch, out, pos);
                    pos += out.limit();
                }
            }
            long end = dataStart + offset;
            if (ch.size() < end) {
                writeAll(ch, ByteBuffer.allocate((int) (end - ch.size())), ch.size());
            }
        }
    }

    private static void add(List<Entry> entries, LlamaConfig c, Tensor kind, int layer, TensorType type) {
        long[] d = TensorSetWeights.dims(c, kind);
        TensorType t = d[0] == 1 ? TensorType.F32 : type; // llama.cpp multiplies only by f32 norm weights
        if (d[1] % t.blockSize != 0) {
            t = TensorType.F16;
        }
        entries.add(new Entry(GgufModel.tensorName(kind, layer), kind, layer, d[0], (int) d[1], t, null));
    }

    private static long align(long x) {
        return (x + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    private static void writeAll(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) {
            pos += ch.write(b, pos);
        }
    }

    private static ByteBuffer room(ByteBuffer b, int n) {
        if (b.remaining() >= n) {
            return b;
        }
        ByteBuffer bigger = ByteBuffer.allocate(Math.max(b.capacity() * 2, b.position() + n))
                .order(ByteOrder.LITTLE_ENDIAN);
        b.flip();
        bigger.put(b);
        return bigger;
    }

    private static ByteBuffer putInt(ByteBuffer b, int v) {
        return room(b, 4).putInt(v);
    }

    private static ByteBuffer putLong(ByteBuffer b, long v) {
        return room(b, 8).putLong(v);
    }

    private static ByteBuffer putString(ByteBuffer b, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        b = putLong(b, bytes.length);
        return room(b, bytes.length).put(bytes);
    }

    private static ByteBuffer putValue(ByteBuffer b, int type, Object v) {
        return switch (type) {
            case 4, 5 -> putInt(b, (int) (long) (Long) v);
            case 6 -> room(b, 4).putFloat((float) (double) (Double) v);
            case 8 -> putString(b, (String) v);
            default -> throw new IllegalArgumentException("writer does not emit GGUF value type " + type);
        };
    }
}
