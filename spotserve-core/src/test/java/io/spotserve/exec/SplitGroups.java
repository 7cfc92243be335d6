package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.ModelWeights;
import io.spotserve.plan.DeviceId;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

/**
 * Test harness: a layout's tensor groups split into G parts, each part on its own executor and devices (as separate
 * worker processes would hold them), either one pipeline per (stage, part) or one per part spanning every stage. A
 * step runs every part in its own thread through all stages; the parts meet at each reduce point in a
 * {@link BarrierReducer}, which gathers copies of every part's partials and sums all M in shard order. Used by
 * {@link ShardGroupContract} on every executor that splits tensor groups.
 */
public final class SplitGroups implements AutoCloseable {
    static final long WAIT_SECONDS = 20;

    final ShardLayout layout;
    final int parts;
    final boolean perStage;
    final BarrierReducer reducer;
    private final int width;
    private final List<Executor> executors = new ArrayList<>();
    private final Pipeline[][] pipes; // [part][stage]; a spanning pipeline appears at every stage
    private final ExecutorService threads;

    /** Empty pipelines, or loaded from {@code weights} when non-null. */
    SplitGroups(Function<ExecutorOptions, Executor> factory, ShardLayout layout, int parts, boolean perStage,
                ExecutorOptions options, int maxBatch, ModelWeights weights) {
        this.layout = layout;
        this.parts = parts;
        this.perStage = perStage;
        this.width = layout.shards() / parts;
        this.pipes = new Pipeline[parts][layout.stages()];
        this.reducer = new BarrierReducer(layout.shards(), parts);
        this.threads = Executors.newFixedThreadPool(parts, r -> {
            Thread t = new Thread(r, "split-group");
            t.setDaemon(true);
            return t;
        });
        try {
            for (int g = 0; g < parts; g++) {
                Executor ex = factory.apply(options);
                executors.add(ex);
                if (perStage) {
                    for (int p = 0; p < layout.stages(); p++) {
                        pipes[g][p] = create(ex, g, new IndexRange(p, p + 1), maxBatch);
                    }
                } else {
                    Arrays.fill(pipes[g], create(ex, g, new IndexRange(0, layout.stages()), maxBatch));
                }
            }
            if (weights != null) {
                for (Pipeline p : all()) {
                    p.loadWeights(weights);
                }
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private Pipeline create(Executor ex, int g, IndexRange stages, int maxBatch) {
        List<Device> devices = new ArrayList<>();
        for (int p = stages.from(); p < stages.to(); p++) {
            for (int m = shards(g).from(); m < shards(g).to(); m++) {
                devices.add(ex.createDevice(new DeviceId("s" + p, m), 1L << 28));
            }
        }
        return ex.createShardGroup(layout, stages, shards(g), devices, maxBatch);
    }

    /** The shards part g hosts. */
    IndexRange shards(int g) {
        return new IndexRange(g * width, (g + 1) * width);
    }

    /** The pipeline of part g that hosts stage p. */
    Pipeline pipeline(int g, int p) {
        return pipes[g][p];
    }

    /** Every distinct pipeline. */
    List<Pipeline> all() {
        LinkedHashSet<Pipeline> out = new LinkedHashSet<>();
        for (Pipeline[] row : pipes) {
            for (Pipeline p : row) {
                if (p != null) {
                    out.add(p);
                }
            }
        }
        return new ArrayList<>(out);
    }

    void openSequence(long id, int capacity) {
        for (Pipeline p : all()) {
            p.openSequence(id, capacity);
        }
    }

    /**
     * One step through every stage, every part in its own thread; on success the vocabulary columns of all parts are
     * gathered into the non-null {@code logits[b]}, after checking that each part wrote only its own columns and that
     * all parts handed the same residual stream to each next stage.
     */
    void step(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits) throws Exception {
        float[][][] out = new float[parts][][];
        float[][][] handOff = new float[parts][layout.stages()][];
        Throwable[] failed = run(seqs, tokens, positions, count, logits, out, handOff);
        for (Throwable t : failed) {
            if (t instanceof Exception e) {
                throw e;
            } else if (t != null) {
                throw new AssertionError(t);
            }
        }
        for (int p = 0; p + 1 < layout.stages(); p++) {
            for (int g = 1; g < parts; g++) {
                assertArrayEquals(handOff[0][p], handOff[g][p], "part " + g + " ends stage " + p + " like part 0");
            }
        }
        for (int b = 0; b < count; b++) {
            if (logits[b] == null) {
                continue;
            }
            for (int g = 0; g < parts; g++) {
                int from = layout.vocab(shards(g).from()).from();
                int to = layout.vocab(shards(g).to() - 1).to();
                float[] mine = out[g][b];
                for (int v = 0; v < mine.length; v++) {
                    assertTrue((v >= from && v < to) != Float.isNaN(mine[v]), "part " + g + " of " + layout
                            + " must write logit columns [" + from + ", " + to + ") only; column " + v + " = " + mine[v]);
                }
                System.arraycopy(mine, from, logits[b], from, to - from);
            }
        }
    }

    /** A step whose failures are returned, one per part (null where the part succeeded). */
    Throwable[] run(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits) throws Exception {
        return run(seqs, tokens, positions, count, logits, new float[parts][][], new float[parts][layout.stages()][]);
    }

    private Throwable[] run(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits, float[][][] out,
                            float[][][] handOff) throws Exception {
        List<Future<?>> futures = new ArrayList<>();
        Throwable[] failed = new Throwable[parts];
        int dim = layout.config().dim();
        for (int g = 0; g < parts; g++) {
            int part = g;
            out[g] = new float[count][];
            for (int b = 0; b < count; b++) {
                if (logits[b] != null) {
                    out[g][b] = new float[logits[b].length];
                    Arrays.fill(out[g][b], Float.NaN);
                }
            }
            futures.add(threads.submit(() -> {
                float[] hidden = new float[count * dim];
                try {
                    for (int p = 0; p < layout.stages(); p++) {
                        pipes[part][p].forwardStage(p, seqs, tokens, positions, count, hidden, out[part], reducer);
                        handOff[part][p] = hidden.clone();
                    }
                } catch (Throwable t) {
                    failed[part] = t;
                    reducer.abort(); // the other parts must not wait for this one at the barrier
                }
            }));
        }
        for (Future<?> f : futures) {
            f.get(3 * WAIT_SECONDS, TimeUnit.SECONDS);
        }
        return failed;
    }

    @Override
    public void close() {
        threads.shutdownNow();
        for (Executor ex : executors) {
            ex.close();
        }
    }

    /**
     * The test's reducer: every part deposits copies of its partials, waits for the others, checks that all parts are
     * at the same point and sums all M partials in shard order; {@link #replyShortAt} makes it answer one float short.
     */
    static final class BarrierReducer implements TensorReducer {
        private final int shards;
        private final float[][] slots;
        private final Point[] points;
        private final CyclicBarrier in;
        private final CyclicBarrier out;
        private volatile Point replyShortAt;

        BarrierReducer(int shards, int parts) {
            this.shards = shards;
            this.slots = new float[shards][];
            this.points = new Point[parts];
            this.in = new CyclicBarrier(parts);
            this.out = new CyclicBarrier(parts);
        }

        /** From now on, the reply at {@code point} (null: none) has one float fewer than asked. */
        void replyShortAt(Point point) {
            replyShortAt = point;
        }

        @Override
        public float[] allReduce(Point point, IndexRange hosted, float[][] partials, int n) {
            points[hosted.from() / hosted.length()] = point;
            for (int i = 0; i < partials.length; i++) {
                slots[hosted.from() + i] = Arrays.copyOf(partials[i], n);
            }
            await(in);
            for (Point q : points) {
                if (!point.equals(q)) {
                    throw new IllegalStateException("parts out of step: " + Arrays.toString(points));
                }
            }
            float[] sum = slots[0].clone();
            for (int m = 1; m < shards; m++) {
                for (int i = 0; i < n; i++) {
                    sum[i] += slots[m][i];
                }
            }
            await(out);
            return point.equals(replyShortAt) ? Arrays.copyOf(sum, n - 1) : sum;
        }

        void abort() {
            in.reset();
            out.reset();
        }

        private static void await(CyclicBarrier barrier) {
            try {
                barrier.await(WAIT_SECONDS, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted at the barrier", e);
            } catch (BrokenBarrierException | TimeoutException e) {
                throw new IllegalStateException("another part failed or never came", e);
            }
        }
    }
}
