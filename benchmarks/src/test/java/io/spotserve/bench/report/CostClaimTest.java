package io.spotserve.bench.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.bench.report.Analysis.CostComparison;
import io.spotserve.bench.report.Analysis.CostPoint;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CostClaimTest {

    @Test
    void theEqualInstanceHoursBoundIsOneMinusThePriceRatio() {
        assertEquals(2.0 / 3.9, CostClaim.equalInstanceHoursBound(1.9, 3.9), 1e-15);
        assertEquals(0.5128, CostClaim.equalInstanceHoursBound(), 1e-4, "the evaluation's g4dn.12xlarge prices");
        // the artifact's script prices (1.9046 / 3.912) give the same 51.3 %
        assertEquals(0.5131, CostClaim.equalInstanceHoursBound(1.9046, 3.912), 1e-4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CostClaim.equalInstanceHoursBound(0, 3.9));
        assertTrue(e.getMessage().contains("prices must be > 0"), e.getMessage());
    }

    /**
     * The artifact's tradeoff_plot.py: {@code nnode * 3.912 * (18/60) / (nrequests * 640)} USD per token, average
     * latency {@code += -4.5}, P99 {@code += 2 * -4.5}. Same formula with our price and tokens, by hand.
     */
    @Test
    void anOnDemandFleetIsBilledEighteenMinutesAndItsLatenciesShiftedDown() {
        CostPoint od8 = new CostPoint("B_S", "ondemand-8", 3.320312e-4, 23.673, 40.803);
        CostPoint art = CostClaim.artifactOnDemand(od8, 8, 208, 3.9, 128);
        assertEquals(8 * 3.9 * 0.3 / (208 * 128.0), art.usdPerToken(), 1e-18);
        assertEquals(3.515625e-4, art.usdPerToken(), 1e-10);
        assertEquals(19.173, art.avg(), 1e-12);
        assertEquals(31.803, art.p99(), 1e-12);
        assertEquals("ondemand-8", art.system());
        // against our own bill of the same fleet over the 1,020 s trace: exactly 18 min / 17 min more
        double ours = 8 * 3.9 * 1020 / 3600 / (208 * 128.0);
        assertEquals(1080.0 / 1020, art.usdPerToken() / ours, 1e-12);
        // the artifact's own numbers: 640 tokens per request and 3.912 USD/h
        assertEquals(8 * 3.912 * (18 / 60.0) / (300 * 640.0),
                CostClaim.artifactOnDemand(od8, 8, 300, 3.912, 640).usdPerToken(), 1e-18);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CostClaim.artifactOnDemand(od8, 8, 0, 3.9, 128));
        assertTrue(e.getMessage().contains("ondemand-8") && e.getMessage().contains("completed"), e.getMessage());
    }

    @Test
    void theComparableFleetIsTheDearestWithinEighteenPercentElseTheClosest() {
        CostPoint od6 = new CostPoint("B_S", "ondemand-6", 2.490234e-4, 28.493, 51.216);
        CostPoint od8 = new CostPoint("B_S", "ondemand-8", 3.320312e-4, 23.673, 40.803);
        CostPoint engine = new CostPoint("B_S", "spotserve-engine", 1.581906e-4, 22.259, 45.722);
        CostComparison c = CostClaim.compare(engine, List.of(od6, od8));
        assertEquals(od8, c.onDemand());
        assertEquals(1 - 1.581906e-4 / 3.320312e-4, c.costCut(), 1e-12);
        assertEquals(22.259 / 23.673 - 1, c.avgRise(), 1e-12);
        assertEquals(1 - 45.722 / 40.803, c.p99Cut(), 1e-12);
        assertTrue(c.withinLatency());
        assertFalse(c.met(), "52.4 % < 54 %");
        // 26.815 s is 13.3 % above ondemand-8's 23.673 s: still within +18 %
        CostPoint sim = new CostPoint("B_S", "spotserve", 1.581906e-4, 26.815, 42.504);
        assertEquals(od8, CostClaim.compare(sim, List.of(od6, od8)).onDemand());
        // slower than 1.18 x every fleet: the closest in average latency, never met
        CostPoint slow = new CostPoint("B_S", "spotserve", 1e-5, 40.0, 80.0);
        CostComparison s = CostClaim.compare(slow, List.of(od6, od8));
        assertEquals(od6, s.onDemand());
        assertFalse(s.withinLatency());
        assertFalse(s.met(), "90 % cheaper but too slow");
        assertNull(CostClaim.compare(engine, List.of()).onDemand());
    }

    /**
     * The committed B_S numbers (and an A_S copy, dearer) under both accountings through summary.csv: ours 52.4 % below
     * ondemand-8 (1.1 points above the 51.3 % bound, not the paper's 54 %); the artifact's: the engine's 22.26 s is
     * +16.1 % against ondemand-8's shifted 19.17 s, 55.0 % cheaper than its 18-minute bill — met; the simulated
     * spotserve's 26.8 s is +39.9 % there, so its fleet becomes ondemand-6 (shifted 23.99 s) and its cut 40.0 %.
     */
    @Test
    void bothAccountingsFromSummaryCsv(@TempDir Path tmp) throws Exception {
        ResultsFixture f = new ResultsFixture(tmp);
        for (String trace : List.of("B_S", "A_S")) {
            String dearer = trace.equals("B_S") ? "1.581906e-04" : "1.7e-04";
            f.summaryLine("GPT-20B," + trace + ",spotserve,26.812,40.802,42.504,26.815," + dearer + ",208,208")
                    .summaryLine("GPT-20B," + trace + ",ondemand-6,27.928,42.019,51.216,28.493,2.490234e-04,208,208")
                    .summaryLine("GPT-20B," + trace + ",ondemand-8,22.489,35.442,40.803,23.673,3.320312e-04,208,208")
                    .summaryLine("GPT-20B," + trace + ",spotserve-engine,18.512,33.330,45.722,22.259," + dearer
                            + ",208,208");
        }
        Analysis a = new Analysis(Results.load(f.write()));
        List<CostClaim.Row> rows = CostClaim.rows(a, List.of("spotserve", "spotserve-engine"));
        assertEquals(4, rows.size(), rows.toString());
        CostClaim.Row engine = rows.stream().filter(r -> r.trace().equals("B_S") && r.subject().equals("spotserve-engine"))
                .findFirst().orElseThrow();
        assertEquals(0.5236, engine.ours().costCut(), 1e-4);
        assertEquals("ondemand-8", engine.artifact().onDemand().system());
        assertEquals(22.259 / 19.173 - 1, engine.artifact().avgRise(), 1e-12);
        assertEquals(1 - 1.581906e-4 / 3.515625e-4, engine.artifact().costCut(), 1e-9);
        assertTrue(engine.artifact().met());
        CostClaim.Row sim = rows.stream().filter(r -> r.trace().equals("B_S") && r.subject().equals("spotserve"))
                .findFirst().orElseThrow();
        assertEquals("ondemand-6", sim.artifact().onDemand().system());
        assertEquals(1 - 1.581906e-4 / (6 * 3.9 * 0.3 / (208 * 128.0)), sim.artifact().costCut(), 1e-9);
        assertFalse(sim.artifact().met());

        String md = String.join("\n", CostClaim.markdown(a, List.of("spotserve", "spotserve-engine")));
        assertTrue(md.contains("- Ours: best 52.4% cheaper at -6.0% average latency (spotserve-engine B_S vs ondemand-8)"
                + " — 1.1 points above the 51.3% equal-instance-hours bound; the paper's 54% at <= +18%: **NOT MET**"), md);
        assertTrue(md.contains("- With the artifact's accounting (not ours): best 55.0% cheaper at +16.1% average latency"
                + " (spotserve-engine B_S vs ondemand-8); the paper's 54% at <= +18%: **MET** (1 of 4 rows)"), md);
    }
}
