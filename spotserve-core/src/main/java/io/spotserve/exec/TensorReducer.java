package io.spotserve.exec;

import java.util.Objects;

/**
 * The all-reduce of a tensor group split over several pipelines (SpotServe §2: a group inside one worker reduces
 * in-process, across workers over the network). A pipeline from {@link Executor#createShardGroup} hosts only some of
 * the M shards of its stages; at every reduce point of a {@link Pipeline#forwardStage(int, long[], int[], int[], int,
 * float[], float[][], TensorReducer) stage step} it hands its shards' partial outputs to this reducer, which the
 * caller implements (threads in one process, messages between worker processes), and adds the returned sum to its
 * residual stream. Every group of the stage calls the same points in the same order, so an implementation matches
 * calls by {@link Point} (plus its own step id).
 *
 * <p>The sum must be over all M shards in global shard order, {@code ((P0 + P1) + P2) + ... + P(M-1)} element by
 * element in float, exactly as a pipeline holding the whole group sums in-process: then every group ends the step
 * with the residual stream bit-identical to the one-process pipeline's. {@link #addInShardOrder} does it; a chain
 * (group 0 sends its prefix sum to group 1, which adds its own partials, ...) gives the same floats, since each
 * group's partials continue the prefix of the groups before it.
 *
 * <p>At the {@link Kind#EMBEDDING} point of stage 0 a shard's partial holds, for each entry whose token falls in its
 * vocabulary rows, that embedding row, and {@code -0.0f} elsewhere: {@code -0.0f} is the exact identity of float
 * addition, so the sum is the row itself, bit for bit.
 *
 * <p>Data, not callbacks into the pipeline: a point is three small values and the partials are plain float arrays,
 * so an implementation can serialise them as they come.
 */
@FunctionalInterface
public interface TensorReducer {
    /** What a reduce point sums. */
    enum Kind {
        /** Stage 0 only, before the first layer: the embedding rows of the entries' tokens. */
        EMBEDDING,
        /** The partial attention outputs (wo) of a layer. */
        ATTENTION,
        /** The partial FFN outputs (w2) of a layer. */
        FFN
    }

    /**
     * One reduce point of a stage step: at {@code layer} (global index; -1 for {@link Kind#EMBEDDING}) of
     * {@code stage}. A stage step calls, in order: the embedding (stage 0 only), then per layer of the stage its
     * attention and its FFN.
     */
    record Point(int stage, int layer, Kind kind) {
        /** @throws IllegalArgumentException if the layer is negative for a layer point or not -1 for the embedding */
        public Point {
            Objects.requireNonNull(kind, "kind");
            if (stage < 0 || (kind == Kind.EMBEDDING ? layer != -1 : layer < 0)) {
                throw new IllegalArgumentException("bad reduce point: stage " + stage + ", layer " + layer + ", " + kind);
            }
        }

        @Override
        public String toString() {
            return kind == Kind.EMBEDDING ? "stage " + stage + " embedding" : "stage " + stage + " layer " + layer + " "
                    + kind.name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /**
     * Sums the partial outputs of every shard of the group at {@code point}.
     *
     * @param point    where in the stage step this is
     * @param shards   the global shards whose partials are given: {@code partials[i]} belongs to shard
     *                 {@code shards.from() + i}
     * @param partials this pipeline's partials, in shard order; each holds {@code n} valid floats first (entry-major,
     *                 {@code count × dim}). Valid only until this call returns: the pipeline overwrites them at its
     *                 next point, so an implementation copies what it keeps
     * @param n        floats per partial
     * @return at least {@code n} floats, the first {@code n} the sum over all M shards in global shard order; the
     *         pipeline reads them at once and never keeps or writes the array (a reused buffer is fine)
     */
    float[] allReduce(Point point, IndexRange shards, float[][] partials, int n);

    /**
     * Adds the first {@code n} floats of {@code partials} to {@code acc} one partial after the other, in array order:
     * {@code acc[i] = ((acc[i] + partials[0][i]) + partials[1][i]) + ...}. With {@code acc} a copy of shard 0's
     * partial and {@code partials} the others in shard order, that is the exact sum {@link #allReduce} returns.
     */
    static void addInShardOrder(float[] acc, float[][] partials, int n) {
        for (float[] p : partials) {
            for (int i = 0; i < n; i++) {
                acc[i] += p[i];
            }
        }
    }
}
