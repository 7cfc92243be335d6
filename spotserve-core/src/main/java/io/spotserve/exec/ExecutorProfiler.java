package io.spotserve.exec;

import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.LatencyProfile.LayerTimes;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Random;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The offline profiler of SpotServe §5 for our own executors: it runs a model on an {@link Executor} and
 * writes what it measured as a {@link LatencyProfile} — the artifact's {@code profile/T4-4x/*.json} format — so
 * the cost model and the parallelization optimizer plan real runs with real numbers instead of the paper's T4
 * figures.
 *
 * <p>What is measured, for every valid tensor degree M (powers of two up to {@code maxTensorParallel} that
 * {@link ShardLayout} accepts) and every batch size B = 1, 2, 4, ... up to {@code maxBatch}, on a P = 1
 * pipeline of M shards:
 * <ul>
 *   <li>{@code init}: one forward call of B sequences × {@code promptTokens} prompt positions without logits,
 *       divided by the layer count (ms per layer);</li>
 *   <li>{@code incr}: one decode step of B sequences at position {@code promptTokens} (the mean over
 *       {@code decodeSteps} steps) without logits, divided by the layer count;</li>
 *   <li>{@code embed[log2 B]} (at M = 1): the same decode step with logits minus without — the classifier of B
 *       rows, which the cost model charges twice per batch (prompt and last step), clamped at 0;</li>
 *   <li>{@code pp_init_comm} / {@code pp_incr_comm}: a P = 2 pipeline minus the P = 1 pipeline (M = 1, B = 1,
 *       timed alternately), i.e. the cost of one stage boundary, clamped at 0; 0 for one-layer models.</li>
 * </ul>
 * Each number is the median of {@code repeats} timed runs after {@code warmup} untimed ones; the two
 * differences are medians of per-run paired differences, so that drift in machine load cancels. The embedding
 * lookup (one row copy per token) stays inside the layer times. {@code padded_layer_num} equals
 * {@code layer_num} (our layouts balance uneven splits instead of padding), {@code final_fix_factor} is 1.
 *
 * <p>Unlike planning code this class reads the clock ({@link Timer}): measuring is its purpose. Not thread-safe; the executor
 * should not run other work meanwhile. Progress is logged at INFO.
 */
public final class ExecutorProfiler {
    private static final Logger LOG = LoggerFactory.getLogger(ExecutorProfiler.class);
    private static final AtomicLong DEVICE_PREFIX = new AtomicLong();
    private static final long TOKEN_SEED = 0x5107_5E4EL;
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    private final Executor executor;
    private final int promptTokens;
    private final int maxTensorParallel;
    private final int maxBatch;
    private final int warmup;
    private final int repeats;
    private final int decodeSteps;
    private final Timer timer;

    /** What a timed run reads. */
    public enum Timer {
        /** Elapsed time ({@link System#nanoTime()}): what a request sees; the default. */
        WALL,
        /**
         * CPU time of the calling thread (ThreadMXBean): for the CPU executor with one thread, whose kernels run
         * on the caller, it is the elapsed time the run would take on an idle core — the way to profile on a
         * machine shared with other work, where elapsed times include waiting for a core.
         */
        CALLER_CPU
    }

    private ExecutorProfiler(Builder b) {
        this.executor = b.executor;
        this.promptTokens = b.promptTokens;
        this.maxTensorParallel = b.maxTensorParallel;
        this.maxBatch = b.maxBatch;
        this.warmup = b.warmup;
        this.repeats = b.repeats;
        this.decodeSteps = b.decodeSteps;
        this.timer = b.timer;
    }

    /** Nanoseconds on this profiler's timer. */
    private long now() {
        return timer == Timer.WALL ? System.nanoTime() : THREADS.getCurrentThreadCpuTime();
    }

    /** A builder profiling on {@code executor}. */
    public static Builder builder(Executor executor) {
        return new Builder(executor);
    }

