package io.spotserve.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.StagedSlice;
import io.spotserve.exec.WeightSource;

/**
 * The one place where context (weight and KV slices) leaves or enters a pipeline's devices during a
 * reconfiguration, a cold start or KV parking: {@link ContextMigration} and {@link KvParking} decide what moves
 * where, this class carries the bytes. Migration moves are {@link #stage staged} at the source pipeline and
 * {@link #place(Pipeline, int, int, StagedSlice) placed} at the target: the in-process executors stage in the
 * engine's host memory, remote workers keep the staged bytes on the source worker and stream them to the target
 * worker directly. Parked KV caches are {@link #export exported} into the engine's memory on purpose: they must
 * outlive the instances they leave.
 */
final class SliceMover {
    private final WeightSource weights;

    SliceMover(WeightSource weights) {
        this.weights = weights;
    }

    /** Copies slice {@code s} out of position (stage, shard) of {@code from}, in the executor's slice format. */
    byte[] export(Pipeline from, int stage, int shard, ContextSlice s) {
        return from.exportSlice(stage, shard, s);
    }

    /**
     * Stages slice {@code s} of position (stage, shard) of {@code from} for a later
     * {@link #place(Pipeline, int, int, StagedSlice)}.
     */
    StagedSlice stage(Pipeline from, int stage, int shard, ContextSlice s) {
        return from.stageSlice(stage, shard, s);
    }

    /**
     * Imports a staged slice at (stage, shard) of {@code to} and releases it, imported or not (a staged slice is
     * released exactly once: {@link StagedSlice#release} does nothing the second time).
     */
    void place(Pipeline to, int stage, int shard, StagedSlice staged) {
        try {
            to.importStaged(stage, shard, staged);
        } finally {
            staged.release();
        }
    }

    /**
     * Weight slice {@code s} from the weight source: a checkpoint is read by whoever imports it (a remote worker that
     * can read the file loads it there), any other source encodes it into host memory now.
     */
    StagedSlice readStaged(ContextSlice s) {
        if (weights instanceof WeightSource.CheckpointWeights cw) {
            return StagedSlice.fromCheckpoint(cw.checkpoint(), s);
        }
        return StagedSlice.held(s, read(s));
    }

    /** Places bytes {@link #export exported} from some pipeline (or {@link #read read}) at (stage, shard) of {@code to}. */
    void place(Pipeline to, int stage, int shard, byte[] data) {
        to.importSlice(stage, shard, data);
    }

    /** Reads weight slice {@code s} from the model's weight source (the checkpoint): the path when no holder survives. */
    byte[] read(ContextSlice s) {
        return weights.encode(s);
    }

    /** Cold start of a pipeline: from the checkpoint directly when there is one, else slice by slice from the source. */
    void loadAll(Pipeline p) {
        if (weights instanceof WeightSource.CheckpointWeights cw) {
            p.loadWeights(cw.checkpoint());
            return;
        }
        var l = p.layout();
        for (int st = 0; st < l.stages(); st++) {
            for (int m = 0; m < l.shards(); m++) {
                for (ContextSlice w : l.weightSlices(st, m)) {
                    place(p, st, m, read(w));
                }
            }
        }
    }
}
