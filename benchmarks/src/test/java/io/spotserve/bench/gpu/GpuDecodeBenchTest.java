package io.spotserve.bench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.spotserve.exec.WeightPrecision;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The harness's bookkeeping, run on the CPU executor with the small model (its speed is not asserted). */
class GpuDecodeBenchTest {
    @Test
    void cpuRunRecordsEveryPrecisionAndBatchWithMediansInTheFileTheComparisonReads(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("o.json");
        GpuDecodeBench.Options o = GpuDecodeBench.Options.parse(new String[] {"--executor", "cpu", "--model", "small",
                "--out", out.toString(), "--batches", "1,3", "--prompt", "5", "--warmup", "1", "--steps", "2",
                "--runs", "3", "--device-gib", "1"});
        assertEquals(List.of(WeightPrecision.FP16, WeightPrecision.FP32), o.weights());
        assertEquals(5 + 1 + 3 * 2, o.lastPosition());
        JsonObject json = GpuDecodeBench.header(o);
        assertEquals(0, GpuDecodeBench.run(o, json));

        JsonObject file = JsonParser.parseString(Files.readString(out)).getAsJsonObject();
        assertEquals(0, file.getAsJsonArray("errors").size());
        assertEquals(GpuDecodeBench.SMALL.parameterCount(), file.getAsJsonObject("model").get("parameters").getAsLong());
        JsonArray results = file.getAsJsonArray("results");
        assertEquals(4, results.size());
        String[] weights = {"fp16", "fp16", "fp32", "fp32"};
        int[] batches = {1, 3, 1, 3};
        for (int i = 0; i < 4; i++) {
            JsonObject r = results.get(i).getAsJsonObject();
            assertEquals(weights[i], r.get("weights").getAsString());
            assertEquals(weights[i], r.get("pipeline_weights").getAsString());
            assertEquals(batches[i], r.get("batch").getAsInt());
            JsonArray runs = r.getAsJsonArray("ms_per_step_runs");
            assertEquals(3, runs.size());
            double[] ms = {runs.get(0).getAsDouble(), runs.get(1).getAsDouble(), runs.get(2).getAsDouble()};
            assertEquals(Stats.median(ms), r.get("ms_per_step").getAsDouble());
            assertEquals(batches[i] * 1e3 / Stats.median(ms), r.get("tokens_per_s").getAsDouble(), 1e-9);
            assertEquals(DecodeBound.weightBytesPerStep(GpuDecodeBench.SMALL, WeightPrecision.parse(weights[i])),
                    r.get("weight_bytes_per_step").getAsLong());
            assertEquals(5, r.get("first_position").getAsInt());
            assertEquals(11, r.get("last_position").getAsInt());
        }
        DecodeComparison.Report report = DecodeComparison.compare(file, null);
        assertEquals(4, report.rows().size());
        assertEquals("NOT MEASURED", report.goals().get(0).verdict()); // no copy bandwidth on the CPU
    }

    @Test
    void badOptionsNameTheOptionAndTheValue() {
        IllegalArgumentException seq = assertThrows(IllegalArgumentException.class, () -> GpuDecodeBench.Options.parse(
                new String[] {"--model", "small", "--prompt", "500", "--steps", "10"}));
        assertTrue(seq.getMessage().contains("566 positions exceed the model's seq_len 512"), seq.getMessage());
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                () -> GpuDecodeBench.Options.parse(new String[] {"--executor", "tpu"}));
        assertTrue(ex.getMessage().contains("--executor tpu unknown"), ex.getMessage());
        IllegalArgumentException b = assertThrows(IllegalArgumentException.class,
                () -> GpuDecodeBench.Options.parse(new String[] {"--batches", "1,0"}));
        assertTrue(b.getMessage().contains("--batches must be >= 1, was 0"), b.getMessage());
        IllegalArgumentException v = assertThrows(IllegalArgumentException.class,
                () -> GpuDecodeBench.Options.parse(new String[] {"--runs"}));
        assertTrue(v.getMessage().contains("--runs needs a value"), v.getMessage());
        IllegalArgumentException w = assertThrows(IllegalArgumentException.class,
                () -> GpuDecodeBench.Options.parse(new String[] {"--weights", "int4"}));
        assertTrue(w.getMessage().contains("'int4' unknown"), w.getMessage());
    }
}
