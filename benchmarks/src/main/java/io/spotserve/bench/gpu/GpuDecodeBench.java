package io.spotserve.bench.gpu;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.spotserve.cuda.CudaExecutor;
import io.spotserve.cuda.CudaExecutorProvider;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The 1B-parameter decode benchmark of issue 6: a {@link RandomLlamaWeights#TINYLLAMA_1B}-shaped random model
 * on one device (P = 1, M = 1), fp16 and fp32 weights, decode at batch 1 and 16, next to the device copy
 * bandwidth measured on the same GPU ({@link CopyBandwidth}) and the bound it implies ({@link DecodeBound}).
 *
 * <p>Method (a harness main like the evaluation harness, not JMH: one load of a 1B model serves every batch,
 * and the bandwidth and speeds land in one JSON): per weight precision the model is imported slice by slice,
 * then per batch size {@code b} sequences are opened, each prefilled with a {@code --prompt}-token prompt, and
 * decoded greedily (host argmax of the logits, which {@link Pipeline#forward} returns on the host): {@code
 * --warmup} untimed steps, then {@code --runs} timed runs of {@code --steps} steps each; ms/step is the median
 * run's time / steps, tokens/s = b × 1000 / (ms/step). Positions run from the prompt length up to prompt +
 * warmup + runs × steps (256 to 432 by default). The JSON is rewritten after every measurement, so a run cut
 * short keeps what it finished.
 *
 * <p>Run (GPU machine, via {@code spotserve-cuda/gpu-check.sh run}, or by hand):
 * {@code java -Xmx24g -cp 'lib/*' io.spotserve.bench.gpu.GpuDecodeBench --out decode-1b.json}; a CPU smoke run
 * of the same code: {@code --executor cpu --model small}. Without a usable GPU (and {@code --executor cuda}) it
 * prints "GpuDecodeBench needs a GPU: reason", writes the reason into the JSON and exits with status 2.
 */
public final class GpuDecodeBench {
    /** A small shape with the 1B model's structure (GQA 8:2, separate classifier) for CPU smoke runs and tests. */
    public static final LlamaConfig SMALL = new LlamaConfig(128, 344, 2, 8, 2, 512, 512, false);

    private GpuDecodeBench() {
    }

    /** The harness options; see the class comment. */
    record Options(Path out, String executor, String model, List<WeightPrecision> weights, List<Integer> batches,
                   int prompt, int warmup, int steps, int runs, long copyBytes, int copySamples, long seed,
                   long deviceBytes) {
        LlamaConfig config() {
            return switch (model) {
                case "1b" -> RandomLlamaWeights.TINYLLAMA_1B;
                case "small" -> SMALL;
                default -> throw new IllegalArgumentException("--model " + model + " unknown; expected 1b or small");
            };
        }

        static Options parse(String[] args) {
            Path out = Path.of("decode-1b.json");
            String executor = "cuda";
            String model = "1b";
            List<WeightPrecision> weights = List.of(WeightPrecision.FP16, WeightPrecision.FP32);
            List<Integer> batches = List.of(1, 16);
            int prompt = 256;
            int warmup = 16;
            int steps = 32;
            int runs = 5;
            long copyBytes = 1L << 30;
            int copySamples = 10;
            long seed = 1;
            long deviceBytes = 24L << 30;
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException("option " + a + " needs a value");
                }
                String v = args[++i];
                switch (a) {
                    case "--out" -> out = Path.of(v);
                    case "--executor" -> executor = v;
                    case "--model" -> model = v;
                    case "--weights" -> {
                        List<WeightPrecision> w = new ArrayList<>();
                        for (String s : v.split(",")) {
                            w.add(WeightPrecision.parse(s));
                        }
                        weights = List.copyOf(w);
                    }
                    case "--batches" -> {
                        List<Integer> b = new ArrayList<>();
                        for (String s : v.split(",")) {
                            b.add(positive("--batches", Integer.parseInt(s.trim())));
                        }
                        batches = List.copyOf(b);
                    }
                    case "--prompt" -> prompt = positive(a, Integer.parseInt(v));
                    case "--warmup" -> warmup = Integer.parseInt(v);
                    case "--steps" -> steps = positive(a, Integer.parseInt(v));
                    case "--runs" -> runs = positive(a, Integer.parseInt(v));
                    case "--copy-mib" -> copyBytes = positive(a, Integer.parseInt(v)) * (1L << 20);
                    case "--copy-samples" -> copySamples = positive(a, Integer.parseInt(v));
                    case "--seed" -> seed = Long.parseLong(v);
                    case "--device-gib" -> deviceBytes = positive(a, Integer.parseInt(v)) * (1L << 30);
                    default -> throw new IllegalArgumentException("option " + a + " unknown; expected --out, "
                            + "--executor, --model, --weights, --batches, --prompt, --warmup, --steps, --runs, "
                            + "--copy-mib, --copy-samples, --seed, --device-gib");
                }
            }
            if (!executor.equals("cuda") && !executor.equals("cpu")) {
                throw new IllegalArgumentException("--executor " + executor + " unknown; expected cuda or cpu");
            }
            if (warmup < 0) {
                throw new IllegalArgumentException("--warmup must be >= 0, was " + warmup);
            }
            Options o = new Options(out, executor, model, weights, batches, prompt, warmup, steps, runs, copyBytes,
                    copySamples, seed, deviceBytes);
            int last = o.lastPosition();
            if (last > o.config().seqLen()) {
                throw new IllegalArgumentException("prompt + warmup + runs * steps = " + last
                        + " positions exceed the model's seq_len " + o.config().seqLen());
            }
            return o;
        }

        /** Positions each sequence fills: the prompt and every decoded step. */
        int lastPosition() {
            return prompt + warmup + runs * steps;
        }

        private static int positive(String option, int v) {
            if (v < 1) {
                throw new IllegalArgumentException(option + " must be >= 1, was " + v);
            }
            return v;
        }
    }

    public static void main(String[] args) throws IOException {
        Options o;
        try {
            o = Options.parse(args);
            o.config();
        } catch (IllegalArgumentException e) {
            System.err.println("GpuDecodeBench: " + e.getMessage());
            System.exit(2);
            return;
        }
        JsonObject json = header(o);
        if (o.executor().equals("cuda") && !CudaExecutorProvider.gpuAvailable()) {
            String reason = new CudaExecutorProvider().unusableReason();
            System.out.println("GpuDecodeBench needs a GPU: " + reason);
            json.addProperty("error", "needs a GPU: " + reason);
            write(o.out(), json);
            System.exit(2);
            return;
        }
        int status = run(o, json);
        System.exit(status);
    }

    /** Runs every measurement of {@code o}, recording into {@code json} (rewritten to o.out as it goes). */
    static int run(Options o, JsonObject json) {
        JsonArray errors = new JsonArray();
        json.add("errors", errors);
        JsonArray results = new JsonArray();
        json.add("results", results);
        if (o.executor().equals("cuda")) {
            try {
                json.addProperty("device", CopyBandwidth.describeDevice(0));
                CopyBandwidth bw = CopyBandwidth.measure(0, o.copyBytes(), 3, o.copySamples());
                json.add("copy", copyJson(bw));
                System.out.printf("copy bandwidth: %d B copied in %.3f ms (median of %d): %.1f GB/s read+written,"
                                + " %.1f GB/s copied%n", bw.bytesCopied(), bw.medianMs(), o.copySamples(),
                        bw.readWrittenBytesPerSecond() / 1e9, bw.copyBytesPerSecond() / 1e9);
            } catch (RuntimeException e) {
                errors.add("copy bandwidth: " + e);
                System.out.println("copy bandwidth failed: " + e);
            }
            write(o.out(), json);
        }
        LlamaConfig config = o.config();
        RandomLlamaWeights weights = new RandomLlamaWeights(config, o.seed());
        for (WeightPrecision precision : o.weights()) {
            try {
                measurePrecision(o, config, weights, precision, results, json);
            } catch (RuntimeException | OutOfMemoryError e) {
                errors.add(precision + ": " + e);
                System.out.println(precision + " failed: " + e);
                e.printStackTrace(System.out);
            }
            write(o.out(), json);
        }
        return errors.isEmpty() ? 0 : 1;
    }

    private static void measurePrecision(Options o, LlamaConfig config, RandomLlamaWeights weights,
                                         WeightPrecision precision, JsonArray results, JsonObject json) {
        ExecutorOptions options = ExecutorOptions.defaults().withWeights(precision);
        int maxBatch = o.batches().stream().mapToInt(Integer::intValue).max().orElse(1);
        try (Executor executor = o.executor().equals("cuda") ? new CudaExecutor(options) : new CpuExecutor(options)) {
            Device device = executor.createDevice(new DeviceId("bench", 0), o.deviceBytes());
            Pipeline pipeline = executor.createPipeline(ShardLayout.of(config, 1, 1), List.of(device), maxBatch);
            long t0 = System.nanoTime();
            weights.loadInto(pipeline);
            double loadS = (System.nanoTime() - t0) / 1e9;
            long used = device.usedBytes();
            System.out.printf("%s: %s loaded %,d parameters in %.1f s, device holds %,d bytes%n", precision,
                    executor.name(), config.parameterCount(), loadS, used);
            json.addProperty("executor_name", executor.name());
            long nextId = 0;
            for (int batch : o.batches()) {
                JsonObject r = new JsonObject();
                r.addProperty("weights", precision.name().toLowerCase());
                r.addProperty("pipeline_weights", pipeline.weightPrecision().name().toLowerCase());
                r.addProperty("batch", batch);
                r.addProperty("weight_bytes_per_step", DecodeBound.weightBytesPerStep(config, precision));
                r.addProperty("kv_bytes_per_step_mid", DecodeBound.kvBytesPerStep(config, batch,
                        (o.prompt() + o.lastPosition()) / 2));
                r.addProperty("load_s", loadS);
                r.addProperty("device_weight_bytes", used);
                nextId = decode(o, pipeline, batch, nextId, r);
                results.add(r);
                write(o.out(), json);
                System.out.printf("%s batch %d: %.3f ms/step, %.1f tokens/s (runs %s ms/step; prefill %.2f s)%n",
                        precision, batch, r.get("ms_per_step").getAsDouble(), r.get("tokens_per_s").getAsDouble(),
                        r.get("ms_per_step_runs"), r.get("prefill_s").getAsDouble());
            }
            if (o.executor().equals("cuda") && precision == WeightPrecision.FP16 && o.batches().contains(1)) {
                // the same batch-1 decode kernel by kernel: what the CUDA graphs save
                String before = System.getProperty(CudaExecutor.GRAPHS_PROPERTY);
                System.setProperty(CudaExecutor.GRAPHS_PROPERTY, "false");
                try {
                    JsonObject r = new JsonObject();
                    r.addProperty("weights", precision.name().toLowerCase());
                    r.addProperty("batch", 1);
                    r.addProperty("graphs", false);
                    nextId = decode(o, pipeline, 1, nextId, r);
                    json.add("graphs_off", r);
                    write(o.out(), json);
                    System.out.printf("%s batch 1 without CUDA graphs: %.3f ms/step, %.1f tokens/s%n", precision,
                            r.get("ms_per_step").getAsDouble(), r.get("tokens_per_s").getAsDouble());
                } finally {
                    if (before == null) {
                        System.clearProperty(CudaExecutor.GRAPHS_PROPERTY);
                    } else {
                        System.setProperty(CudaExecutor.GRAPHS_PROPERTY, before);
                    }
                }
            }
            pipeline.close();
        }
    }

    /** Opens {@code batch} sequences, prefills and decodes them as the class comment says; returns the next id. */
    static long decode(Options o, Pipeline pipeline, int batch, long firstId, JsonObject r) {
        LlamaConfig c = pipeline.config();
        int vocab = c.vocabSize();
        long[] ids = new long[batch];
        int[] tokens = new int[batch];
        int[] positions = new int[batch];
        float[][] logits = new float[batch][vocab];
        long t0 = System.nanoTime();
        for (int b = 0; b < batch; b++) {
            ids[b] = firstId + b;
            pipeline.openSequence(ids[b], o.lastPosition());
            int[] prompt = new int[o.prompt()];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = (int) ((i * 7919L + ids[b] * 104729L + 1) % vocab);
            }
            tokens[b] = argmax(pipeline.prefill(ids[b], prompt, 0));
            positions[b] = o.prompt();
        }
        r.addProperty("prefill_s", (System.nanoTime() - t0) / 1e9);
        r.addProperty("prompt", o.prompt());
        for (int s = 0; s < o.warmup(); s++) {
            step(pipeline, ids, tokens, positions, logits);
        }
        double[] msPerStep = new double[o.runs()];
        for (int run = 0; run < o.runs(); run++) {
            long start = System.nanoTime();
            for (int s = 0; s < o.steps(); s++) {
                step(pipeline, ids, tokens, positions, logits);
            }
            msPerStep[run] = (System.nanoTime() - start) / 1e6 / o.steps();
        }
        for (long id : ids) {
            pipeline.closeSequence(id);
        }
        double median = Stats.median(msPerStep);
        JsonArray runs = new JsonArray();
        for (double m : msPerStep) {
            runs.add(m);
        }
        r.addProperty("first_position", o.prompt());
        r.addProperty("last_position", o.lastPosition() - 1);
        r.addProperty("steps_per_run", o.steps());
        r.add("ms_per_step_runs", runs);
        r.addProperty("ms_per_step", median);
        r.addProperty("tokens_per_s", batch * 1e3 / median);
        return firstId + batch;
    }

    /** One greedy decode step of the batch: forward, then each entry's next token is its logits' argmax. */
    private static void step(Pipeline pipeline, long[] ids, int[] tokens, int[] positions, float[][] logits) {
        pipeline.forward(ids, tokens, positions, ids.length, logits);
        for (int b = 0; b < ids.length; b++) {
            tokens[b] = argmax(logits[b]);
            positions[b]++;
        }
    }

    static int argmax(float[] xs) {
        int best = 0;
        for (int i = 1; i < xs.length; i++) {
            if (xs[i] > xs[best]) {
                best = i;
            }
        }
        return best;
    }

    static JsonObject header(Options o) {
        JsonObject json = new JsonObject();
        json.addProperty("tool", "GpuDecodeBench");
        json.addProperty("executor", o.executor());
        LlamaConfig c = o.config();
        JsonObject m = new JsonObject();
        m.addProperty("name", o.model());
        m.addProperty("dim", c.dim());
        m.addProperty("hidden_dim", c.hiddenDim());
        m.addProperty("layers", c.layers());
        m.addProperty("heads", c.heads());
        m.addProperty("kv_heads", c.kvHeads());
        m.addProperty("vocab", c.vocabSize());
        m.addProperty("seq_len", c.seqLen());
        m.addProperty("shared_classifier", c.sharedClassifier());
        m.addProperty("parameters", c.parameterCount());
        m.addProperty("seed", o.seed());
        json.add("model", m);
        json.addProperty("prompt", o.prompt());
        json.addProperty("warmup_steps", o.warmup());
        json.addProperty("steps_per_run", o.steps());
        json.addProperty("runs", o.runs());
        json.addProperty("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        json.addProperty("host_cpus", Runtime.getRuntime().availableProcessors());
        return json;
    }

    static JsonObject copyJson(CopyBandwidth bw) {
        JsonObject j = new JsonObject();
        j.addProperty("method", "cuMemcpyDtoDAsync between two device buffers, CUDA events, median");
        j.addProperty("bytes_copied", bw.bytesCopied());
        j.addProperty("bytes_read_written", bw.readWrittenBytes());
        JsonArray samples = new JsonArray();
        for (double s : bw.samplesMs()) {
            samples.add(s);
        }
        j.add("samples_ms", samples);
        j.addProperty("median_ms", bw.medianMs());
        j.addProperty("read_written_gb_per_s", bw.readWrittenBytesPerSecond() / 1e9);
        j.addProperty("copy_gb_per_s", bw.copyBytesPerSecond() / 1e9);
        return j;
    }

    static void write(Path out, JsonObject json) {
        try {
            Path parent = out.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            Path tmp = out.resolveSibling(out.getFileName() + ".tmp");
            Files.writeString(tmp, new GsonBuilder().setPrettyPrinting().create().toJson(json) + "\n",
                    StandardCharsets.UTF_8);
            Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + out, e);
        }
    }
}
