package io.spotserve.exec.spi;

import io.spotserve.exec.IndexRange;
import io.spotserve.exec.TensorReducer;

/**
 * One stage step's view of the caller's {@link TensorReducer}, for backends of a split tensor group
 * ({@link AbstractPipeline#computeGroupStage}): it passes the group's partials with the hosted shard range and checks
 * what comes back, so a backend only sums and adds.
 */
public final class GroupReduce {
    private final TensorReducer reducer;
    private final IndexRange shards;
    private final int n;

    GroupReduce(TensorReducer reducer, IndexRange shards, int n) {
        this.reducer = reducer;
        this.shards = shards;
        this.n = n;
    }

    /** Floats per partial in this step ({@code count × dim}). */
    public int floats() {
        return n;
    }

    /**
     * The sum over all M shards at {@code point}; {@code partials} are this group's, in shard order.
     *
     * @throws IllegalArgumentException if the reducer returns null or fewer than {@link #floats()} floats
     */
    public float[] allReduce(TensorReducer.Point point, float[][] partials) {
        float[] sum = reducer.allReduce(point, shards, partials, n);
        if (sum == null || sum.length < n) {
            throw new IllegalArgumentException("the tensor reducer returned " + (sum == null ? "null" : sum.length
                    + " floats") + " at " + point + " for shards " + shards + ", expected at least count x dim = " + n);
        }
        return sum;
    }
}
