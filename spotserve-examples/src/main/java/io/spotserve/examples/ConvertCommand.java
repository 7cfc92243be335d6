package io.spotserve.examples;

import com.google.gson.JsonObject;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.ModelChatTemplate;
import io.spotserve.model.HfWriter;
import io.spotserve.model.TensorType;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code convert}: writes a model (any format {@code --model} takes) as a GGUF file or a Hugging Face folder.
 *
 * <pre>
 * java -jar spotserve-examples.jar convert [--model PATH [--tokenizer PATH]] --out PATH [--format gguf|hf]
 *     [--type f32|f16|bf16|q8_0|q4_0] [--shards N]
 * </pre>
 * GGUF files carry the tokenizer; a Hugging Face folder gets config.json and safetensors (F32/F16/BF16), and the
 * tokenizer only when it is a byte-level BPE read from a tokenizer.json (copied). Models with Llama-3.1 rope scaling
 * can only be written as GGUF (the folder's config.json needs the scaling parameters, GGUF stores the factors).
 */
@Command(name = "convert", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = "Writes a model as a GGUF file or a Hugging Face folder (F32, F16, BF16, Q8_0 or Q4_0).")
final class ConvertCommand implements Callable<Integer> {
    private static final String NAME = "convert";

    @Option(names = "--model", paramLabel = "PATH",
            description = "model to convert: .gguf, Hugging Face folder or llama2.c checkpoint (default: the bundled "
                    + "stories260K)")
    Path model;
    @Option(names = "--tokenizer", paramLabel = "PATH", description = "tokenizer of a llama2.c checkpoint")
    Path tokenizer;
    @Option(names = "--out", paramLabel = "PATH", description = "file (gguf) or folder (hf) to write (required)")
    Path outPath;
    @Option(names = "--format", paramLabel = "F", description = "gguf (default) or hf")
    String format = "gguf";
    @Option(names = "--type", paramLabel = "T", description = "f32 (default), f16, bf16, q8_0 or q4_0 (gguf only)")
    String type = "f32";
    @Option(names = "--shards", paramLabel = "N", description = "safetensors files of an hf folder (default 1)")
    int shards = 1;

    private final PrintStream out;

    ConvertCommand(PrintStream out) {
        this.out = out;
    }

    @Override
    public Integer call() throws UsageException, IOException {
        if (outPath == null) {
            throw new UsageException(NAME + ": --out PATH is required");
        }
        TensorType t = switch (type.toLowerCase(Locale.ROOT)) {
            case "f32" -> TensorType.F32;
            case "f16" -> TensorType.F16;
            case "bf16" -> TensorType.BF16;
            case "q8_0" -> TensorType.Q8_0;
            case "q4_0" -> TensorType.Q4_0;
            default -> throw new UsageException(NAME + ": --type must be f32, f16, bf16, q8_0 or q4_0, was " + type);
        };
        boolean hf = switch (format.toLowerCase(Locale.ROOT)) {
            case "gguf" -> false;
            case "hf" -> true;
            default -> throw new UsageException(NAME + ": --format must be gguf or hf, was " + format);
        };
        if (hf && (t == TensorType.Q8_0 || t == TensorType.Q4_0)) {
            throw new UsageException(NAME + ": --type " + type + " is GGUF-only; safetensors take f32, f16 or bf16");
        }
        if (Files.exists(outPath)) {
            throw new UsageException(NAME + ": --out " + outPath + " already exists; not overwriting it");
        }
        ModelFiles files = ModelFiles.load(NAME, model, tokenizer);
        if (hf) {
            if (files.weights().config().ropeScaling() != null) {
                throw new UsageException(NAME + ": this model has rope scaling factors; write it as gguf (a folder's "
                        + "config.json would need the llama3 scaling parameters, which the factors do not give back)");
            }
            Ranges.within(NAME, "--shards", shards, 1, 1000);
            HfWriter.write(outPath, files.weights(), t, shards, null);
            if (model != null && Files.isRegularFile(model.resolve("tokenizer.json"))) {
                Files.copy(model.resolve("tokenizer.json"), outPath.resolve("tokenizer.json"));
                if (Files.isRegularFile(model.resolve(ModelChatTemplate.TOKENIZER_CONFIG))) {
                    // carries the chat template and special tokens along
                    Files.copy(model.resolve(ModelChatTemplate.TOKENIZER_CONFIG),
                            outPath.resolve(ModelChatTemplate.TOKENIZER_CONFIG));
                }
            } else if (tokenizer != null && tokenizer.getFileName().toString().endsWith(".json")) {
                Files.copy(tokenizer, outPath.resolve("tokenizer.json"));
            }
            Path config = outPath.resolve(ModelChatTemplate.TOKENIZER_CONFIG);
            Optional<ModelChatTemplate> chat = files.source() == null ? Optional.empty()
                    : files.source().chatTemplate();
            if (chat.isPresent() && !Files.exists(config)) {
                // a GGUF's chat template goes where transformers looks for it
                JsonObject j = new JsonObject();
                j.addProperty("chat_template", chat.get().source());
                j.addProperty("bos_token", chat.get().bosToken());
                j.addProperty("eos_token", chat.get().eosToken());
                Files.writeString(config, j.toString());
            }
        } else {
            // the model's chat template (GGUF or tokenizer_config.json) goes into tokenizer.chat_template
            String chat = files.source() == null ? null
                    : files.source().chatTemplate().map(ModelChatTemplate::source).orElse(null);
            GgufWriter.write(outPath, files.weights(), files.tokenizer(), t, chat);
        }
        out.println(NAME + ": wrote " + outPath + " (" + format.toLowerCase(Locale.ROOT) + ", " + t + ") from "
                + files.name());
        return 0;
    }
}
