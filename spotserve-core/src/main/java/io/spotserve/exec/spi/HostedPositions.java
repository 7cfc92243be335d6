package io.spotserve.exec.spi;

import io.spotserve.exec.IndexRange;
import io.spotserve.exec.ShardLayout;

/**
 * Which positions an {@link AbstractPipeline} hosts, read off its [stage][shard] array: a contiguous range of stages
 * (null rows elsewhere) and, on each of them, the same contiguous range of shards.
 */
final class HostedPositions {
    private HostedPositions() {
    }

    /** The stages with a row in {@code shards}. */
    static IndexRange stages(Object[][] shards) {
        int from = 0;
        while (from < shards.length && shards[from] == null) {
            from++;
        }
        int to = from;
        while (to < shards.length && shards[to] != null) {
            to++;
        }
        for (int p = to; p < shards.length; p++) {
            if (shards[p] != null) {
                throw new IllegalArgumentException("hosted stages must be contiguous; stage " + p + " follows a gap at "
                        + to);
            }
        }
        if (from == to) {
            throw new IllegalArgumentException("a pipeline must host at least one stage");
        }
        return new IndexRange(from, to);
    }

    /** The shard range of the rows of {@code shards}: the same contiguous range on every hosted stage. */
    static IndexRange shards(ShardLayout layout, IndexRange hosted, PipelinePosition[][] shards) {
        PipelinePosition[] row = shards[hosted.from()];
        if (row.length == 0) {
            throw new IllegalArgumentException("a pipeline must host at least one shard of each hosted stage");
        }
        IndexRange range = new IndexRange(row[0].shard(), row[0].shard() + row.length);
        if (range.to() > layout.shards()) {
            throw new IllegalArgumentException("hosted shards " + range + " outside [0, " + layout.shards() + ")");
        }
        for (int p = hosted.from(); p < hosted.to(); p++) {
            for (int i = 0; i < range.length(); i++) {
                if (shards[p].length != range.length() || shards[p][i].stage() != p
                        || shards[p][i].shard() != range.from() + i) {
                    throw new IllegalArgumentException("stage " + p + " must host positions of shards " + range
                            + " in shard order, like stage " + hosted.from());
                }
            }
        }
        return range;
    }
}
