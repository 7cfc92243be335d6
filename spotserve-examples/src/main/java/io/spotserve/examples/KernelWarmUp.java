package io.spotserve.examples;

import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ExecutorProvider;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.cpu.CpuExecutorProvider;
import io.spotserve.model.LlamaCheckpoint.Tensor;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelWeights;
import io.spotserve.plan.DeviceId;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gets the CPU executor's kernels compiled while the real weights load: a background thread runs prefill and
 * decode steps of a one-layer model of made-up weights whose head size, grouped-query ratio and row counts modulo
 * a packed block match the real model's, so the same kernel methods take the same branches. Without it the first
 * forward call of {@code generate} (the prompt's prefill block, then the first decode steps) runs the Vector API in
 * the interpreter, where every vector operation allocates: on the 25M model that was ≈ 0.5 s before the first
 * token, more than a third of the whole command.
 *
 * <p>Only the JIT's state is shared with the real run: the warm-up has its own executor (one thread), pipeline and
 * weights, and computes nothing the real run reads, so the generated text cannot depend on it. It stops at
 * {@link #close} (the real weights are loaded), after {@link #MAX_ROUNDS} rounds, or at its first exception
 * (logged at DEBUG: it is an optimisation only).
 */
final class KernelWarmUp implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(KernelWarmUp.class);
    /** Positions of one warm-up sequence: a prefill block of {@link #PREFILL} entries, then decode steps. */
    static final int POSITIONS = 32;
    /** Entries of the warm-up prefill block: one 4-entry tile and one left-over entry of the batched kernel. */
    static final int PREFILL = 5;
    /** Upper bound on warm-up sequences, should {@link #close} come late (a slow disk). */
    static final int MAX_ROUNDS = 400;
    /** Row counts keep their residue modulo this (a packed block of 4 vectors of 16 floats, AVX-512). */
    private static final int BLOCK = 64;
    /** What {@link #startEarly} warms up before the model is known: heads of 64, two per KV head. */
    private static final LlamaConfig EARLY_MODEL = new LlamaConfig(512, 1376, 1, 8, 4, 512, POSITIONS, true);

    /** What to warm up: executor options (one thread) and the warm-up model. */
    private record Target(ExecutorOptions options, LlamaConfig shape) {
    }

    /** The warm-up {@link #startEarly} began, until {@code generate} takes it over. */
    private static KernelWarmUp early;

    private final ExecutorProvider provider;
    private final Thread thread;
    private volatile Target target;
    private volatile boolean stop;
    private volatile int rounds;

    private KernelWarmUp(ExecutorProvider provider, ExecutorOptions options, LlamaConfig model) {
        this.provider = provider;
        this.target = new Target(options.withThreads(1), shapeOf(model));
        this.thread = new Thread(this::run, "spotserve-warm-up");
        thread.setDaemon(true);
    }

    /** Whether warm-ups run: unless {@code -Dspotserve.warmup=false}. */
    static boolean enabled() {
        return !"false".equalsIgnoreCase(System.getProperty("spotserve.warmup"));
    }

    /** Starts warming up the kernels of {@code provider}'s executors for {@code model}'s shapes. */
    static KernelWarmUp start(ExecutorProvider provider, ExecutorOptions options, LlamaConfig model) {
        KernelWarmUp w = new KernelWarmUp(provider, options, model);
        w.thread.start();
        return w;
    }

    /**
     * Called by the main before the command line is parsed, when the command is {@code generate}: starts a warm-up
     * on the CPU executor's vector kernels (only when the module is loaded) with default options and a head size of 64
     * (the llama2.c and Llama models'), so that the
     * Vector API's classes are initialised and the common kernels compiled while picocli parses, on the other core;
     * {@link #takeEarly} hands it to the command, which retargets it at the real model or closes it.
     */
    static synchronized void startEarly() {
        if (early == null && enabled() && ModuleLayer.boot().findModule(FastPathLauncher.MODULE).isPresent()) {
            early = start(new CpuExecutorProvider(), ExecutorOptions.defaults(), EARLY_MODEL);
        }
    }

    /** The warm-up {@link #startEarly} started, now the caller's to retarget or close; null if none. */
    static synchronized KernelWarmUp takeEarly() {
        KernelWarmUp w = early;
        early = null;
        return w;
    }

    /** From the next warm-up sequence on, warms up {@code options}' executor (one thread) for {@code model}. */
    void retarget(ExecutorOptions options, LlamaConfig model) {
        target = new Target(options.withThreads(1), shapeOf(model));
    }

    /** Warm-up sequences completed so far. */
    int rounds() {
        return rounds;
    }

    /** Stops the warm-up and waits for it (at most one warm-up step). */
    @Override
    public void close() {
        stop = true;
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * The warm-up model for {@code model}: one layer, the same head size and query heads per KV head with one or
     * two KV heads, and hidden and vocabulary sizes of one packed block plus the real ones' remainders.
     */
    static LlamaConfig shapeOf(LlamaConfig model) {
        int headSize = model.dim() / model.heads();
        int group = model.heads() / model.kvHeads();
        int kvHeads = Math.min(model.kvHeads(), 2);
        int heads = kvHeads * group;
        int hidden = BLOCK + model.hiddenDim() % BLOCK;
        int vocab = BLOCK + model.vocabSize() % BLOCK;
        return new LlamaConfig(heads * headSize, hidden, 1, heads, kvHeads, vocab, POSITIONS, true);
    }

    private void run() {
        long id = 0;
        try {
            while (!stop && rounds < MAX_ROUNDS) {
                Target t = target;
                ShardLayout layout = ShardLayout.of(t.shape(), 1, 1);
                try (Executor executor = provider.create(t.options())) {
                    long bytes = layout.weightBytes(0, 0) + layout.kvBytesPerPosition(0, 0) * POSITIONS + (1 << 20);
                    Device device = executor.createDevice(new DeviceId("warm-up", 0), bytes);
                    try (Pipeline pipeline = executor.createPipeline(layout, List.of(device), PREFILL)) {
                        pipeline.loadWeights(new MadeUpWeights(t.shape()));
                        while (!stop && rounds < MAX_ROUNDS && target.equals(t)) {
                            sequence(pipeline, id++, t.shape().vocabSize());
                            rounds++;
                        }
                    }
                }
            }
        } catch (RuntimeException | Error e) {
            LOG.debug("kernel warm-up stopped: {}", e.toString());
        }
    }

    /** One warm-up sequence: a prefill block of {@link #PREFILL} entries, then decode steps to {@link #POSITIONS}. */
    private void sequence(Pipeline pipeline, long id, int vocab) {
        long[] seqs = new long[PREFILL];
        int[] toks = new int[PREFILL];
        int[] pos = new int[PREFILL];
        float[][] logits = new float[PREFILL][];
        float[] out = new float[vocab];
        pipeline.openSequence(id, POSITIONS);
        try {
            java.util.Arrays.fill(seqs, id);
            for (int i = 0; i < PREFILL; i++) {
                toks[i] = (int) ((id + 3 * i) % vocab);
                pos[i] = i;
            }
            logits[PREFILL - 1] = out;
            pipeline.forward(seqs, toks, pos, PREFILL, logits);
            logits[PREFILL - 1] = null;
            logits[0] = out;
            for (int p = PREFILL; p < POSITIONS && !stop; p++) {
                toks[0] = argmax(out);
                pos[0] = p;
                pipeline.forward(seqs, toks, pos, 1, logits);
            }
        } finally {
            pipeline.closeSequence(id);
        }
    }

    private static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }

    /** Weights computed from their index (no file, no memory): norms near 1, matrices of small values. */
    private record MadeUpWeights(LlamaConfig config) implements ModelWeights {
        @Override
        public String description() {
            return "kernel warm-up";
        }

        @Override
        public void read(Tensor tensor, int layer, long offset, float[] dst, int dstOff, int len) {
            boolean norm = tensor == Tensor.RMS_ATT || tensor == Tensor.RMS_FFN || tensor == Tensor.RMS_FINAL;
            for (int i = 0; i < len; i++) {
                long h = (offset + i + 1) * 0x9E3779B97F4A7C15L + tensor.ordinal();
                float u = ((h >>> 40) & 0xFFFF) / 65536f - 0.5f; // in [-0.5, 0.5)
                dst[dstOff + i] = norm ? 1f + 0.2f * u : 0.04f * u;
            }
        }
    }
}
