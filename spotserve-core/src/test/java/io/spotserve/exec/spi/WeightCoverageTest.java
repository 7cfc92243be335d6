package io.spotserve.exec.spi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.LlamaConfig;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * WeightCoverage against a brute-force oracle: a set of per-element atoms (one per norm block, query head,
 * hidden unit, vocabulary row and final norm) updated by seeded random piecewise imports and unit releases,
 * as context migration delivers them.
 */
class WeightCoverageTest {
    /** stories260K's shape (dim 64, hidden 172, 5 layers, 8 heads, 4 KV heads, vocab 512). */
    private static final LlamaConfig STORIES = new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true);

    @Test
    void piecewiseImportsAndReleasesMatchTheOracle() {
        for (int[] pm : new int[][] {{1, 1}, {1, 2}, {5, 4}}) {
            ShardLayout layout = ShardLayout.of(STORIES, pm[0], pm[1]);
            for (int stage = 0; stage < layout.stages(); stage++) {
                for (int shard = 0; shard < layout.shards(); shard++) {
                    check(layout, stage, shard, new Random(31L * stage + shard + 7L * pm[1]));
                }
            }
        }
    }

    private static void check(ShardLayout layout, int stage, int shard, Random rnd) {
        WeightCoverage cov = new WeightCoverage(layout, stage, shard);
        Set<String> have = new HashSet<>();
        List<ContextSlice> units = layout.weightSlices(stage, shard);
        assertFalse(cov.complete(), "nothing given yet");
        for (int step = 0; step < 300; step++) {
            ContextSlice unit = units.get(rnd.nextInt(units.size()));
            if (rnd.nextInt(5) == 0) {
                cov.unmark(unit);
                have.removeAll(atoms(unit));
            } else {
                ContextSlice piece = piece(unit, rnd);
                assertTrue(cov.owns(piece, -1), piece + " is owned by its position");
                cov.mark(piece);
                have.addAll(atoms(piece));
            }
            for (int probe = 0; probe < 5; probe++) {
                ContextSlice q = piece(units.get(rnd.nextInt(units.size())), rnd);
                assertEquals(have.containsAll(atoms(q)), cov.holds(q, -1, 0), q + " after step " + step);
            }
            boolean all = true;
            for (ContextSlice u : units) {
                all &= have.containsAll(atoms(u));
            }
            assertEquals(all, cov.complete(), "complete after step " + step);
            assertEquals(anyWith(have, "emb"), cov.anyEmbedding());
            assertEquals(anyWith(have, "cls"), cov.anyClassifier());
        }
        for (ContextSlice u : units) {
            cov.mark(u);
        }
        assertTrue(cov.complete());
        cov.clear();
        assertFalse(cov.complete());
        for (ContextSlice u : units) {
            assertFalse(cov.holds(u, -1, 0), u + " after clear");
        }
    }

    @Test
    void ownershipFollowsTheLayoutAndKvCapacity() {
        ShardLayout layout = ShardLayout.of(STORIES, 5, 2); // stage 1 = layer 1; shard 1 = heads [4,8), kv [2,4)
        WeightCoverage cov = new WeightCoverage(layout, 1, 1);
        assertTrue(cov.owns(new ContextSlice.LayerWeights(1, IndexRange.of(5, 7), IndexRange.of(90, 100)), -1));
        assertFalse(cov.owns(new ContextSlice.LayerWeights(0, IndexRange.of(5, 7), IndexRange.of(90, 100)), -1));
        assertFalse(cov.owns(new ContextSlice.LayerWeights(1, IndexRange.of(3, 5), IndexRange.of(90, 100)), -1));
        assertFalse(cov.owns(new ContextSlice.Embedding(IndexRange.of(256, 300)), -1), "not the first stage");
        assertFalse(cov.owns(new ContextSlice.FinalNorm(), -1), "not the last stage");
        ContextSlice kv = new ContextSlice.KvCache(9, 1, IndexRange.of(2, 4), 10);
        assertFalse(cov.owns(kv, -1), "sequence not open here");
        assertFalse(cov.owns(kv, 9), "longer than the capacity");
        assertTrue(cov.owns(kv, 10));
        assertFalse(cov.owns(new ContextSlice.KvCache(9, 1, IndexRange.of(1, 3), 10), 10));
        assertTrue(cov.holds(kv, 10, 10));
        assertFalse(cov.holds(kv, 10, 9), "only 9 positions filled");
    }

    @Test
    void embeddingAndClassifierShareRowsOnlyOnASingleStageWithASharedClassifier() {
        WeightCoverage middle = new WeightCoverage(ShardLayout.of(STORIES, 5, 2), 1, 1);
        assertEquals(1, middle.stage());
        assertEquals(1, middle.shard());
        assertFalse(middle.first() || middle.last() || middle.aliasClassifier());
        assertTrue(new WeightCoverage(ShardLayout.of(STORIES, 1, 2), 0, 1).aliasClassifier());
        assertFalse(new WeightCoverage(ShardLayout.of(STORIES, 5, 1), 4, 0).aliasClassifier(), "last stage only");
        LlamaConfig separate = new LlamaConfig(64, 172, 5, 8, 4, 512, 512, false);
        assertFalse(new WeightCoverage(ShardLayout.of(separate, 1, 1), 0, 0).aliasClassifier());
    }

    /** A random non-empty part of a weight unit (whole units for the final norm). */
    private static ContextSlice piece(ContextSlice unit, Random rnd) {
        if (unit instanceof ContextSlice.Embedding e) {
            return new ContextSlice.Embedding(sub(e.vocab(), rnd));
        } else if (unit instanceof ContextSlice.Classifier k) {
            return new ContextSlice.Classifier(sub(k.vocab(), rnd));
        } else if (unit instanceof ContextSlice.LayerWeights w) {
            return new ContextSlice.LayerWeights(w.layer(), sub(w.heads(), rnd), sub(w.hidden(), rnd));
        }
        return unit;
    }

    private static IndexRange sub(IndexRange r, Random rnd) {
        int a = r.from() + rnd.nextInt(r.length());
        int b = r.from() + rnd.nextInt(r.length());
        return IndexRange.of(Math.min(a, b), Math.max(a, b) + 1);
    }

    /** The atoms a slice covers (a layer slice always brings its layer's norm block). */
    private static Set<String> atoms(ContextSlice s) {
        Set<String> out = new HashSet<>();
        if (s instanceof ContextSlice.Embedding e) {
            for (int v = e.vocab().from(); v < e.vocab().to(); v++) {
                out.add("emb" + v);
            }
        } else if (s instanceof ContextSlice.Classifier k) {
            for (int v = k.vocab().from(); v < k.vocab().to(); v++) {
                out.add("cls" + v);
            }
        } else if (s instanceof ContextSlice.FinalNorm) {
            out.add("norm");
        } else if (s instanceof ContextSlice.LayerWeights w) {
            out.add("rms" + w.layer());
            for (int h = w.heads().from(); h < w.heads().to(); h++) {
                out.add("head" + w.layer() + "/" + h);
            }
            for (int f = w.hidden().from(); f < w.hidden().to(); f++) {
                out.add("hid" + w.layer() + "/" + f);
            }
        }
        return out;
    }

    private static boolean anyWith(Set<String> have, String prefix) {
        return have.stream().anyMatch(a -> a.startsWith(prefix));
    }
}
