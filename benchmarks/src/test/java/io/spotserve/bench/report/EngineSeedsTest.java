package io.spotserve.bench.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.bench.report.Results.Cell;
import io.spotserve.bench.report.Results.Summary;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class EngineSeedsTest {
    private static final Cell A = new Cell("GPT-20B", "A_S");
    private static final Cell B = new Cell("GPT-20B", "B_S");

    private static Map<String, Summary> cell(Cell c, double eng, double rer, double rep) {
        Map<String, Summary> m = new LinkedHashMap<>();
        m.put("spotserve-engine", new Summary(c.model(), c.trace(), "spotserve-engine", 0, 0, eng, 1, 1, 1, 1));
        m.put("rerouting-engine", new Summary(c.model(), c.trace(), "rerouting-engine", 0, 0, rer, 1, 1, 1, 1));
        m.put("reparallelization-engine",
                new Summary(c.model(), c.trace(), "reparallelization-engine", 0, 0, rep, 1, 1, 1, 1));
        return m;
    }

    @Test
    void perSeedCountsGeometricMeansAndTheWorstCell() {
        Map<Long, Map<Cell, Map<String, Summary>>> seeds = new LinkedHashMap<>();
        // seed 1: A 12 vs 15 / 18 (1.25, 1.5), B 10 vs 9 / 20 (0.9, 2.0)
        seeds.put(1L, Map.of(A, cell(A, 12, 15, 18), B, cell(B, 10, 9, 20)));
        // seed 2: A 10 vs 12 / 14 (1.2, 1.4), B 10 vs 12 / 14: all targets met
        seeds.put(2L, Map.of(A, cell(A, 10, 12, 14), B, cell(B, 10, 12, 14)));
        // seed 3: no engine rows at all
        seeds.put(3L, Map.of(A, Map.of()));
        List<EngineSeeds.Seed> got = EngineSeeds.perSeed(seeds, List.of(A, B));
        assertEquals(2, got.size());
        EngineSeeds.Seed s1 = got.get(0);
        assertEquals(1L, s1.seed());
        assertEquals(2, s1.cells());
        assertEquals(1, s1.belowBoth());
        assertEquals(Math.sqrt(1.25 * 0.9), s1.geoRerouting(), 1e-12);
        assertEquals(Math.sqrt(1.5 * 2.0), s1.geoReparallelization(), 1e-12);
        assertEquals(0.9, s1.worstCell(), 1e-12);
        assertFalse(s1.targetsMet(), "a cell at 0.90x");
        EngineSeeds.Seed s2 = got.get(1);
        assertEquals(1.2, s2.geoRerouting(), 1e-12);
        assertEquals(1.4, s2.geoReparallelization(), 1e-12);
        assertTrue(s2.targetsMet());
        String line = EngineSeeds.sentence(seeds, List.of(A, B));
        assertTrue(line.startsWith("Engine against the baselines built into it (rer-e/eng, rep-e/eng), 2 seeds: "
                + "below both in every cell in 1;"), line);
        assertTrue(line.contains("met in 1 of 2 seeds"), line);
        assertEquals(1.5, EngineSeeds.median(new double[] {2, 1}), 0);
        assertEquals(2, EngineSeeds.median(new double[] {3, 1, 2}), 0);
    }
}