    /**
     * The tensor degrees profiled for {@code config}: powers of two up to {@code maxTensorParallel} that divide
     * the query heads, the key/value heads and the FFN width and do not exceed the vocabulary.
     */
    public static List<Integer> tensorDegrees(LlamaConfig config, int maxTensorParallel) {
        Objects.requireNonNull(config, "config");
        if (maxTensorParallel < 1) {
            throw new IllegalArgumentException("maxTensorParallel must be >= 1, was " + maxTensorParallel);
        }
        List<Integer> out = new ArrayList<>();
        for (int m = 1; m <= maxTensorParallel && m > 0; m *= 2) {
            if (config.heads() % m == 0 && config.kvHeads() % m == 0 && config.hiddenDim() % m == 0
                    && config.vocabSize() >= m) {
                out.add(m);
            }
        }
        return List.copyOf(out);
    }

    /**
     * Profiles a loaded checkpoint.
     *
     * @param name the profile's {@code name}
     * @throws IllegalArgumentException if the prompt plus the decode steps do not fit the model's seq_len
     * @throws DeviceMemoryException    if the executor cannot hold the model and the KV caches
     */
    public LatencyProfile profile(String name, ModelWeights checkpoint) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(checkpoint, "checkpoint");
        LlamaConfig c = checkpoint.config();
        if (promptTokens + decodeSteps > c.seqLen()) {
            throw new IllegalArgumentException("prompt tokens " + promptTokens + " + decode steps " + decodeSteps
                    + " exceed the model's seq_len " + c.seqLen() + "; use a shorter prompt");
        }
        List<Integer> degrees = tensorDegrees(c, maxTensorParallel);
        int batches = Integer.numberOfTrailingZeros(maxBatch) + 1;
        int[][] tokens = randomTokens(c.vocabSize(), maxBatch, promptTokens + decodeSteps);
        SortedMap<Integer, SortedMap<Integer, LayerTimes>> tables = new TreeMap<>();
        Double[] embed = new Double[batches];
        double ppInit = 0;
        double ppIncr = 0;
        LOG.info("profiling {} on {} ({} threads): M {}, B 1..{}, prompt {} tokens, {} warm-up + {} timed runs, {} "
                + "decode steps each, {} time", name, executor.name(), executor.options().threads(), degrees, maxBatch,
                promptTokens, warmup, repeats, decodeSteps, timer);
        for (int m : degrees) {
            try (Run run = new Run(checkpoint, ShardLayout.of(c, 1, m), maxBatch, tokens)) {
                SortedMap<Integer, LayerTimes> row = new TreeMap<>();
                for (int i = 0; i < batches; i++) {
                    int b = 1 << i;
                    double[] pre = new double[repeats];
                    double[] dec = new double[repeats];
                    double[] classifier = new double[repeats];
                    for (int r = -warmup; r < repeats; r++) {
                        double p = run.prefillMs(b);
                        double d = run.decodeMs(b, false);
                        double dl = m == 1 ? run.decodeMs(b, true) : 0;
                        if (r >= 0) {
                            pre[r] = p;
                            dec[r] = d;
                            classifier[r] = dl - d;
                        }
                    }
                    double init = median(pre) / c.layers();
                    double incr = median(dec) / c.layers();
                    row.put(b, new LayerTimes(init, incr));
                    if (m == 1) {
                        embed[i] = Math.max(0, median(classifier));
                    }
                    LOG.info("tp-{} bsz-{}: init {} ms/layer, incr {} ms/layer", m, b, round(init), round(incr));
                }
                tables.put(m, row);
                if (m == 1 && c.layers() >= 2) {
                    double[] comm = stageBoundaryMs(checkpoint, run, tokens);
                    ppInit = comm[0];
                    ppIncr = comm[1];
                    LOG.info("stage boundary: init {} ms, incr {} ms", round(ppInit), round(ppIncr));
                }
            }
        }
        return new LatencyProfile(name, c.layers(), c.layers(), 1.0, ppInit, ppIncr, c.dim(),
                degrees.get(degrees.size() - 1), promptTokens, Arrays.asList(embed), tables);
    }

    /**
     * Profiles a model of shape {@code config} with reproducible random weights (seed {@code seed}): dense fp32
     * kernels take the same time whatever the values, so this profiles model sizes we have no checkpoint of.
     * The checkpoint is written to a temporary file that is deleted afterwards.
     */
    public LatencyProfile profile(String name, LlamaConfig config, long seed) {
        Objects.requireNonNull(config, "config");
        Path file = null;
        try {
            file = Files.createTempFile("spotserve-profile", ".bin");
            LlamaCheckpointWriter.writeRandom(file, config, seed);
            return profile(name, LlamaCheckpoint.load(file));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write a random checkpoint for " + config, e);
        } finally {
            if (file != null) {
                try {
                    Files.deleteIfExists(file);
                } catch (IOException e) {
                    LOG.warn("cannot delete temporary checkpoint {}: {}", file, e.toString());
                }
            }
        }
    }

    /** [init, incr] cost of one stage boundary: P = 2 minus P = 1 at M = 1, B = 1, timed alternately. */
    private double[] stageBoundaryMs(ModelWeights checkpoint, Run one, int[][] tokens) {
        LlamaConfig c = checkpoint.config();
        ShardLayout two = ShardLayout.balanced(c, List.of(c.layers() - c.layers() / 2, c.layers() / 2), 1);
        try (Run run2 = new Run(checkpoint, two, 1, tokens)) {
            double[] init = new double[repeats];
            double[] incr = new double[repeats];
            for (int r = -warmup; r < repeats; r++) {
                double p1 = one.prefillMs(1);
                double d1 = one.decodeMs(1, false);
                double p2 = run2.prefillMs(1);
                double d2 = run2.decodeMs(1, false);
                if (r >= 0) {
                    init[r] = p2 - p1;
                    incr[r] = d2 - d1;
                }
            }
            return new double[] {Math.max(0, median(init)), Math.max(0, median(incr))};
        }
    }

    /** One pipeline on fresh devices with {@code batch} open sequences, closed (devices destroyed) at the end. */
    private final class Run implements AutoCloseable {
        private final Pipeline pipeline;
        private final List<Device> devices = new ArrayList<>();
        private final int[][] tokens;
        private final long[] seqs;
        private final int[] toks;
        private final int[] pos;
        private final float[][] noLogits;
        private final float[][] logits;

        Run(ModelWeights checkpoint, ShardLayout layout, int batch, int[][] tokens) {
            this.tokens = tokens;
            int capacity = promptTokens + decodeSteps;
            int width = batch * promptTokens;
            String prefix = "profiler-" + DEVICE_PREFIX.incrementAndGet();
            Pipeline p = null;
            try {
                for (int s = 0; s < layout.stages(); s++) {
                    for (int m = 0; m < layout.shards(); m++) {
                        long bytes = layout.weightBytes(s, m) + (long) batch * capacity * layout.kvBytesPerPosition(s, m);
                        devices.add(executor.createDevice(new DeviceId(prefix, devices.size()), bytes));
                    }
                }
                p = executor.createPipeline(layout, devices, width);
                p.loadWeights(checkpoint);
                for (int b = 0; b < batch; b++) {
                    p.openSequence(b, capacity);
                }
            } catch (RuntimeException e) {
                if (p != null) {
                    p.close();
                }
                devices.forEach(executor::destroyDevice);
                throw e;
            }
            this.pipeline = p;
            seqs = new long[width];
            toks = new int[width];
            pos = new int[width];
            noLogits = new float[width][];
            logits = new float[batch][layout.config().vocabSize()];
        }

        /** One forward call over B prompts of promptTokens tokens from position 0, no logits. */
        double prefillMs(int batch) {
            int n = 0;
            for (int b = 0; b < batch; b++) {
                for (int t = 0; t < promptTokens; t++, n++) {
                    seqs[n] = b;
                    toks[n] = tokens[b][t];
                    pos[n] = t;
                }
            }
            long start = now();
            pipeline.forward(seqs, toks, pos, n, noLogits);
            return (now() - start) / 1e6;
        }

        /** Mean time of one decode step of B sequences over positions promptTokens, promptTokens + 1, ... */
        double decodeMs(int batch, boolean withLogits) {
            float[][] out = withLogits ? logits : noLogits;
            long total = 0;
            for (int k = 0; k < decodeSteps; k++) {
                for (int b = 0; b < batch; b++) {
                    seqs[b] = b;
                    toks[b] = tokens[b][promptTokens + k];
                    pos[b] = promptTokens + k;
                }
                long start = now();
                pipeline.forward(seqs, toks, pos, batch, out);
                total += now() - start;
            }
            return total / 1e6 / decodeSteps;
        }

        @Override
        public void close() {
            pipeline.close();
            devices.forEach(executor::destroyDevice);
        }
    }

    private static int[][] randomTokens(int vocab, int batch, int length) {
        Random random = new Random(TOKEN_SEED);
        int[][] out = new int[batch][length];
        for (int[] row : out) {
            for (int i = 0; i < length; i++) {
                row[i] = random.nextInt(vocab);
            }
        }
        return out;
    }

    static double median(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }

    private static String round(double ms) {
        return String.format(java.util.Locale.ROOT, "%.4f", ms);
    }

    /** Configuration of a profiler; defaults: prompt 512 tokens, max TP 8, B up to 8, 1 warm-up, 3 repeats, 16 decode steps. */
    public static final class Builder {
        private final Executor executor;
        private int promptTokens = LatencyProfile.DEFAULT_PROMPT_TOKENS;
        private int maxTensorParallel = 8;
        private int maxBatch = 8;
        private int warmup = 1;
        private int repeats = 3;
        private int decodeSteps = 16;
        private Timer timer = Timer.WALL;

        private Builder(Executor executor) {
            this.executor = Objects.requireNonNull(executor, "executor");
        }

        /** Prompt length of the {@code init} measurement (recorded as the profile's {@code prompt_tokens}). */
        public Builder promptTokens(int tokens) {
            this.promptTokens = atLeast("promptTokens", tokens, 1);
            return this;
        }

        /** Largest tensor degree M tried; degrees the model cannot be split into are skipped. */
        public Builder maxTensorParallel(int maxTp) {
            this.maxTensorParallel = atLeast("maxTensorParallel", maxTp, 1);
            return this;
        }

        /** Largest batch size B, a power of two; B runs over 1, 2, 4, ..., maxBatch (the {@code embed} indices). */
        public Builder maxBatch(int maxBatch) {
            if (maxBatch < 1 || Integer.bitCount(maxBatch) != 1) {
                throw new IllegalArgumentException("maxBatch must be a power of two >= 1, was " + maxBatch);
            }
            this.maxBatch = maxBatch;
            return this;
        }

        /** Untimed runs before the timed ones of every cell (JIT warm-up). */
        public Builder warmup(int runs) {
            this.warmup = atLeast("warmup", runs, 0);
            return this;
        }

        /** Timed runs per cell; the profile holds their median. */
        public Builder repeats(int runs) {
            this.repeats = atLeast("repeats", runs, 1);
            return this;
        }

        /** Decode steps averaged within one timed decode run. */
        public Builder decodeSteps(int steps) {
            this.decodeSteps = atLeast("decodeSteps", steps, 1);
            return this;
        }

        /** What timed runs read; default {@link Timer#WALL}. */
        public Builder timer(Timer timer) {
            this.timer = Objects.requireNonNull(timer, "timer");
            return this;
        }

        /**
         * The profiler.
         *
         * @throws IllegalArgumentException for {@link Timer#CALLER_CPU} with an executor of more than one thread
         *                                  (the other threads' work would not be counted) or where the JVM
         *                                  cannot read thread CPU time
         */
        public ExecutorProfiler build() {
            if (timer == Timer.CALLER_CPU) {
                if (executor.options().threads() != 1) {
                    throw new IllegalArgumentException("timer CALLER_CPU counts only the calling thread; it needs an "
                            + "executor with 1 thread, this one has " + executor.options().threads());
                }
                if (!THREADS.isCurrentThreadCpuTimeSupported()) {
                    throw new IllegalArgumentException("timer CALLER_CPU: this JVM cannot read thread CPU time");
                }
                THREADS.setThreadCpuTimeEnabled(true);
            }
            return new ExecutorProfiler(this);
        }

        private static int atLeast(String what, int v, int min) {
            if (v < min) {
                throw new IllegalArgumentException(what + " must be >= " + min + ", was " + v);
            }
            return v;
        }
    }
}
