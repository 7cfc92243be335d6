package io.spotserve.exec.cpu;

import io.spotserve.exec.IndexRange;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.TensorReducer;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.exec.spi.AbstractPipeline;
import io.spotserve.exec.spi.GroupReduce;
import java.util.Arrays;
import java.util.List;

/**
 * The CPU pipeline: P × M {@link StageShard}s driven in pipeline order. Per layer, every shard of the stage
 * computes its heads' attention output (a partial sum over its wo columns), the partials are summed in shard
 * order (the all-reduce) and added to the residual stream; the same for the FFN's w2. The residual stream is
 * handed from stage to stage by copying it into the next stage's input buffer, as a real hand-off would.
 *
 * <p>A pipeline may host only some stages and, of those, only some shards (one part of a tensor group split over
 * pipelines): it then runs stage by stage, and a split group sums its partials through the caller's
 * {@link TensorReducer} in the same shard order, so every part ends each layer with the same floats.
 */
final class CpuPipeline extends AbstractPipeline<StageShard> {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(CpuPipeline.class);
    private final CpuExecutor executor;
    private final float[][] stageInput;  // [stage][maxBatch * dim]: the residual stream entering each stage
    private final float[][][] parts;     // [stage][hosted shard]: the positions' partial outputs, in shard order
    private final float[] reduced;

    CpuPipeline(CpuExecutor executor, ShardLayout layout, List<CpuDevice> devices, int maxBatch) {
        this(executor, layout, new IndexRange(0, layout.stages()), devices, maxBatch);
    }

    /** A pipeline hosting the positions of {@code hosted} only, {@code devices} stage-major from its first stage. */
    CpuPipeline(CpuExecutor executor, ShardLayout layout, IndexRange hosted, List<CpuDevice> devices, int maxBatch) {
        this(executor, layout, hosted, new IndexRange(0, layout.shards()), devices, maxBatch);
    }

    /**
     * A pipeline hosting shards {@code group} of stages {@code hosted} only, {@code devices} stage-major from its first
     * position.
     */
    CpuPipeline(CpuExecutor executor, ShardLayout layout, IndexRange hosted, IndexRange group, List<CpuDevice> devices,
                int maxBatch) {
        super(layout, maxBatch, positions(executor, layout, hosted, group, devices, maxBatch),
                executor.options().weights());
        this.executor = executor;
        logFallbacks();
        stageInput = new float[layout.stages()][maxBatch * c.dim()];
        parts = new float[layout.stages()][][];
        for (int p = hosted.from(); p < hosted.to(); p++) {
            parts[p] = new float[shards[p].length][];
            for (int i = 0; i < shards[p].length; i++) {
                parts[p][i] = shards[p][i].part;
            }
        }
        reduced = new float[maxBatch * c.dim()];
    }

    private static StageShard[][] positions(CpuExecutor executor, ShardLayout layout, IndexRange hosted,
                                            IndexRange group, List<CpuDevice> devices, int maxBatch) {
        float[] rope = ropeTable(layout.config());
        StageShard[][] shards = new StageShard[layout.stages()][];
        for (int p = hosted.from(); p < hosted.to(); p++) {
            shards[p] = new StageShard[group.length()];
            for (int i = 0; i < group.length(); i++) {
                shards[p][i] = new StageShard(layout, p, group.from() + i,
                        devices.get((p - hosted.from()) * group.length() + i), executor.kernels(), executor.pool(),
                        rope, maxBatch, executor.packMinColumns(), executor.options().weights() == WeightPrecision.Q8_0);
            }
        }
        return shards;
    }

    /** One line per pipeline naming the matrices some positions keep fp32 under Q8_0 weights, and why. */
    private void logFallbacks() {
        if (weights != WeightPrecision.Q8_0) {
            return;
        }
        int[] count = new int[4];
        int vocabCount = 0;
        int positions = 0;
        for (StageShard[] stage : shards) {
            if (stage == null) {
                continue;
            }
            for (StageShard s : stage) {
                positions++;
                for (int m = 0; m < 4; m++) {
                    count[m] += s.q8(m) ? 0 : 1;
                }
                vocabCount += (s.first || s.last) && !s.q8Vocab() ? 1 : 0;
            }
        }
        StringBuilder b = new StringBuilder();
        for (int m = 0; m < 4; m++) {
            if (count[m] > 0) {
                b.append(b.length() == 0 ? "" : ", ").append(ShardWeights.MATRIX_LABELS[m]).append(" on ").append(count[m])
                        .append(" of ").append(positions).append(" positions");
            }
        }
        if (vocabCount > 0) {
            b.append(b.length() == 0 ? "" : ", ").append("embedding/classifier (dim ").append(c.dim()).append(")");
        }
        if (b.length() > 0) {
            LOG.info("{}: Q8_0 weights, but {} stay fp32: their shard's columns do not fall on whole 32-weight blocks "
                    + "(debug logging of {} names each position's columns)", layout, b, StageShard.class.getName());
        }
    }

    /** Position (stage, shard), for tests of its storage. */
    StageShard shard(int stage, int shard) {
        return position(stage, shard);
    }

