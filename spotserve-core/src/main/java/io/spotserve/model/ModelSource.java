package io.spotserve.model;

import io.spotserve.model.LlamaCheckpoint.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Objects;
import java.util.Optional;

/**
 * The one entry point for loading a model from a path, whatever its format: a GGUF file (recognised by its
 * {@code "GGUF"} magic), a Hugging Face folder (a directory with {@code config.json}), or a llama2.c checkpoint
 * (anything else). A source is itself {@link ModelWeights}, so {@code Pipeline.loadWeights(source)} and
 * {@code ServingEngine.builder().model(source, source.tokenizer())} take it directly.
 */
public final class ModelSource implements ModelWeights {
    /** The file formats a path may hold. */
    public enum Format {
        /** Karpathy's llama2.c checkpoint (no tokenizer inside; tokenizer.bin is a separate file). */
        LLAMA2C,
        /** A GGUF v2/v3 file of the llama architecture, tokenizer inside. */
        GGUF,
        /** A Hugging Face LlamaForCausalLM folder; tokenizer.json beside the weights when present. */
        HUGGING_FACE
    }

    private final Path path;
    private final Format format;
    private final ModelWeights weights;
    private final GgufModel gguf;

    private ModelSource(Path path, Format format, ModelWeights weights, GgufModel gguf) {
        this.path = path;
        this.format = format;
        this.weights = weights;
        this.gguf = gguf;
    }

    /** Which format {@code path} holds (no parsing beyond the magic bytes). */
    public static Format detect(Path path) throws IOException {
        Objects.requireNonNull(path, "path");
        if (Files.isDirectory(path)) {
            if (!HfModel.isModelFolder(path)) {
                throw new ModelFormatException(path, "model folder", "a directory without config.json",
                        "a Hugging Face model folder (config.json + *.safetensors), a .gguf file or a llama2.c .bin");
            }
            return Format.HUGGING_FACE;
        }
        if (!Files.isRegularFile(path)) {
            throw new java.nio.file.NoSuchFileException(path.toString(), null, "no model file or folder here");
        }
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            while (b.hasRemaining() && ch.read(b) >= 0) {
                if (ch.position() >= ch.size()) {
                    break;
                }
            }
            return b.position() == 4 && b.getInt(0) == GgufFile.MAGIC ? Format.GGUF : Format.LLAMA2C;
        }
    }

    /**
     * Opens the model at {@code path} in whatever format it is.
     *
     * @throws ModelFormatException if the file or folder is malformed (the message names the file, the field and what
     *                              was expected)
     */
    public static ModelSource open(Path path) throws IOException {
        Format f = detect(path);
        return switch (f) {
            case GGUF -> {
                GgufModel g = GgufModel.load(path);
                yield new ModelSource(path, f, g.weights(), g);
            }
            case HUGGING_FACE -> new ModelSource(path, f, HfModel.load(path).weights(), null);
            case LLAMA2C -> new ModelSource(path, f, LlamaCheckpoint.load(path), null);
        };
    }

    public Path path() {
        return path;
    }

    public Format format() {
        return format;
    }

    /**
     * The tokenizer that comes with the model: the one stored in a GGUF file, or a Hugging Face folder's
     * {@code tokenizer.json} (byte-level BPE).
     *
     * @throws ModelFormatException if the model carries no (supported) tokenizer; for a llama2.c checkpoint, load its
     *                              tokenizer.bin with {@link Tokenizer#load}
     */
    public Tokenizer tokenizer() throws IOException {
        return switch (format) {
            case GGUF -> gguf.tokenizer();
            case HUGGING_FACE -> {
                Path json = path.resolve("tokenizer.json");
                if (!Files.isRegularFile(json)) {
                    throw new ModelFormatException(json, "tokenizer.json", "missing",
                            "the folder's tokenizer (a byte-level BPE tokenizer.json)");
                }
                yield Tokenizer.loadHuggingFace(json, config().bosId(), config().eosId());
            }
            case LLAMA2C -> throw new ModelFormatException(path, "tokenizer", "not part of a llama2.c checkpoint",
                    "a separate tokenizer.bin (Tokenizer.load, or --tokenizer on the command line)");
        };
    }

    /**
     * The chat template that comes with the model, with its BOS/EOS token texts: a GGUF file's
     * {@code tokenizer.chat_template}, or a Hugging Face folder's {@code tokenizer_config.json} {@code chat_template}.
     * A llama2.c checkpoint has none. {@code chatTemplate().map(ModelChatTemplate::template)
     * .orElse(ChatTemplate.plain())} is the usual default.
     *
     * @return empty when the model carries no chat template
     * @throws ModelFormatException if the template field is malformed
     */
    public Optional<ModelChatTemplate> chatTemplate() throws IOException {
        return switch (format) {
            case GGUF -> gguf.chatTemplate();
            case HUGGING_FACE -> {
                Path f = path.resolve(ModelChatTemplate.TOKENIZER_CONFIG);
                yield Files.isRegularFile(f) ? ModelChatTemplate.fromTokenizerConfig(f) : Optional.empty();
            }
            case LLAMA2C -> Optional.empty();
        };
    }

    /** Where the weights come from (the GGUF tensors, the safetensors, the llama2.c file). */
    public ModelWeights weights() {
        return weights;
    }

    @Override
    public LlamaConfig config() {
        return weights.config();
    }

    @Override
    public String description() {
        return weights.description();
    }

    @Override
    public TensorType storedType(Tensor tensor, int layer) {
        return weights.storedType(tensor, layer);
    }

    @Override
    public void read(Tensor tensor, int layer, long offset, float[] dst, int dstOff, int len) {
        weights.read(tensor, layer, offset, dst, dstOff, len);
    }

    @Override
    public String toString() {
        return "ModelSource[" + format + " " + path + " " + config() + "]";
    }
}
