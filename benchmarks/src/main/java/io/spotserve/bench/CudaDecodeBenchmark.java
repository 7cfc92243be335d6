package io.spotserve.bench;

import io.spotserve.cuda.CudaExecutor;
import io.spotserve.cuda.CudaExecutorProvider;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Decode throughput of the CUDA executor on the same random 25M-parameter checkpoint as
 * {@link CpuDecodeBenchmark} (so the two compare directly): one op is one decode step of {@code batch}
 * sequences at staggered positions in [0, 256); tokens/s = ops/s × batch. Needs a usable GPU; without one
 * the setup fails with the reason.
 *
 * <p>Run (GPU machine): {@code java -jar benchmarks/target/benchmarks.jar CudaDecode -f 1 -wi 3 -i 5}
 * (add {@code -p batch=1,8,32 -p shards=1,2}; {@code -jvmArgsAppend -Dspotserve.cuda.cublas=true} routes
 * batches of 8+ through cuBLAS when libcublas.so.12 loads).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g"})
public class CudaDecodeBenchmark {
    @Param({"1", "8", "32"})
    public int batch;

    /** Tensor shards M of a P = 1 layout, all on GPU 0 here: the cost of the device-side all-reduce. */
    @Param({"1"})
    public int shards;

    private Executor executor;
    private Pipeline pipeline;
    private long[] ids;
    private int[] tokens;
    private int[] positions;
    private float[][] logits;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        if (!CudaExecutorProvider.gpuAvailable()) {
            throw new IllegalStateException("CudaDecodeBenchmark needs a GPU: "
                    + new CudaExecutorProvider().unusableReason());
        }
        LlamaCheckpoint ckpt = CpuDecodeBenchmark.checkpoint();
        executor = new CudaExecutor(ExecutorOptions.defaults());
        ShardLayout layout = ShardLayout.of(ckpt.config(), 1, shards);
        List<Device> devices = new ArrayList<>();
        for (int m = 0; m < shards; m++) {
            devices.add(executor.createDevice(new DeviceId("bench", m), 1L << 31));
        }
        int window = CpuDecodeBenchmark.WINDOW;
        pipeline = executor.createPipeline(layout, devices, batch);
        pipeline.loadWeights(ckpt);
        ids = new long[batch];
        tokens = new int[batch];
        positions = new int[batch];
        logits = new float[batch][ckpt.config().vocabSize()];
        for (int b = 0; b < batch; b++) {
            ids[b] = b;
            pipeline.openSequence(b, window);
            int start = b * window / batch;
            for (int p = 0; p < start; p++) {
                pipeline.forward(new long[] {b}, new int[] {(p * 31 + b) % 512}, new int[] {p}, 1, new float[1][]);
            }
            positions[b] = start;
            tokens[b] = b % 512;
        }
    }

    @Benchmark
    public float[][] decodeStep() {
        int window = CpuDecodeBenchmark.WINDOW;
        for (int b = 0; b < batch; b++) {
            if (positions[b] == window) {
                pipeline.closeSequence(ids[b]);
                ids[b] += batch;
                pipeline.openSequence(ids[b], window);
                positions[b] = 0;
            }
        }
        pipeline.forward(ids, tokens, positions, batch, logits); // returns after the logits are on the host
        for (int b = 0; b < batch; b++) {
            positions[b]++;
            tokens[b] = (tokens[b] * 7 + 1) % 512;
        }
        return logits;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (pipeline != null) {
            pipeline.close();
        }
        if (executor != null) {
            executor.close();
        }
    }
}
