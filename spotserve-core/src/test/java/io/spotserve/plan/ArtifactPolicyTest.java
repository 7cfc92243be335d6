package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumMap;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every cell of the configuration table the artifact's optimizer produces (spotserve-paper.md §2.3: T4
 * profiles, S_out = 128, max B = 4; (D, P, M); '*' = max-throughput fallback, 'none' = infeasible).
 */
class ArtifactPolicyTest {
    private static final Map<PaperModel, ParallelConfigOptimizer> OPTIMIZERS = new EnumMap<>(PaperModel.class);

    private static ParallelConfigOptimizer optimizer(PaperModel model) {
        return OPTIMIZERS.computeIfAbsent(model, m -> ParallelConfigOptimizer.builder(Profiles.model(m))
                .policy(ParallelConfigOptimizer.Policy.ARTIFACT).maxBatch(4).outputTokens(128).build());
    }

    @ParameterizedTest(name = "{0} at {1} req/s on {2} instances -> {3}")
    @CsvSource({
        "GPT_20B, 0.4, 12, (3 2 8)", "GPT_20B, 0.4, 11, (2 2 8)", "GPT_20B, 0.4, 10, (2 2 8)",
        "GPT_20B, 0.4, 9, (2 2 8)", "GPT_20B, 0.4, 8, (2 2 8)", "GPT_20B, 0.4, 7, (2 3 4)",
        "GPT_20B, 0.4, 6, (2 3 4)", "GPT_20B, 0.4, 5, (1 2 8)*", "GPT_20B, 0.4, 4, (1 2 8)*",
        "GPT_20B, 0.4, 3, (1 3 4)*",
        "GPT_20B, 0.8, 12, (3 2 8)", "GPT_20B, 0.8, 11, (3 3 4)", "GPT_20B, 0.8, 10, (3 3 4)",
        "GPT_20B, 0.8, 9, (3 3 4)", "GPT_20B, 0.8, 8, (2 2 8)*", "GPT_20B, 0.8, 7, (2 3 4)*",
        "LLAMA_30B, 0.2, 12, (1 6 8)", "LLAMA_30B, 0.2, 11, (1 4 8)", "LLAMA_30B, 0.2, 10, (1 4 8)",
        "LLAMA_30B, 0.2, 9, (1 4 8)", "LLAMA_30B, 0.2, 8, (1 4 8)", "LLAMA_30B, 0.2, 7, (1 3 8)",
        "LLAMA_30B, 0.2, 6, (1 3 8)", "LLAMA_30B, 0.2, 5, (1 2 8)", "LLAMA_30B, 0.2, 4, (1 2 8)",
        "LLAMA_30B, 0.2, 3, none",
        "OPT_6_7B, 2.0, 12, (6 2 4)", "OPT_6_7B, 2.0, 11, (5 2 4)", "OPT_6_7B, 2.0, 10, (5 2 4)",
        "OPT_6_7B, 2.0, 9, (9 1 4)", "OPT_6_7B, 2.0, 8, (8 1 4)", "OPT_6_7B, 2.0, 7, (7 1 4)",
        "OPT_6_7B, 2.0, 6, (6 1 4)", "OPT_6_7B, 2.0, 5, (5 1 4)", "OPT_6_7B, 2.0, 4, (4 1 4)",
        "OPT_6_7B, 2.0, 3, (3 1 4)"})
    void matchesTheArtifactTable(PaperModel model, double rate, int instances, String expected) {
        Decision d = optimizer(model).decide(instances, rate);
        assertEquals(ParallelConfigOptimizer.Policy.ARTIFACT, d.policy());
        if (expected.equals("none")) {
            assertTrue(d.choice().isEmpty(), d.toString());
            assertFalse(d.meetsArrivalRate());
            assertEquals(0, d.delta());
            return;
        }
        boolean fallback = expected.endsWith("*");
        String[] dpm = expected.replace("*", "").replaceAll("[()]", "").split(" ");
        ParallelConfig c = d.config();
        assertEquals(Integer.parseInt(dpm[0]), c.dataParallel(), "D of " + c);
        assertEquals(Integer.parseInt(dpm[1]), c.pipelineStages(), "P of " + c);
        assertEquals(Integer.parseInt(dpm[2]), c.tensorShards(), "M of " + c);
        assertEquals(!fallback, d.meetsArrivalRate(), d.reason());
        ConfigEstimate e = d.choice().orElseThrow();
        // the artifact policy's latency is l_exe alone, and φ = D·B / l_exe
        assertEquals(0, e.schedulingSeconds());
        assertEquals(e.executionSeconds(), e.requestLatencySeconds());
        assertEquals(c.dataParallel() * c.maxBatch() / e.executionSeconds(), e.throughputRps(), 1e-12);
        assertEquals(fallback, e.throughputRps() < rate);
        // instances needed and Δ against N_t
        assertEquals((c.gpus() + 3) / 4, d.instancesNeeded());
        assertEquals(d.instancesNeeded() - instances, d.delta());
    }
}
