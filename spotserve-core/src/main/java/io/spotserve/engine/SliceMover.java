package io.spotserve.engine;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.WeightSource;

/**
 * The one place where context (weight and KV slices) leaves or enters a pipeline's devices during a
 * reconfiguration, a cold start or KV parking: {@link ContextMigration} and {@link KvParking} decide what moves
 * where, this class carries the bytes. Today every move is staged in the engine's host memory; a deployment with
 * remote workers can replace these methods with worker-to-worker transfers without touching the planning code.
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
