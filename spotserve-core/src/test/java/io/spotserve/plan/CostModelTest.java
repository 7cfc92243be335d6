package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class CostModelTest {

    /** Paper Table 1: l_exe at B = 1, S_in = 512, S_out = 128 on the minimum (P, M). */
    @ParameterizedTest
    @CsvSource({"OPT_6_7B, 1, 4, 5.447", "GPT_20B, 3, 4, 14.373", "LLAMA_30B, 2, 8, 17.540"})
    void reproducesTable1ToOneMillisecond(PaperModel model, int p, int m, double seconds) {
        CostModel cm = Profiles.model(model);
        assertEquals(seconds, cm.executionSeconds(p, m, 1, 1, 1, 512, 128), 0.001);
        assertEquals(p * m, model.artifactMinGpus());
    }

    @Test
    void executionIsPrefillPlusDecodeStepsPlusEmbedding() {
        CostModel cm = Profiles.model(PaperModel.GPT_20B);
        LatencyProfile pr = cm.profile();
        // hand-computed from the profile: P=2, M=8, B=4, M1=4, M2=1, Lp = ceil(44/2) = 22
        double t1 = pr.times(8, 1).initMs() * 22 * (2 + 4 - 1) / 4 + 7.0 / 4 * 1;
        double t2 = pr.times(8, 4).incrMs() * 22 * (2 + 1 - 1) + 0.1 / 1 * 1;
        assertEquals(t1 * 1.1 / 1000, cm.prefillSeconds(2, 8, 4, 4, 512), 1e-12);
        assertEquals(t2 * 1.1 / 1000, cm.decodeStepSeconds(2, 8, 4, 1), 1e-12);
        assertEquals(2 * 0.607 * 1.1 / 1000, cm.embedSeconds(4), 1e-12);
        double total = cm.prefillSeconds(2, 8, 4, 4, 512) + 128 * cm.decodeStepSeconds(2, 8, 4, 1) + cm.embedSeconds(4);
        assertEquals(total, cm.executionSeconds(2, 8, 4, 4, 1, 512, 128), 1e-9);
        assertEquals(17 * cm.decodeStepSeconds(2, 8, 4, 1), cm.decodeSeconds(2, 8, 4, 1, 17), 1e-12);
        // throughput = D·B / l_exe
        assertEquals(3 * 4 / total, cm.throughput(ParallelConfig.of(3, 2, 8, 4), 4, 1, 512, 128), 1e-12);
    }

    @Test
    void promptPhaseScalesLinearlyFromTheProfiledLength() {
        CostModel cm = Profiles.model(PaperModel.OPT_6_7B);
        double at512 = cm.prefillSeconds(1, 4, 2, 1, 512);
        assertEquals(2 * at512, cm.prefillSeconds(1, 4, 2, 1, 1024), 1e-12);
        assertEquals(at512, cm.executionSeconds(1, 4, 2, 1, 1, 1024, 64) - cm.executionSeconds(1, 4, 2, 1, 1, 512, 64),
                1e-9);
    }

    @ParameterizedTest
    @CsvSource({"OPT_6_7B, 25.0", "GPT_20B, 74.5", "LLAMA_30B, 111.8"})
    void modelSizesMatchThePaperWithinTwoPercent(PaperModel model, double paperGiB) {
        double gib = model.shape().weightBytes() / (double) (1L << 30);
        assertEquals(paperGiB, gib, 0.02 * paperGiB, model + " is " + gib + " GiB");
    }

    @Test
    void deviceMemoryCountsWeightsAndKvCachePerShard() {
        CostModel cm = Profiles.model(PaperModel.OPT_6_7B);
        ModelShape s = cm.shape();
        assertEquals(12L * 4096 * 4096 + 13 * 4096, s.layerParameters());
        long weights = (16 * s.layerParameters() + s.embeddingParameters()) * 4;
        long kv = 4L * 640 * 16 * 2 * 4096 * 4;
        assertEquals((weights + kv + 1) / 2, cm.deviceMemoryBytes(2, 2, 4, 512, 128));
        // whole OPT-6.7B (24.8 GiB) does not fit one 15 GiB T4; 4 shards do
        assertFalse(cm.fits(MemoryRule.DEVICE_MEMORY, 1, 1, 1, 512, 128));
        assertTrue(cm.fits(MemoryRule.DEVICE_MEMORY, 1, 4, 4, 512, 128));
        // LLaMA-30B stand-in has 56 heads: M = 16 cannot split them
        CostModel llama = Profiles.model(PaperModel.LLAMA_30B);
        assertFalse(llama.fits(MemoryRule.DEVICE_MEMORY, 8, 16, 1, 512, 128));
    }

    @Test
    void artifactRuleIsTheMinimumGpuCount() {
        CostModel gpt = Profiles.model(PaperModel.GPT_20B);
        assertTrue(gpt.fits(MemoryRule.ARTIFACT_MIN_GPUS, 3, 4, 4, 512, 128));
        assertFalse(gpt.fits(MemoryRule.ARTIFACT_MIN_GPUS, 2, 4, 1, 512, 128));
        assertTrue(gpt.fits(MemoryRule.ARTIFACT_MIN_GPUS, 2, 8, 1, 512, 128));
        assertFalse(gpt.fits(MemoryRule.ARTIFACT_MIN_GPUS, 1, 8, 1, 512, 128));
    }

    @Test
    void migrationTimeIsBytesOverBandwidthPlusOverhead() {
        CostModel cm = Profiles.model(PaperModel.GPT_20B);
        assertEquals(0.5, cm.migrationSeconds(0), 1e-12);
        assertEquals(1.5, cm.migrationSeconds(6_250_000_000L), 1e-12); // 50 Gbit at 50 Gbps
        assertThrows(IllegalArgumentException.class, () -> cm.migrationSeconds(-1));
    }

    @Test
    void badArgumentsNameTheValue() {
        CostModel cm = Profiles.model(PaperModel.LLAMA_30B);
        assertMessage(() -> cm.executionSeconds(2, 16, 1, 1, 1, 512, 128), "M (tensor shards) 16");
        assertMessage(() -> cm.executionSeconds(2, 8, 3, 1, 1, 512, 128), "B (batch) 3");
        assertMessage(() -> cm.executionSeconds(2, 8, 16, 1, 1, 512, 128), "B (batch) 16");
        assertMessage(() -> cm.executionSeconds(2, 8, 4, 8, 1, 512, 128), "prefill micro-batches 8");
        assertMessage(() -> cm.executionSeconds(0, 8, 4, 1, 1, 512, 128), "P (pipeline stages)");
        assertMessage(() -> cm.executionSeconds(2, 8, 4, 1, 1, 0, 128), "S_in");
        assertMessage(() -> cm.decodeSeconds(2, 8, 4, 1, -1), "decode steps");
        assertMessage(() -> CostModel.of(cm.profile(), cm.shape(), cm.hardware(), 0), "minWorldSize");
        assertMessage(() -> CostModel.of(cm.profile(), PaperModel.GPT_20B.shape(), cm.hardware(), 12),
                "is for 48 layers of width 7168 but model 'GPT-20B' has 44 layers of width 6144");
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(expected), "message '" + e.getMessage() + "' should contain " + expected);
    }

    @Test
    void modelNamesResolveFromProfileFileNames() {
        assertEquals(PaperModel.OPT_6_7B, PaperModel.fromName("/x/T4-4x/megatron_6.7B_profile.json"));
        assertEquals(PaperModel.GPT_20B, PaperModel.fromName("megatron_h6144_profile"));
        assertEquals(PaperModel.LLAMA_30B, PaperModel.fromName("llama-30b"));
        assertEquals(PaperModel.GPT_20B, PaperModel.fromName("GPT_20B"));
        assertMessage(() -> PaperModel.fromName("megatron_h2048_profile.json"), "megatron_h2048");
    }
}
