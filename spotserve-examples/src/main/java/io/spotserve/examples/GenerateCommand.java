package io.spotserve.examples;

import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ExecutorProvider;
import io.spotserve.exec.Generation;
import io.spotserve.exec.Generator;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.SamplingParams;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.Tokenizer;
import io.spotserve.plan.DeviceId;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code generate}: llama2.c {@code run.c}'s generate mode on our executor. Prints only the generated text on
 * stdout, as UTF-8 whatever the locale (logs go to stderr); with {@code --temperature 0} the text is byte for
 * byte run.c's, except that characters split over byte-fallback tokens are printed whole where run.c drops
 * their bytes ({@link RuncText}).
 *
 * <pre>
 * java -jar spotserve-examples.jar generate [--model PATH --tokenizer PATH] [--prompt TEXT] [--steps N]
 *     [--temperature T] [--topp P] [--seed S] [--pp P [--stage-layers 2,1,1,1]] [--tp M] [--batch B]
 *     [--threads N] [--no-vector] [--help]
 * </pre>
 *
 * <p>Defaults are run.c's: the bundled stories260K + tok512, empty prompt, 256 steps, temperature 1.0, top-p
 * 0.9, seed from the clock (logged). The rules of the
 * loop (steps count positions, BOS handling) are {@link Generation}'s.
 */
@Command(name = "generate", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = "llama2.c run.c's generate mode on our executor: prints the generated text on stdout; logs go "
        + "to stderr.")
final class GenerateCommand implements Callable<Integer> {
    private static final String NAME = "generate";
    private static final Logger LOG = LoggerFactory.getLogger(GenerateCommand.class);
    /** Largest {@code --batch}: a guard against typos that would allocate B KV caches. */
    static final int MAX_BATCH = 1024;
    /** Prompt positions one forward call may carry (besides the batch's decode tokens). */
    private static final int PREFILL_CHUNK = 64;

    @Option(names = "--model", paramLabel = "PATH",
            description = "model: a .gguf file, a Hugging Face folder or a llama2.c checkpoint (default: the bundled "
                    + "stories260K); a llama2.c checkpoint needs --tokenizer")
    Path model;
    @Option(names = "--tokenizer", paramLabel = "PATH",
            description = "tokenizer of that model: llama2.c tokenizer.bin or a tokenizer.json (default: the one in "
                    + "the GGUF file or the folder; the bundled tok512 for the bundled model)")
    Path tokenizer;
    @Option(names = "--prompt", paramLabel = "TEXT",
            description = "prompt, printed as part of the output like run.c (default: empty)")
    String prompt = "";
    @Option(names = "--steps", paramLabel = "N",
            description = "positions to run, prompt included; 0 = seq_len (default 256, more = seq_len)")
    int steps = 256;
    @Option(names = "--temperature", paramLabel = "T",
            description = "0 = greedy (reproduces run.c exactly); default 1.0")
    float temperature = 1.0f;
    @Option(names = "--topp", paramLabel = "P",
            description = "nucleus mass in (0, 1]; 1 = plain multinomial (run.c's -p 0); default 0.9")
    float topp = 0.9f;
    @Option(names = "--seed", paramLabel = "S",
            description = "non-zero random seed (default: the clock, logged); sample i of a batch uses S+i")
    Long seed;
    @Option(names = "--pp", paramLabel = "P", description = "pipeline stages, each on its own device (default 1)")
    Integer pp;
    @Option(names = "--stage-layers", paramLabel = "L",
            description = "layers per stage when P does not divide them, e.g. 2,1,1,1 (implies --pp)")
    String stageLayers;
    @Option(names = "--tp", paramLabel = "M", description = "tensor shards per stage, each on its own device (default 1)")
    int tp = 1;
    @Option(names = "--batch", paramLabel = "B", description = "B samples of the same prompt decoded together; printed "
            + "in order, each followed by a newline (sample 0 is streamed as it is produced)")
    int batch = 1;
    @Option(names = "--threads", paramLabel = "N", description = "worker threads (default: all processors)")
    Integer threads;
    @Option(names = "--no-vector", description = "scalar kernels only (run.c's float summation order)")
    boolean noVector;

    private final PrintStream out;

    GenerateCommand(PrintStream out) {
        this.out = out;
    }

    /** The parsed, validated command line. */
    record Options(Path model, Path tokenizer, String prompt, int steps, float temperature, float topp, Long seed,
                   Integer pp, List<Integer> stageLayers, int tp, int batch, Integer threads, boolean vector) {
    }