    @Override
    protected void compute(long[] seqs, int[] tokens, int[] positions, int count, float[][] logits) {
        int dim = c.dim();
        float[] x = stageInput[0];
        for (int b = 0; b < count; b++) {
            for (StageShard s : shards[0]) {
                if (s.embed(tokens[b], x, b * dim)) {
                    break;
                }
            }
        }
        for (StageShard[] stage : shards) {
            for (StageShard s : stage) {
                s.bind(seqs, positions, count);
            }
        }
        int n = count * dim;
        for (int p = 0; p < shards.length; p++) {
            StageShard[] stage = shards[p];
            x = stageInput[p];
            int nl = stage[0].layers.length();
            for (int l = 0; l < nl; l++) {
                for (StageShard s : stage) {
                    s.attention(l, x);
                }
                allReduceAdd(parts[p], x, n);
                for (StageShard s : stage) {
                    s.ffn(l, x);
                }
                allReduceAdd(parts[p], x, n);
            }
            if (p + 1 < shards.length) {
                System.arraycopy(x, 0, stageInput[p + 1], 0, n); // activation hand-off to the next stage
            }
        }
        for (StageShard s : shards[shards.length - 1]) {
            s.logits(x, logits);
        }
    }

    @Override
    protected void computeStage(int stage, long[] seqs, int[] tokens, int[] positions, int count, float[] hidden,
                                float[][] logits) {
        stageStep(stage, seqs, tokens, positions, count, hidden, logits, null);
    }

    @Override
    protected void computeGroupStage(int stage, long[] seqs, int[] tokens, int[] positions, int count, float[] hidden,
                                     float[][] logits, GroupReduce reduce) {
        stageStep(stage, seqs, tokens, positions, count, hidden, logits, reduce);
    }

    /** One stage of a step; {@code reduce} is null when this pipeline holds every shard of the stage. */
    private void stageStep(int stage, long[] seqs, int[] tokens, int[] positions, int count, float[] hidden,
                           float[][] logits, GroupReduce reduce) {
        int dim = c.dim();
        int n = count * dim;
        StageShard[] shardsOfStage = shards[stage];
        float[] x = stageInput[stage];
        if (stage == 0 && reduce == null) {
            for (int b = 0; b < count; b++) {
                for (StageShard s : shardsOfStage) {
                    if (s.embed(tokens[b], x, b * dim)) {
                        break;
                    }
                }
            }
        } else if (stage == 0) {
            embedSplit(shardsOfStage, tokens, count, x, reduce);
        } else {
            System.arraycopy(hidden, 0, x, 0, n); // the activation hand-off from the previous stage's process
        }
        for (StageShard s : shardsOfStage) {
            s.bind(seqs, positions, count);
        }
        int first = shardsOfStage[0].layers.from();
        int nl = shardsOfStage[0].layers.length();
        for (int l = 0; l < nl; l++) {
            for (StageShard s : shardsOfStage) {
                s.attention(l, x);
            }
            reduceAdd(stage, first + l, TensorReducer.Kind.ATTENTION, x, n, reduce);
            for (StageShard s : shardsOfStage) {
                s.ffn(l, x);
            }
            reduceAdd(stage, first + l, TensorReducer.Kind.FFN, x, n, reduce);
        }
        if (stage + 1 < shards.length) {
            System.arraycopy(x, 0, hidden, 0, n);
        } else {
            for (StageShard s : shardsOfStage) {
                s.logits(x, logits); // a split group fills its shards' vocabulary columns only
            }
        }
        if (stage + 1 == hosted.to() && partial()) {
            // this process's part of the step is over and the rest of it runs in other processes (on the same
            // machine, maybe): the helpers park now instead of spinning on a core the next stage's process needs
            executor.pool().rest();
        }
    }

    /**
     * The embedding of a split group: each hosted shard puts the rows of the tokens it holds into its partial and
     * -0.0f (the exact identity of float addition) elsewhere; the sum over all shards is then every entry's row.
     */
    private void embedSplit(StageShard[] group, int[] tokens, int count, float[] x, GroupReduce reduce) {
        int dim = c.dim();
        for (StageShard s : group) {
            for (int b = 0; b < count; b++) {
                if (!s.embed(tokens[b], s.part, b * dim)) {
                    Arrays.fill(s.part, b * dim, (b + 1) * dim, -0.0f);
                }
            }
        }
        float[] sum = reduce.allReduce(new TensorReducer.Point(0, -1, TensorReducer.Kind.EMBEDDING), parts[0]);
        System.arraycopy(sum, 0, x, 0, count * dim);
    }

    /** Adds the sum of the stage's partials to x: in-process, or through the caller's reducer for a split group. */
    private void reduceAdd(int stage, int layer, TensorReducer.Kind kind, float[] x, int n, GroupReduce reduce) {
        if (reduce == null) {
            allReduceAdd(parts[stage], x, n);
            return;
        }
        float[] sum = reduce.allReduce(new TensorReducer.Point(stage, layer, kind), parts[stage]);
        for (int i = 0; i < n; i++) {
            x[i] += sum[i];
        }
    }

    /** Sums the shards' partial outputs in shard order (the tensor-parallel all-reduce), adds them to x. */
    private void allReduceAdd(float[][] stage, float[] x, int n) {
        if (stage.length == 1) {
            float[] p0 = stage[0];
            for (int i = 0; i < n; i++) {
                x[i] += p0[i];
            }
            return;
        }
        System.arraycopy(stage[0], 0, reduced, 0, n);
        for (int m = 1; m < stage.length; m++) {
            float[] pm = stage[m];
            for (int i = 0; i < n; i++) {
                reduced[i] += pm[i];
            }
        }
        for (int i = 0; i < n; i++) {
            x[i] += reduced[i];
        }
    }

    @Override
    protected void onClose() {
        executor.closed(this);
    }

    @Override
    public String toString() {
        return "CpuPipeline[" + layout + ", " + executor.name() + "]";
    }
}
