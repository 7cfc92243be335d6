package io.spotserve.bench;

import io.spotserve.cuda.CudaExecutor;
import io.spotserve.cuda.CudaExecutorProvider;
import io.spotserve.exec.ExecutorOptions;
import java.io.IOException;
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

    private DecodeWorkload workload;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        if (!CudaExecutorProvider.gpuAvailable()) {
            throw new IllegalStateException("CudaDecodeBenchmark needs a GPU: "
                    + new CudaExecutorProvider().unusableReason());
        }
        workload = new DecodeWorkload(new CudaExecutor(ExecutorOptions.defaults()), DecodeWorkload.checkpoint25M(),
                shards, batch);
    }

    @Benchmark
    public float[][] decodeStep() {
        return workload.step(); // returns after the logits are on the host
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (workload != null) {
            workload.close();
        }
    }
}