    @Override
    public Integer call() throws UsageException, IOException {
        Options o = options();
        String argEncoding = System.getProperty("sun.jnu.encoding", "UTF-8");
        if (o.prompt().indexOf('\uFFFD') >= 0 && !argEncoding.equalsIgnoreCase("UTF-8")) {
            LOG.warn("the prompt contains U+FFFD: the JVM read the command line as {} and lost its non-ASCII "
                    + "characters; run java in a UTF-8 locale (e.g. LC_ALL=C.UTF-8)", argEncoding);
        }

        ModelFiles files = ModelFiles.load(NAME, o.model(), o.tokenizer());
        ModelWeights checkpoint = files.weights();
        Tokenizer tokenizer = files.tokenizer();
        LlamaConfig config = checkpoint.config();
        ShardLayout layout = layout(o, config);
        int steps = Generation.effectiveSteps(o.steps(), config.seqLen());
        List<SamplingParams> sampling = sampling(o);

        // a Q8_0 GGUF file stays int8 on the CPU executor (-Dspotserve.q8=false dequantizes it to fp32)
        ExecutorOptions exOptions = ExecutorOptions.defaults().withVector(o.vector()).forModel(checkpoint);
        if (o.threads() != null) {
            exOptions = exOptions.withThreads(o.threads());
        }
        ExecutorProvider provider = ExecutorProvider.best();
        // the kernels get compiled on a small model while the real weights load (KernelWarmUp); the main may have
        // started one on the CPU executor already
        KernelWarmUp warmUp = KernelWarmUp.takeEarly();
        if (!"cpu".equals(provider.name()) || !KernelWarmUp.enabled()) {
            if (warmUp != null) {
                warmUp.close();
            }
            warmUp = null;
        } else if (warmUp != null) {
            warmUp.retarget(exOptions, config);
        } else {
            warmUp = KernelWarmUp.start(provider, exOptions, config);
        }
        try (KernelWarmUp ignored = warmUp; Executor executor = provider.create(exOptions)) {
            List<Device> devices = new ArrayList<>();
            for (int s = 0; s < layout.stages(); s++) {
                for (int m = 0; m < layout.shards(); m++) {
                    // exactly what the position holds: its weights plus B KV caches of `steps` positions
                    long bytes = layout.weightBytes(s, m) + layout.kvBytesPerPosition(s, m) * steps * o.batch();
                    devices.add(executor.createDevice(new DeviceId("stage" + s, m), bytes));
                }
            }
            int maxBatch = Math.max(o.batch(), PREFILL_CHUNK);
            try (Pipeline pipeline = executor.createPipeline(layout, devices, maxBatch)) {
                pipeline.loadWeights(checkpoint);
                if (warmUp != null) {
                    warmUp.close();
                    LOG.debug("kernel warm-up: {} sequences while the weights loaded", warmUp.rounds());
                }
                LOG.info("model {} ({} layers, dim {}, vocab {}, seq_len {}); executor {}, {} threads, {} weights; "
                                + "layout {}; {} steps, {}", files.name(), config.layers(),
                        config.dim(), config.vocabSize(), config.seqLen(), executor.name(), exOptions.threads(),
                        pipeline.weightPrecision().name().toLowerCase(java.util.Locale.ROOT), layout, steps,
                        sampling.get(0).isGreedy() ? "greedy" : "temperature " + o.temperature() + ", top-p "
                                + o.topp() + ", seed " + sampling.get(0).seed());
                generate(new Generator(pipeline, tokenizer), o.prompt(), steps, sampling, out);
            }
        }
        return 0;
    }

    /** Runs the batch, streaming sample 0 to {@code out} and printing the others after it. */
    private static void generate(Generator generator, String prompt, int steps, List<SamplingParams> sampling,
                                 PrintStream out) {
        int n = sampling.size();
        RuncText[] texts = new RuncText[n];
        ByteArrayOutputStream[] later = new ByteArrayOutputStream[n];
        for (int i = 0; i < n; i++) {
            texts[i] = new RuncText(generator.tokenizer(), generator.tokenizer().bosId());
            later[i] = new ByteArrayOutputStream();
        }
        List<Generator.Request> requests = new ArrayList<>(n);
        for (SamplingParams p : sampling) {
            requests.add(new Generator.Request(prompt, steps, p));
        }
        long start = System.nanoTime();
        List<Generator.Output> outputs = generator.generate(requests, new Generator.Listener() {
            @Override
            public void onToken(int index, int token, String text) {
                print(index, texts[index].accept(token));
            }

            @Override
            public void onFinish(int index, String text) {
                print(index, texts[index].finish());
            }

            private void print(int index, byte[] bytes) {
                if (index == 0) { // streamed
                    out.write(bytes, 0, bytes.length);
                    out.flush();
                } else {
                    later[index].writeBytes(bytes);
                }
            }
        });
        double seconds = (System.nanoTime() - start) / 1e9;
        for (int i = 1; i < n; i++) {
            out.writeBytes(later[i].toByteArray());
        }
        out.flush();
        long tokens = 0;
        for (Generator.Output o : outputs) {
            tokens += o.tokens().length - 1;
        }
        LOG.info(String.format(Locale.ROOT, "achieved tok/s: %.1f (%d positions in %.3f s)", tokens / seconds,
                tokens, seconds));
    }

