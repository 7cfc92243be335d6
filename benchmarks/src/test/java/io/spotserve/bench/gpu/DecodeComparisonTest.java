package io.spotserve.bench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.model.LlamaConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DecodeComparisonTest {
    private static final double GIB = 1L << 30;

    /** A fixture in GpuDecodeBench's format: copy median 0.9 ms; fp16 b1 median 1.1 ms, b16 4 ms; fp32 b1 3 ms. */
    private static final String OURS = """
            {"tool": "GpuDecodeBench", "device": "Test GPU, 80.0 GiB",
             "model": {"dim": 2048, "hidden_dim": 5632, "layers": 22, "heads": 32, "kv_heads": 4, "vocab": 32000,
                       "seq_len": 2048, "shared_classifier": false, "parameters": 1100048384, "seed": 1},
             "prompt": 256, "warmup_steps": 16, "steps_per_run": 32, "runs": 3,
             "copy": {"bytes_copied": 1073741824, "samples_ms": [1.0, 0.8, 0.9], "median_ms": 123.0},
             "results": [
               {"weights": "fp16", "batch": 1, "weight_bytes_per_step": 2000000000, "ms_per_step_runs": [1.2, 1.0, 1.1],
                "ms_per_step": 99.0, "tokens_per_s": 1.0},
               {"weights": "fp16", "batch": 16, "weight_bytes_per_step": 2000000000, "ms_per_step_runs": [4.0]},
               {"weights": "fp32", "batch": 1, "weight_bytes_per_step": 4000000000, "ms_per_step_runs": [3.0, 3.0]}
             ],
             "graphs_off": {"weights": "fp16", "batch": 1, "graphs": false, "ms_per_step_runs": [2.5, 2.2, 2.3]},
             "errors": []}
            """;
    private static final String TORCH = """
            {"tool": "torch_decode", "torch": "2.11.0", "transformers": "5.17.0", "dtype": "float16",
             "attn_implementation": "eager", "parameters": 1100048384, "prompt": 256, "new_tokens": 128,
             "results": [
               {"batch": 1, "prefill_ms": 20.0, "generate_ms": 3200.0, "generate_decode_ms_per_step": 25.0,
                "loop_ms_per_step": 20.0},
               {"batch": 16, "prefill_ms": 90.0, "generate_ms": 3900.0, "generate_decode_ms_per_step": 30.0,
                "loop_ms_per_step": null}
             ]}
            """;

    @Test
    void rowsAreRecomputedFromTheRawMediansAndTheCopyBandwidth() {
        DecodeComparison.Report r = DecodeComparison.compare(json(OURS), json(TORCH));
        double bw = 2 * GIB / 0.9e-3; // bytes read + written per second at the median copy (0.9 ms)
        assertEquals(3, r.rows().size());

        DecodeComparison.Row b1 = r.rows().get(0);
        assertEquals("fp16", b1.weights());
        assertEquals(1.1, b1.msPerStep(), 1e-12); // the median run, not the file's "ms_per_step"
        assertEquals(1000 / 1.1, b1.tokensPerSecond(), 1e-9);
        assertEquals(2e9 / bw * 1e3, b1.boundMs(), 1e-9);
        assertEquals(1e3 / (2e9 / bw * 1e3), b1.boundTokensPerSecond(), 1e-6);
        assertEquals((2e9 / bw * 1e3) / 1.1, b1.shareOfBound(), 1e-9); // 76.2 %
        assertEquals(50.0, b1.torchTokensPerSecond(), 1e-9); // the faster of generate (40) and the loop (50)
        assertEquals((1000 / 1.1) / 50.0, b1.ratioToTorch(), 1e-9);

        DecodeComparison.Row b16 = r.rows().get(1);
        assertEquals(16 * 1000 / 4.0, b16.tokensPerSecond(), 1e-9);
        assertEquals(16 * 1e3 / (2e9 / bw * 1e3), b16.boundTokensPerSecond(), 1e-6);
        assertEquals(16 * 1000 / 30.0, b16.torchTokensPerSecond(), 1e-9); // the loop's null is skipped

        DecodeComparison.Row fp32 = r.rows().get(2);
        assertEquals((4e9 / bw * 1e3) / 3.0, fp32.shareOfBound(), 1e-9);
        assertTrue(Double.isNaN(fp32.ratioToTorch()), "PyTorch ran fp16 only");

        assertTrue(r.allPassed(), r.goals().toString());
        assertEquals("76.2%", r.goals().get(0).measured());
        assertEquals("18.18x", r.goals().get(1).measured());
        assertTrue(r.markdown().contains("| fp16 | 1 | 2,000,000,000 | 0.838 | 1193.0 | 1.100 | 909.1 | 76.2% | 50.0 | 18.18x |"),
                r.markdown());
        assertTrue(r.markdown().contains("2386.1 GB/s read+written"), r.markdown());
        assertTrue(r.markdown().contains("fp16 batch 1: 2.300 ms/step against 1.100 with graphs (2.09x)"), r.markdown());
    }

    @Test
    void aSlowBatchOneFailsTheBoundGoalButMayStillBeatPyTorch() {
        JsonObject ours = json(OURS);
        ours.getAsJsonArray("results").get(0).getAsJsonObject().add("ms_per_step_runs", JsonParser.parseString("[2.0]"));
        DecodeComparison.Report r = DecodeComparison.compare(ours, json(TORCH));
        assertEquals("FAIL", r.goals().get(0).verdict()); // 0.838 / 2.0 = 41.9 % < 60 %
        assertEquals("41.9%", r.goals().get(0).measured());
        assertEquals("PASS", r.goals().get(1).verdict()); // 500 / 50 = 10x
        assertFalse(r.allPassed());

        ours.getAsJsonArray("results").get(0).getAsJsonObject().add("ms_per_step_runs", JsonParser.parseString("[14.0]"));
        DecodeComparison.Report slow = DecodeComparison.compare(ours, json(TORCH));
        assertEquals("FAIL", slow.goals().get(1).verdict()); // 71.4 / 50 = 1.43x < 1.5x
        assertEquals("1.43x", slow.goals().get(1).measured());
    }

    @Test
    void missingMeasurementsAreNotMeasuredWithTheReasonNeverAPass() {
        JsonObject torchMissing = json("{\"tool\": \"torch_decode\", \"error\": \"torch missing: No module named 'torch'\"}");
        DecodeComparison.Report r = DecodeComparison.compare(json(OURS), torchMissing);
        assertEquals("PASS", r.goals().get(0).verdict());
        assertEquals("NOT MEASURED", r.goals().get(1).verdict());
        assertTrue(r.goals().get(1).measured().contains("torch missing"), r.goals().get(1).measured());
        assertFalse(r.allPassed());

        JsonObject otherModel = json(TORCH);
        otherModel.addProperty("parameters", 477_824);
        DecodeComparison.Report mismatch = DecodeComparison.compare(json(OURS), otherModel);
        assertEquals("NOT MEASURED", mismatch.goals().get(1).verdict());
        assertTrue(mismatch.goals().get(1).measured().contains("another model"), mismatch.goals().get(1).measured());
        assertTrue(Double.isNaN(mismatch.rows().get(0).ratioToTorch()));

        JsonObject noGpu = json("{\"tool\": \"GpuDecodeBench\", \"error\": \"needs a GPU: CUDA driver library not loadable\"}");
        DecodeComparison.Report none = DecodeComparison.compare(noGpu, null);
        assertTrue(none.rows().isEmpty());
        assertEquals("NOT MEASURED", none.goals().get(0).verdict());
        assertEquals("NOT MEASURED", none.goals().get(1).verdict());
        assertTrue(none.markdown().contains("needs a GPU: CUDA driver library not loadable"), none.markdown());
        assertTrue(none.markdown().contains("No result file"), none.markdown());
    }

    @Test
    void mainWritesTheMarkdownAndExitsByTheGoals(@TempDir Path dir) throws Exception {
        Path ours = Files.writeString(dir.resolve("ours.json"), OURS);
        Path broken = Files.writeString(dir.resolve("torch.json"), "{not json");
        JsonObject read = DecodeComparison.read(broken);
        assertTrue(read.get("error").getAsString().contains("is not JSON"), read.toString());
        assertEquals(null, DecodeComparison.read(dir.resolve("absent.json")));
        assertEquals(3, DecodeComparison.compare(DecodeComparison.read(ours), read).rows().size());
    }

    @Test
    void theBoundCountsLayerMatricesAndClassifierAtTheWeightPrecisionAndNormsAtFourBytes() {
        LlamaConfig c = RandomLlamaWeights.TINYLLAMA_1B;
        long norms = (2L * c.layers() + 1) * c.dim();
        long embedding = (long) c.vocabSize() * c.dim();
        long matrices = c.parameterCount() - embedding - norms; // layer matrices + classifier
        assertEquals(matrices * 2 + norms * 4, DecodeBound.weightBytesPerStep(c, WeightPrecision.FP16));
        assertEquals(matrices * 4 + norms * 4, DecodeBound.weightBytesPerStep(c, WeightPrecision.FP32));
        assertEquals(2_069_209_088L, DecodeBound.weightBytesPerStep(c, WeightPrecision.FP16)); // ~2.07 GB per step
        assertEquals(2.0, DecodeBound.boundMs(2_000_000_000L, 1e12), 1e-12);
        assertEquals(8000.0, DecodeBound.boundTokensPerSecond(16, 2_000_000_000L, 1e12), 1e-9);
        assertEquals(2L * 22 * 256 * 4 * 16 * 300, DecodeBound.kvBytesPerStep(c, 16, 300));
        CopyBandwidth bw = new CopyBandwidth(1L << 30, new double[] {2.0, 1.0, 4.0});
        assertEquals(2.0, bw.medianMs());
        assertEquals(2L << 30, bw.readWrittenBytes());
        assertEquals((2L << 30) / 2e-3, bw.readWrittenBytesPerSecond(), 1e-3);
        assertEquals((1L << 30) / 2e-3, bw.copyBytesPerSecond(), 1e-3);
    }

    private static JsonObject json(String text) {
        return JsonParser.parseString(text).getAsJsonObject();
    }
}
