package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The PAPER policy on the real T4 profiles, checked against a brute force over every (P, M, B, M1, M2, D). */
class PaperPolicyTest {
    private static final double TOL = 0.05;

    static List<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        double[][] rates = {{0, 1.5, 3.0, 40}, {0, 0.35, 0.8, 5}, {0, 0.2, 0.45, 5}};
        PaperModel[] models = {PaperModel.OPT_6_7B, PaperModel.GPT_20B, PaperModel.LLAMA_30B};
        for (int i = 0; i < models.length; i++) {
            for (int n : new int[] {3, 5, 8, 12}) {
                for (double rate : rates[i]) {
                    for (int extra : new int[] {0, 6}) {
                        for (MemoryRule rule : MemoryRule.values()) {
                            out.add(Arguments.of(models[i], n, rate, extra, rule));
                        }
                    }
                }
            }
        }
        return out;
    }

    /** One row of the brute force. */
    private record Row(ParallelConfig c, double lexe, double lreq, double tpt, int instances) {
    }

    private static List<Row> bruteForce(CostModel cm, MemoryRule rule, int gpus, double rate, boolean fixedD) {
        List<Row> rows = new ArrayList<>();
        LatencyProfile p = cm.profile();
        for (int m = 1; m <= p.maxTensorParallel(); m *= 2) {
            for (int b = 1; b <= 4; b *= 2) {
                for (int m1 = 1; m1 <= b; m1 *= 2) {
                    for (int m2 = 1; m2 <= b; m2 *= 2) {
                        for (int stages = 1; stages * m <= gpus; stages++) {
                            if (p.paddedLayerNum() % stages != 0 || !cm.fits(rule, stages, m, b, 512, 128)) {
                                continue;
                            }
                            double lexe = cm.executionSeconds(stages, m, b, m1, m2, 512, 128);
                            int dMax = gpus / (stages * m);
                            for (int d = fixedD ? dMax : 1; d <= dMax; d++) {
                                double lreq = lexe + QueueingDelay.waitSeconds(rate, lexe, (long) d * b, 1.0);
                                rows.add(new Row(ParallelConfig.of(d, stages, m, b), lexe, lreq, d * b / lexe,
                                        (d * stages * m + 3) / 4));
                            }
                        }
                    }
                }
            }
        }
        return rows;
    }

    @ParameterizedTest(name = "{0} N={1} rate={2} acquirable={3} {4}")
    @MethodSource("cases")
    void agreesWithBruteForce(PaperModel model, int n, double rate, int extra, MemoryRule rule) {
        CostModel cm = Profiles.model(model);
        Decision d = ParallelConfigOptimizer.builder(cm).memoryRule(rule).acquirableInstances(extra)
                .latencyTolerance(TOL).build().decide(n, rate);
        List<Row> all = bruteForce(cm, rule, (n + extra) * 4, rate, false);
        double best = all.stream().filter(r -> r.tpt > rate || rate == 0).mapToDouble(Row::lreq).min()
                .orElse(Double.POSITIVE_INFINITY);
        if (best < Double.POSITIVE_INFINITY) {
            assertTrue(d.meetsArrivalRate(), d.reason());
            double bound = best * (1 + TOL);
            int fewest = all.stream().filter(r -> r.lreq <= bound).mapToInt(Row::instances).min().orElseThrow();
            double bestAtFewest = all.stream().filter(r -> r.lreq <= bound && r.instances == fewest)
                    .mapToDouble(Row::lreq).min().orElseThrow();
            ConfigEstimate e = d.choice().orElseThrow();
            assertEquals(fewest, d.instancesNeeded(), e.toString());
            assertEquals(bestAtFewest, e.requestLatencySeconds(), 1e-9, e.toString());
            assertTrue(e.requestLatencySeconds() <= bound);
            assertTrue(e.throughputRps() > rate || rate == 0);
            assertEquals(cm.executionSeconds(e.config().pipelineStages(), e.config().tensorShards(),
                    e.config().maxBatch(), e.prefillMicroBatches(), e.decodeMicroBatches(), 512, 128),
                    e.executionSeconds(), 1e-12);
            assertTrue(d.instancesNeeded() <= n + extra);
            assertEquals(d.instancesNeeded() - n, d.delta());
            return;
        }
        // line 5: max throughput on the N_t instances available now
        List<Row> now = bruteForce(cm, rule, n * 4, rate, true);
        if (now.isEmpty()) {
            assertTrue(d.choice().isEmpty(), d.toString());
            return;
        }
        double maxTpt = now.stream().mapToDouble(Row::tpt).max().orElseThrow();
        assertFalse(d.meetsArrivalRate(), d.reason());
        assertEquals(maxTpt, d.choice().orElseThrow().throughputRps(), 1e-12);
        assertTrue(d.instancesNeeded() <= n);
    }

    @Test
    void withoutLoadItTakesTheFewestInstancesAmongSimilarLatencies() {
        CostModel cm = Profiles.model(PaperModel.GPT_20B);
        Decision d = ParallelConfigOptimizer.builder(cm).build().decide(12, 0);
        ConfigEstimate e = d.choice().orElseThrow();
        assertEquals(1, e.config().dataParallel());
        assertEquals(0, e.schedulingSeconds());
        // the artifact, by contrast, spreads the same shape over every GPU
        Decision a = ParallelConfigOptimizer.builder(cm).policy(ParallelConfigOptimizer.Policy.ARTIFACT).build()
                .decide(12, 0);
        assertTrue(a.config().gpus() > e.config().gpus(), a + " vs " + d);
        assertTrue(d.delta() < 0);
        // with zero tolerance the minimum-latency configuration wins outright
        Decision strict = ParallelConfigOptimizer.builder(cm).latencyTolerance(0).build().decide(12, 0);
        assertTrue(strict.choice().orElseThrow().executionSeconds() <= e.executionSeconds());
    }

    @Test
    void queueingPushesTowardsMorePipelinesAsTheRateGrows() {
        CostModel cm = Profiles.model(PaperModel.GPT_20B);
        ParallelConfigOptimizer opt = ParallelConfigOptimizer.builder(cm).build();
        for (double rate : new double[] {0.05, 0.2, 0.35, 0.6, 0.9}) {
            ConfigEstimate e = opt.decide(12, rate).choice().orElseThrow();
            assertTrue(e.throughputRps() > rate, rate + ": " + e);
            assertTrue(e.schedulingSeconds() > 0 && e.schedulingSeconds() < Double.POSITIVE_INFINITY, e.toString());
        }
        // light load: two pipelines on 8 instances; heavy load: four pipelines on all 12
        Decision light = opt.decide(12, 0.05);
        Decision heavy = opt.decide(12, 0.9);
        assertEquals(8, light.instancesNeeded(), light.toString());
        assertEquals(12, heavy.instancesNeeded(), heavy.toString());
        assertTrue(heavy.choice().orElseThrow().throughputRps() > 3 * light.choice().orElseThrow().throughputRps());
        // overloaded: line 5 returns the maximum-throughput configuration and says so
        Decision over = opt.decide(12, 5.0);
        assertFalse(over.meetsArrivalRate());
        assertEquals(Double.POSITIVE_INFINITY, over.choice().orElseThrow().schedulingSeconds());
    }

    @Test
    void acquiresInstancesWhenTheCloudHasThem() {
        CostModel cm = Profiles.model(PaperModel.GPT_20B);
        Decision d = ParallelConfigOptimizer.builder(cm).acquirableInstances(9).spareInstances(2).build()
                .decide(3, 1, 0.35);
        assertTrue(d.meetsArrivalRate(), d.reason());
        assertTrue(d.instancesNeeded() > 3, d.toString());
        assertEquals(d.instancesNeeded() + 2, d.targetInstances());
        assertEquals(d.targetInstances() - 3, d.allocate());
        assertEquals(0, d.release());
    }

    @Test
    void releasesOnDemandFirstAndKeepsTheSparePool() {
        CostModel cm = Profiles.model(PaperModel.GPT_20B);
        // artifact at 11 instances, 0.4 req/s: (2,2,8) = 32 GPUs = 8 instances
        ParallelConfigOptimizer.Builder b = ParallelConfigOptimizer.builder(cm)
                .policy(ParallelConfigOptimizer.Policy.ARTIFACT);
        Decision d = b.build().decide(11, 2, 0.4);
        assertEquals(8, d.instancesNeeded());
        assertEquals(-3, d.delta());
        assertEquals(2, d.releaseOnDemand());
        assertEquals(1, d.releaseSpot());
        Decision spare = b.spareInstances(2).build().decide(11, 2, 0.4);
        assertEquals(10, spare.targetInstances());
        assertEquals(1, spare.releaseOnDemand());
        assertEquals(0, spare.releaseSpot());
        Decision grow = b.spareInstances(2).build().decide(8, 0, 0.4);
        assertEquals(2, grow.allocate());
    }

    @Test
    void badInputsAreRejected() {
        ParallelConfigOptimizer opt = ParallelConfigOptimizer.builder(Profiles.model(PaperModel.OPT_6_7B)).build();
        assertThrows(IllegalArgumentException.class, () -> opt.decide(-1, 1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> opt.decide(4, 5, 1));
        assertTrue(e.getMessage().contains("was 5"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> opt.decide(4, Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> opt.decide(4, -0.5));
        assertThrows(IllegalStateException.class, () -> ParallelConfigOptimizer.builder(Profiles.model(
                PaperModel.OPT_6_7B)).policy(ParallelConfigOptimizer.Policy.ARTIFACT).acquirableInstances(1).build());
        assertThrows(IllegalArgumentException.class, () -> ParallelConfigOptimizer.builder(Profiles.model(
                PaperModel.OPT_6_7B)).latencyTolerance(-0.1));
        assertTrue(opt.decide(0, 1).choice().isEmpty());
    }

    @Test
    void balancedSplitSearchesASupersetOfPipelineDegrees() {
        CostModel cm = Profiles.model(PaperModel.GPT_20B);
        ParallelConfigOptimizer.Builder b = ParallelConfigOptimizer.builder(cm)
                .policy(ParallelConfigOptimizer.Policy.ARTIFACT);
        ParallelConfigOptimizer padded = b.build();
        ParallelConfigOptimizer balanced = b.layerSplit(LayerSplit.BALANCED).build();
        for (int n = 3; n <= 12; n++) {
            for (double rate : new double[] {0, 0.35}) {
                Decision p = padded.decide(n, rate);
                Decision q = balanced.decide(n, rate);
                if (p.meetsArrivalRate()) {
                    assertTrue(q.meetsArrivalRate());
                    assertTrue(q.choice().orElseThrow().executionSeconds() <= p.choice().orElseThrow().executionSeconds());
                } else {
                    assertTrue(q.choice().orElseThrow().throughputRps() >= p.choice().orElseThrow().throughputRps());
                }
                assertEquals(0, 48 % p.config().pipelineStages());
            }
        }
        // 11 single-GPU instances, min 11 GPUs, M = 1: no divisor of 48 lies in [11, 11]; P = 11 balances 44 layers
        CostModel eleven = CostModel.of(cm.profile(), cm.shape(), Hardware.G4DN_12XLARGE.withGpusPerInstance(1), 11);
        ParallelConfigOptimizer.Builder one = ParallelConfigOptimizer.builder(eleven).maxTensorParallel(1);
        assertTrue(one.build().decide(11, 0).choice().isEmpty());
        Decision d = one.layerSplit(LayerSplit.BALANCED).build().decide(11, 0);
        assertEquals(ParallelConfig.of(1, 11, 1, d.config().maxBatch()), d.config());
        assertEquals(cm.executionSeconds(11, 1, d.config().maxBatch(), d.choice().orElseThrow().prefillMicroBatches(),
                d.choice().orElseThrow().decodeMicroBatches(), 512, 128), d.choice().orElseThrow().executionSeconds(), 1e-12);
    }
}
