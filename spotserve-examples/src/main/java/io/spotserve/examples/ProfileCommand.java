package io.spotserve.examples;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ExecutorProfiler;
import io.spotserve.exec.ExecutorProvider;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelFormatException;
import io.spotserve.plan.LatencyProfile;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

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
@Command(name = "profile", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        sortOptions = false, description = "Measures our executor on a llama2.c model and writes the latency profile "
        + "JSON the planner reads (to --out or stdout; progress on stderr).")
final class ProfileCommand implements Callable<Integer> {
    private static final String NAME = "profile";

    @Option(names = "--model", paramLabel = "PATH", description = "llama2.c checkpoint (default: the bundled stories260K)")
    Path model;
    @Option(names = "--random", paramLabel = "DIM,HIDDEN,LAYERS,HEADS,KV_HEADS,VOCAB,SEQ_LEN",
            description = "a model of this shape with random weights instead of --model")
    String random;
    @Option(names = "--seed", paramLabel = "S", description = "seed of the random weights (default 1)")
    int seed = 1;
    @Option(names = "--name", paramLabel = "NAME", description = "the profile's name")
    String name;
    @Option(names = "--out", paramLabel = "FILE", description = "write the JSON here instead of stdout")
    Path outFile;
    @Option(names = "--prompt-tokens", paramLabel = "N", description = "prompt length (default min(512, seq_len / 2))")
    Integer promptTokens;
    @Option(names = "--max-tp", paramLabel = "M", description = "largest tensor-parallel degree (default 8)")
    int maxTp = 8;
    @Option(names = "--max-batch", paramLabel = "B", description = "largest batch, a power of two (default 8)")
    int maxBatch = 8;
    @Option(names = "--repeats", paramLabel = "N", description = "timed repeats (default 3)")
    int repeats = 3;
    @Option(names = "--warmup", paramLabel = "N", description = "untimed warm-up runs (default 1)")
    int warmup = 1;
    @Option(names = "--decode-steps", paramLabel = "N", description = "decode steps timed (default 16)")
    int decodeSteps = 16;
    @Option(names = "--threads", paramLabel = "T", description = "worker threads (default: all processors)")
    Integer threads;
    @Option(names = "--timer", paramLabel = "wall|cpu",
            description = "wall time, or the calling thread's CPU time (needs --threads 1; default wall)")
    String timer = "wall";

    private final PrintStream out;

    ProfileCommand(PrintStream out) {
        this.out = out;
    }

    @Override
    public Integer call() throws Exception {
        if (model != null && random != null) {
            throw new UsageException("profile: give --model or --random, not both");
        }
        Ranges.atLeast(NAME, "--seed", seed, 0);
        int tp = Ranges.atLeast(NAME, "--max-tp", maxTp, 1);
        Ranges.atLeast(NAME, "--max-batch", maxBatch, 1);
        Ranges.atLeast(NAME, "--repeats", repeats, 1);
        Ranges.atLeast(NAME, "--warmup", warmup, 0);
        Ranges.atLeast(NAME, "--decode-steps", decodeSteps, 1);
        ExecutorProfiler.Timer clock = timer(timer);
        LlamaCheckpoint checkpoint = null;
        LlamaConfig config;
        String profileName;
        if (random != null) {
            config = randomConfig(random);
            profileName = "random_d" + config.dim() + "_l" + config.layers() + "_cpu_profile";
        } else {
            Path file = model != null ? model : BundledModel.extracted().checkpoint();
            if (!Files.isRegularFile(file)) {
                throw new UsageException("profile: --model " + file + " is not a file");
            }
            try {
                checkpoint = LlamaCheckpoint.load(file);
            } catch (ModelFormatException e) {
                throw new UsageException("profile: --model " + e.getMessage());
            } catch (IllegalArgumentException e) {
                throw new UsageException("profile: --model " + file + ": " + e.getMessage());
            }
            config = checkpoint.config();
            String base = model != null ? file.getFileName().toString().replaceFirst("\\.bin$", "") : "stories260K";
            profileName = base + "_cpu_profile";
        }
        profileName = name != null ? name : profileName;
        int prompt = promptTokens != null ? Ranges.atLeast(NAME, "--prompt-tokens", promptTokens, 1)
                : Math.min(LatencyProfile.DEFAULT_PROMPT_TOKENS, Math.max(1, config.seqLen() / 2));
        int nThreads = threads != null ? Ranges.within(NAME, "--threads", threads, 1, 4096)
                : Runtime.getRuntime().availableProcessors();
        // what the profiler holds at once: the checkpoint, a pipeline's copy of its weights, KV caches for
        // maxBatch sequences and the activations and logits of maxBatch prompts
        double capacity = (double) prompt + decodeSteps;
        double bytes = 2.0 * Float.BYTES * config.parameterCount()
                + (double) maxBatch * capacity * config.kvBytesPerPosition()
                + (double) maxBatch * prompt * Float.BYTES * (config.vocabSize() + config.hiddenDim() + 4.0 * config.dim());
        Ranges.fitsInHeap(NAME, "profiling " + (random != null ? "--random " + random : "this model") + " with --max-batch "
                + maxBatch + " and " + prompt + " prompt tokens", bytes);

        LatencyProfile profile;
        try (Executor executor = ExecutorProvider.best().create(ExecutorOptions.defaults().withThreads(nThreads))) {
            ExecutorProfiler profiler;
            try {
                profiler = ExecutorProfiler.builder(executor).promptTokens(prompt).maxTensorParallel(tp)
                        .maxBatch(maxBatch).repeats(repeats).warmup(warmup).decodeSteps(decodeSteps).timer(clock)
                        .build();
            } catch (IllegalArgumentException e) {
                throw new UsageException("profile: " + e.getMessage());
            }
            try {
                profile = checkpoint != null ? profiler.profile(profileName, checkpoint)
                        : profiler.profile(profileName, config, seed);
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
}