    /** Validates every option; touches no file content yet (only existence). */
    Options options() throws UsageException {
        file("--model", model);
        file("--tokenizer", tokenizer);
        if (tokenizer != null && model == null) {
            throw new UsageException("generate: --tokenizer needs --model PATH too (the bundled stories260K "
                    + "has its own tokenizer)");
        }
        Ranges.atLeast(NAME, "--steps", steps, 0);
        if (!(temperature >= 0f) || Float.isInfinite(temperature)) {
            throw new UsageException("generate: --temperature must be a finite number >= 0 (0 = greedy), was "
                    + temperature);
        }
        if (!(topp > 0f && topp <= 1f)) {
            throw new UsageException("generate: --topp must be in (0, 1] (1 = plain multinomial sampling, which "
                    + "run.c's -p 0 means), was " + topp);
        }
        Ranges.within(NAME, "--batch", batch, 1, MAX_BATCH);
        if (seed != null && temperature > 0f) {
            for (int i = 0; i < batch; i++) {
                if (seed + i == 0 && i == 0) {
                    throw new UsageException("generate: --seed must be non-zero when --temperature > 0 (0 is a fixed "
                            + "point of run.c's xorshift generator), was 0");
                }
                if (seed + i == 0) {
                    throw new UsageException("generate: --seed " + seed + " gives sample " + i + " the seed 0 (S+i), "
                            + "a fixed point of run.c's generator; use a seed that keeps S..S+" + (batch - 1)
                            + " non-zero");
                }
            }
        }
        if (pp != null) {
            Ranges.atLeast(NAME, "--pp", pp, 1);
        }
        List<Integer> layers = null;
        if (stageLayers != null) {
            layers = new ArrayList<>();
            for (String part : stageLayers.split(",", -1)) {
                try {
                    int n = Integer.parseInt(part.trim());
                    if (n < 1) {
                        throw new NumberFormatException();
                    }
                    layers.add(n);
                } catch (NumberFormatException e) {
                    throw new UsageException("generate: --stage-layers must be a comma-separated list of layer "
                            + "counts >= 1 (e.g. 2,1,1,1), was '" + stageLayers + "'");
                }
            }
            if (pp != null && pp != layers.size()) {
                throw new UsageException("generate: --stage-layers " + stageLayers + " lists "
                        + layers.size() + " stages but --pp is " + pp);
            }
        }
        Ranges.atLeast(NAME, "--tp", tp, 1);
        if (threads != null) {
            Ranges.within(NAME, "--threads", threads, 1, 4096);
        }
        return new Options(model, tokenizer, prompt, steps, temperature, topp, seed, pp, layers, tp, batch,
                threads, !noVector);
    }

    /** The layout for the options on this model: stage layer counts (explicit or even) × tensor shards. */
    private static ShardLayout layout(Options o, LlamaConfig config) throws UsageException {
        try {
            if (o.stageLayers() != null) {
                return ShardLayout.balanced(config, o.stageLayers(), o.tp());
            }
            int pp = o.pp() == null ? 1 : o.pp();
            if (pp > config.layers()) {
                throw new UsageException("generate: --pp " + pp + " exceeds the model's " + config.layers()
                        + " layers (every stage needs at least one)");
            }
            if (config.layers() % pp != 0) {
                StringBuilder hint = new StringBuilder();
                for (int s = 0; s < pp; s++) {
                    hint.append(s == 0 ? "" : ",").append(config.layers() / pp + (s < config.layers() % pp ? 1 : 0));
                }
                throw new UsageException("generate: --pp " + pp + " does not divide the model's " + config.layers()
                        + " layers; give the layers per stage, e.g. --stage-layers " + hint);
            }
            return ShardLayout.of(config, pp, o.tp());
        } catch (IllegalArgumentException e) {
            throw new UsageException("generate: " + e.getMessage());
        }
    }

    /** Sampling parameters of sample i: seed S+i; greedy ignores the seed. */
    private static List<SamplingParams> sampling(Options o) {
        List<SamplingParams> out = new ArrayList<>(o.batch());
        long seed = o.seed() != null ? o.seed() : Math.max(1L, System.currentTimeMillis() / 1000); // run.c: time(NULL)
        for (int i = 0; i < o.batch(); i++) {
            out.add(o.temperature() == 0f ? SamplingParams.greedy() : new SamplingParams(o.temperature(), o.topp(),
                    seed + i == 0 ? 1 : seed + i));
        }
        return out;
    }

    private static void file(String option, Path p) throws UsageException {
        if (p != null && !Files.isRegularFile(p) && !(option.equals("--model") && Files.isDirectory(p))) {
            throw new UsageException("generate: " + option + " " + p + " is not a readable file"
                    + (Files.exists(p) ? "" : " (it does not exist)"));
        }
    }
}
