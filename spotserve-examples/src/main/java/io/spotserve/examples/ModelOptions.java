package io.spotserve.examples;

import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The {@code --model PATH --tokenizer PATH} options of the commands that serve a model (a picocli mixin). */
final class ModelOptions {
    @Option(names = "--model", paramLabel = "PATH",
            description = "model: a .gguf file, a Hugging Face folder or a llama2.c checkpoint (default: the bundled "
                    + "stories260K); a llama2.c checkpoint needs --tokenizer")
    Path model;
    @Option(names = "--tokenizer", paramLabel = "PATH",
            description = "tokenizer.bin (llama2.c) or tokenizer.json (default: the one in the GGUF file or the folder)")
    Path tokenizer;

    /** The model these options name, for command {@code command} ({@link ModelFiles#load}). */
    ModelFiles load(String command) throws UsageException, IOException {
        return ModelFiles.load(command, model, tokenizer);
    }
}
