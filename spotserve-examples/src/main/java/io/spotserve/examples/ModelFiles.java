package io.spotserve.examples;

import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.ModelFormatException;
import io.spotserve.model.ModelSource;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The model a command serves, from {@code --model PATH} in any format {@link ModelSource} detects (a GGUF file, a
 * Hugging Face folder, a llama2.c checkpoint) and, for llama2.c, {@code --tokenizer PATH}; without {@code --model},
 * the bundled stories260K with tok512. {@code source} is the opened model (null for the bundled one), for what else
 * it carries (its chat template).
 */
record ModelFiles(ModelWeights weights, Tokenizer tokenizer, String name, ModelSource source) {

    /**
     * Loads the model for command {@code command}.
     *
     * @throws UsageException for a missing file, a malformed model, or a tokenizer that is missing or does not fit
     */
    static ModelFiles load(String command, Path model, Path tokenizer) throws UsageException, IOException {
        if (model == null) {
            if (tokenizer != null) {
                throw new UsageException(command + ": --tokenizer needs --model PATH too (the bundled stories260K "
                        + "has its own tokenizer)");
            }
            BundledModel.Extracted files = BundledModel.extracted();
            LlamaCheckpoint ckpt = LlamaCheckpoint.load(files.checkpoint());
            return new ModelFiles(ckpt, Tokenizer.load(files.tokenizer(), ckpt.config().vocabSize()), "stories260K",
                    null);
        }
        if (!Files.exists(model)) {
            throw new UsageException(command + ": --model " + model + " does not exist");
        }
        ModelSource source;
        try {
            source = ModelSource.open(model);
        } catch (ModelFormatException e) {
            throw new UsageException(command + ": --model " + e.getMessage());
        }
        Tokenizer tok;
        try {
            if (tokenizer != null) {
                if (!Files.isRegularFile(tokenizer)) {
                    throw new UsageException(command + ": --tokenizer " + tokenizer + " is not a file");
                }
                tok = tokenizer.getFileName().toString().endsWith(".json")
                        ? Tokenizer.loadHuggingFace(tokenizer, source.config().bosId(), source.config().eosId())
                        : Tokenizer.load(tokenizer, source.config().vocabSize());
            } else if (source.format() == ModelSource.Format.LLAMA2C) {
                throw new UsageException(command + ": --model " + model + " is a llama2.c checkpoint, which carries "
                        + "no tokenizer; add --tokenizer PATH (its tokenizer.bin)");
            } else {
                tok = source.tokenizer();
            }
        } catch (ModelFormatException e) {
            throw new UsageException(command + (tokenizer != null ? ": --tokenizer " : ": tokenizer of --model: ")
                    + e.getMessage());
        }
        if (tok.vocabSize() != source.config().vocabSize()) {
            throw new UsageException(command + ": the tokenizer has " + tok.vocabSize() + " tokens but the model "
                    + source.config().vocabSize());
        }
        return new ModelFiles(source, tok, model.getFileName() + " (" + source.format() + ")", source);
    }
}
