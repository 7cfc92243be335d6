package io.spotserve.bench.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.WeightSource;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
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
 * What the timing executor costs the simulator on an OPT-6.7B-shaped model (dim 4096, 32 layers, 32 heads, FFN
 * 10920, vocab 51200): {@code decodeStep} is one forward call of {@code batch} sequences decoding one token each (KV capacity
 * 512) on a P = 2, M = 2 pipeline (the engine's hot path, millions of calls per evaluation run; logits rows are reused);
 * {@code openClose} opens and closes one sequence of 512 positions (admission / completion); {@code migrateWeights}
 * moves every weight piece of the model P = 4, M = 1 → P = 2, M = 2 and back with {@link ContextSlice#intersect},
 * export, release of the old units and import (two reconfigurations' weight data path, without the planner).
 *
 * <p>Run: <pre>java -jar benchmarks/target/benchmarks.jar TimingExecutorBenchmark -f 1 -wi 3 -i 5</pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g"})
public class TimingExecutorBenchmark {
    static final LlamaConfig OPT_6_7B = new LlamaConfig(4096, 10920, 32, 32, 32, 51200, 2048, false);

    /** KV positions of each decoding sequence (256 of them fit 4 × 80 GiB devices). */
    static final int CAPACITY = 512;

    @Param({"1", "16", "256"})
    public int batch;

    private TimingExecutor executor;
    private Pipeline step;
    private long[] seqs;
    private int[] tokens;
    private int[] positions;
    private float[][] logits;
    private Pipeline a;
    private Pipeline b;
    private long next = 1_000_000;

    @Setup
    public void setUp() {
        executor = new TimingExecutor();
        WeightSource source = TimingExecutor.weights(OPT_6_7B);
        ShardLayout l = ShardLayout.of(OPT_6_7B, 2, 2);
        step = executor.createPipeline(l, devices("step", 4), batch);
        load(step, source);
        seqs = new long[batch];
        tokens = new int[batch];
        positions = new int[batch];
        logits = new float[batch][OPT_6_7B.vocabSize()];
        for (int i = 0; i < batch; i++) {
            seqs[i] = i;
            tokens[i] = TimingExecutor.SPIKE_TOKEN;
            step.openSequence(i, CAPACITY);
        }
        List<Device> shared = devices("mig", 4);
        a = executor.createPipeline(ShardLayout.of(OPT_6_7B, 4, 1), shared, 1);
        b = executor.createPipeline(ShardLayout.of(OPT_6_7B, 2, 2), shared, 1);
        load(a, source);
    }

    private List<Device> devices(String instance, int n) {
        List<Device> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(executor.createDevice(new DeviceId(instance, i), 80L << 30));
        }
        return out;
    }

    private static void load(Pipeline p, WeightSource source) {
        ShardLayout l = p.layout();
        for (int s = 0; s < l.stages(); s++) {
            for (int m = 0; m < l.shards(); m++) {
                for (ContextSlice w : l.weightSlices(s, m)) {
                    p.importSlice(s, m, source.encode(w));
                }
            }
        }
    }

    @Benchmark
    public float[][] decodeStep() {
        step.forward(seqs, tokens, positions, batch, logits);
        for (int i = 0; i < batch; i++) {
            if (positions[i] < CAPACITY - 1) {
                positions[i]++; // then recompute the last position once the cache is full
            }
        }
        return logits;
    }

    @Benchmark
    public long openClose() {
        long id = next++;
        step.openSequence(id, CAPACITY);
        step.closeSequence(id);
        return id;
    }

    @Benchmark
    public boolean migrateWeights() {
        move(a, b);
        move(b, a);
        return a.isReady();
    }

    private static void move(Pipeline from, Pipeline to) {
        ShardLayout x = from.layout();
        ShardLayout y = to.layout();
        List<Object[]> staged = new ArrayList<>();
        for (int s2 = 0; s2 < y.stages(); s2++) {
            for (int m2 = 0; m2 < y.shards(); m2++) {
                for (ContextSlice need : y.weightSlices(s2, m2)) {
                    for (int s1 = 0; s1 < x.stages(); s1++) {
                        for (int m1 = 0; m1 < x.shards(); m1++) {
                            for (ContextSlice have : x.weightSlices(s1, m1)) {
                                Optional<ContextSlice> piece = have.intersect(need);
                                if (piece.isPresent()) {
                                    staged.add(new Object[] {s2, m2, from.exportSlice(s1, m1, piece.get())});
                                }
                            }
                        }
                    }
                }
            }
        }
        for (int s1 = 0; s1 < x.stages(); s1++) {
            for (int m1 = 0; m1 < x.shards(); m1++) {
                for (ContextSlice u : x.weightSlices(s1, m1)) {
                    from.releaseSlice(s1, m1, u);
                }
            }
        }
        for (Object[] st : staged) {
            to.importSlice((int) st[0], (int) st[1], (byte[]) st[2]);
        }
        if (!to.isReady()) {
            throw new IllegalStateException("migration left " + to + " incomplete");
        }
    }

    @TearDown
    public void tearDown() {
        executor.close();
    }
}
