package io.spotserve.examples;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ExecutorProfiler;
import io.spotserve.exec.ExecutorProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.LatencyProfile;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code profile}: measures our own executor ({@link ExecutorProvider#best()}) on a llama2.c model and writes the
 * latency profile JSON the cost model reads (SpotServe §5's offline profiler; the artifact's
 * {@code profile/T4-4x} format). Progress goes to stderr (SLF4J), the JSON to {@code --out} or stdout.
 *
 * <pre>
 * java -jar spotserve-examples.jar profile [--model PATH | --random DIM,HIDDEN,LAYERS,HEADS,KV_HEADS,VOCAB,SEQ_LEN]
 *     [--seed 1] [--name NAME] [--out FILE] [--prompt-tokens N] [--max-tp 8] [--max-batch 8] [--repeats 3]
 *     [--warmup 1] [--decode-steps 16] [--threads T] [--timer wall|cpu]
 * </pre>
 * {@code --timer cpu} times the calling thread's CPU time and needs {@code --threads 1}: use it on a machine
 * shared with other work (see {@link ExecutorProfiler.Timer#CALLER_CPU}).
 * Default model: the bundled stories260K. Default prompt: min(512, seq_len / 2) tokens. Plan with the result:
 * {@code plan --profile FILE --model-file PATH ...} (the model file gives the exact byte model).
 */
final class ProfileCommand implements Main.Command {
    private static final List<String> OPTIONS = List.of("model", "random", "seed", "name", "out", "prompt-tokens",
            "max-tp", "max-batch", "repeats", "warmup", "decode-steps", "threads", "timer");

    @Override
    public int run(String[] args, PrintStream out) throws UsageException, IOException {
        Map<String, String> opts = CommandLine.parse("profile", args, Set.copyOf(OPTIONS), Set.of(),
                "options are --" + String.join(" --", OPTIONS));
        if (opts.containsKey("model") && opts.containsKey("random")) {
            throw new UsageException("profile: give --model or --random, not both");
        }
        LlamaCheckpoint checkpoint = null;
        LlamaConfig config;
        String name;
        if (opts.containsKey("random")) {
            config = randomConfig(opts.get("random"));
            name = "random_d" + config.dim() + "_l" + config.layers() + "_cpu_profile";
        } else {
            Path file = opts.containsKey("model") ? Path.of(opts.get("model")) : BundledModel.extracted().checkpoint();
            if (!Files.isRegularFile(file)) {
                throw new UsageException("profile: --model " + file + " is not a file");
            }
            try {
                checkpoint = LlamaCheckpoint.load(file);
            } catch (IllegalArgumentException e) {
                throw new UsageException("profile: --model " + file + ": " + e.getMessage());
            }
            config = checkpoint.config();
            String base = opts.containsKey("model") ? file.getFileName().toString().replaceFirst("\\.bin$", "")
                    : "stories260K";
            name = base + "_cpu_profile";
        }
        name = opts.getOrDefault("name", name);
        int prompt = integer(opts, "prompt-tokens", Math.min(LatencyProfile.DEFAULT_PROMPT_TOKENS,
                Math.max(1, config.seqLen() / 2)), 1);
        int threads = integer(opts, "threads", Runtime.getRuntime().availableProcessors(), 1);
        long seed = integer(opts, "seed", 1, 0);
        Path outFile = opts.containsKey("out") ? Path.of(opts.get("out")) : null;

        LatencyProfile profile;
        try (Executor executor = ExecutorProvider.best().create(ExecutorOptions.defaults().withThreads(threads))) {
            ExecutorProfiler profiler;
            try {
                profiler = ExecutorProfiler.builder(executor).promptTokens(prompt)
                        .maxTensorParallel(integer(opts, "max-tp", 8, 1)).maxBatch(integer(opts, "max-batch", 8, 1))
                        .repeats(integer(opts, "repeats", 3, 1)).warmup(integer(opts, "warmup", 1, 0))
                        .decodeSteps(integer(opts, "decode-steps", 16, 1)).timer(timer(opts.getOrDefault("timer", "wall")))
                        .build();
            } catch (IllegalArgumentException e) {
                throw new UsageException("profile: " + e.getMessage());
            }
            try {
                profile = checkpoint != null ? profiler.profile(name, checkpoint) : profiler.profile(name, config, seed);
            } catch (IllegalArgumentException e) {
                throw new UsageException("profile: " + e.getMessage());
            }
        }
        if (outFile != null) {
            profile.write(outFile);
        } else {
            out.println(profile.toJson());
        }
        return 0;
    }

    private static ExecutorProfiler.Timer timer(String v) throws UsageException {
        switch (v) {
            case "wall":
                return ExecutorProfiler.Timer.WALL;
            case "cpu":
                return ExecutorProfiler.Timer.CALLER_CPU;
            default:
                throw new UsageException("profile: --timer must be wall or cpu, was '" + v + "'");
        }
    }

    private static LlamaConfig randomConfig(String spec) throws UsageException {
        String[] parts = spec.split(",");
        if (parts.length != 7) {
            throw new UsageException("profile: --random needs 7 comma-separated integers DIM,HIDDEN,LAYERS,HEADS,"
                    + "KV_HEADS,VOCAB,SEQ_LEN, was '" + spec + "'");
        }
        int[] v = new int[7];
        for (int i = 0; i < 7; i++) {
            try {
                v[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new UsageException("profile: --random entry " + (i + 1) + " must be an integer, was '"
                        + parts[i] + "'");
            }
        }
        try {
            return new LlamaConfig(v[0], v[1], v[2], v[3], v[4], v[5], v[6], true);
        } catch (IllegalArgumentException e) {
            throw new UsageException("profile: --random " + spec + ": " + e.getMessage());
        }
    }

    private static int integer(Map<String, String> opts, String key, int dflt, int min) throws UsageException {
        return CommandLine.integer("profile", opts, key, dflt, min, Integer.MAX_VALUE);
    }
}
