package io.spotserve.bench;

import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The decode workload shared by {@link CpuDecodeBenchmark} and {@link CudaDecodeBenchmark}, so both executors
 * run exactly the same steps: a P = 1, M = {@code shards} pipeline of {@code batch} sequences at staggered
 * positions in [0, window) ({@link #WINDOW} unless given; continuous batching: a sequence reaching the window is
 * replaced by a new one in its slot). One {@link #step()} is one decode step of the whole batch.
 */
final class DecodeWorkload implements AutoCloseable {
    /** The random 25M-parameter benchmark model (dim 512, hidden 1376, 8 layers, 8 heads, 4 KV heads). */
    static final LlamaConfig MODEL_25M = new LlamaConfig(512, 1376, 8, 8, 4, 512, 1024, true);
    static final int WINDOW = 256;

    private final Executor executor;
    private final Pipeline pipeline;
    private final int batch;
    private final int window;
    private final long[] ids;
    private final int[] tokens;
    private final int[] positions;
    private final float[][] logits;

    /** The benchmark checkpoint of {@link #MODEL_25M}, written once per machine (about 100 MB). */
    /** Seeded greedy engine requests: {@code count} prompts of 32 random ids after BOS, 32 new tokens each. */
    static java.util.List<io.spotserve.engine.GenerationRequest> engineRequests(int vocabSize, int count) {
        java.util.Random rnd = new java.util.Random(1);
        java.util.List<io.spotserve.engine.GenerationRequest> out = new java.util.ArrayList<>();
        for (int i = 0; i < count; i++) {
            int[] prompt = new int[32];
            prompt[0] = io.spotserve.model.Tokenizer.BOS;
            for (int k = 1; k < prompt.length; k++) {
                prompt[k] = 3 + rnd.nextInt(vocabSize - 3);
            }
            out.add(io.spotserve.engine.GenerationRequest.builder().promptTokens(prompt).maxNewTokens(32).build());
        }
        return out;
    }

    static LlamaCheckpoint checkpoint25M() throws IOException {
        Path file = Path.of(System.getProperty("java.io.tmpdir"), "spotserve-bench-25M-seed1.bin");
        if (!Files.exists(file)) {
            Path tmp = Files.createTempFile(file.getParent(), "spotserve-bench", ".tmp");
            LlamaCheckpointWriter.writeRandom(tmp, MODEL_25M, 1);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
        }
        return LlamaCheckpoint.load(file);
    }

    /** Places {@code ckpt} on {@code shards} 2 GiB devices of {@code executor} and opens the staggered batch. */
    DecodeWorkload(Executor executor, io.spotserve.model.ModelWeights ckpt, int shards, int batch) {
        this(executor, ckpt, shards, batch, WINDOW);
    }

    /** As above, with sequences cycling through positions [0, window) (at most the model's seq_len). */
    DecodeWorkload(Executor executor, io.spotserve.model.ModelWeights ckpt, int shards, int batch, int window) {
        this.executor = executor;
        this.batch = batch;
        this.window = window;
        try {
            if (window < 1 || window > ckpt.config().seqLen()) {
                throw new IllegalArgumentException("window " + window + " outside [1, seq_len "
                        + ckpt.config().seqLen() + "] of " + ckpt.description());
            }
            ShardLayout layout = ShardLayout.of(ckpt.config(), 1, shards);
            List<Device> devices = new ArrayList<>();
            for (int m = 0; m < shards; m++) {
                devices.add(executor.createDevice(new DeviceId("bench", m), 1L << 31));
            }
            pipeline = executor.createPipeline(layout, devices, batch);
            pipeline.loadWeights(ckpt);
            ids = new long[batch];
            tokens = new int[batch];
            positions = new int[batch];
            logits = new float[batch][ckpt.config().vocabSize()];
            for (int b = 0; b < batch; b++) {
                ids[b] = b;
                pipeline.openSequence(b, window);
                // stagger: sequence b is prefilled to position b * window / batch
                int start = b * window / batch;
                for (int p = 0; p < start; p++) {
                    pipeline.forward(new long[] {b}, new int[] {(p * 31 + b) % 512}, new int[] {p}, 1, new float[1][]);
                }
                positions[b] = start;
                tokens[b] = b % 512;
            }
        } catch (RuntimeException e) {
            executor.close(); // also closes the pipeline
            throw e;
        }
    }

    /** One decode step of the batch; returns the logits (on the host). */
    float[][] step() {
        for (int b = 0; b < batch; b++) {
            if (positions[b] == window) { // the sequence finished: a new one joins in its slot
                pipeline.closeSequence(ids[b]);
                ids[b] += batch;
                pipeline.openSequence(ids[b], window);
                positions[b] = 0;
            }
        }
        pipeline.forward(ids, tokens, positions, batch, logits);
        for (int b = 0; b < batch; b++) {
            positions[b]++;
            tokens[b] = (tokens[b] * 7 + 1) % 512;
        }
        return logits;
    }

    /** Closes the pipeline and the executor. */
    @Override
    public void close() {
        pipeline.close();
        executor.close();
    }
}
