package io.spotserve.bench.gpu;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The comparison step of the 1B decode benchmark: reads {@link GpuDecodeBench}'s JSON and
 * {@code benchmarks/gpu/torch_decode.py}'s JSON and writes the markdown report with, per (weights, batch): weight
 * bytes per step, the measured copy bandwidth, the bound step time and tokens/s ({@link DecodeBound}), ours, our
 * share of the bound and our ratio to PyTorch eager, then the goals of issue 6 with PASS / FAIL: fp16 batch-1
 * decode at >= {@value #BOUND_GOAL} of the bound and >= {@value #TORCH_GOAL}× eager PyTorch (its faster
 * measurement, {@code generate} or the manual loop, at the same batch). Every derived number is recomputed from
 * the raw ones (bytes, medians), not taken from the files' convenience fields.
 *
 * <p>Run: {@code java -cp 'lib/*' io.spotserve.bench.gpu.DecodeComparison decode-1b.json torch-decode.json
 * gpu-decode.md}; exit status 0 only when every goal is PASS (1 when one fails or could not be measured, 2 on
 * bad arguments).
 */
public final class DecodeComparison {
    /** Batch-1 fp16 decode must reach this share of the bandwidth bound. */
    public static final double BOUND_GOAL = 0.60;
    /** Batch-1 fp16 decode must be this many times eager PyTorch's. */
    public static final double TORCH_GOAL = 1.5;

    private DecodeComparison() {
    }

    /** One row of the table; NaN where not measured. */
    public record Row(String weights, int batch, long weightBytes, double boundMs, double boundTokensPerSecond,
                      double msPerStep, double tokensPerSecond, double shareOfBound, double torchTokensPerSecond,
                      double ratioToTorch) {
    }

    /** A goal and its verdict: PASS, FAIL, or NOT MEASURED (counted as not passed). */
    public record Goal(String text, String measured, String verdict) {
        public boolean passed() {
            return verdict.equals("PASS");
        }
    }

    /** The comparison: rows, goals, and the markdown. */
    public record Report(List<Row> rows, List<Goal> goals, String markdown) {
        public boolean allPassed() {
            return goals.stream().allMatch(Goal::passed);
        }
    }

    /**
     * Compares {@code ours} (GpuDecodeBench's JSON, may be null when missing) with {@code torch}
     * (torch_decode.py's JSON, may be null).
     */
    public static Report compare(JsonObject ours, JsonObject torch) {
        StringBuilder md = new StringBuilder();
        List<Row> rows = new ArrayList<>();
        String device = ours != null && ours.has("device") ? ours.get("device").getAsString()
                : torch != null && torch.has("device") ? torch.get("device").getAsString() : "unknown device";
        md.append("# 1B-parameter decode: SpotServe-J CUDA executor vs. the bandwidth bound vs. PyTorch eager\n\n");
        md.append("Device: ").append(device).append(".\n");
        if (ours != null && ours.has("model")) {
            JsonObject m = ours.getAsJsonObject("model");
            md.append(String.format(Locale.ROOT, "Model: random LLaMA, dim %d, hidden %d, %d layers, %d heads, %d KV "
                            + "heads, vocab %d, seq_len %d, %s classifier: %,d parameters (seed %d).%n",
                    m.get("dim").getAsInt(), m.get("hidden_dim").getAsInt(), m.get("layers").getAsInt(),
                    m.get("heads").getAsInt(), m.get("kv_heads").getAsInt(), m.get("vocab").getAsInt(),
                    m.get("seq_len").getAsInt(), m.get("shared_classifier").getAsBoolean() ? "shared" : "separate",
                    m.get("parameters").getAsLong(), m.get("seed").getAsLong()));
        }
        double bandwidth = Double.NaN;
        if (ours != null && ours.has("copy")) {
            JsonObject c = ours.getAsJsonObject("copy");
            long copied = c.get("bytes_copied").getAsLong();
            double[] samples = doubles(c.get("samples_ms"));
            double ms = Stats.median(samples);
            bandwidth = 2.0 * copied / (ms / 1e3);
            md.append(String.format(Locale.ROOT, "Copy bandwidth: cuMemcpyDtoD of %,d bytes, median %.3f ms of %d "
                            + "(CUDA events): %.1f GB/s read+written = the read-only-equivalent bandwidth the bound "
                            + "uses (%.1f GB/s copied).%n", copied, ms, samples.length, bandwidth / 1e9,
                    copied / (ms / 1e3) / 1e9));
        } else {
            md.append("Copy bandwidth: not measured").append(reason(ours)).append(".\n");
        }
        if (ours != null && ours.has("prompt")) {
            md.append(String.format(Locale.ROOT, "Ours: prompt %d tokens per sequence, then greedy decode: %d "
                            + "warm-up steps, %d timed runs of %d steps, median run; logits to the host every step.%n",
                    ours.get("prompt").getAsInt(), ours.get("warmup_steps").getAsInt(), ours.get("runs").getAsInt(),
                    ours.get("steps_per_run").getAsInt()));
        }
        long ourParameters = ours != null && ours.has("model") ? ours.getAsJsonObject("model").get("parameters").getAsLong() : -1;
        long torchParameters = torch != null && torch.has("parameters") ? torch.get("parameters").getAsLong() : -1;
        boolean sameModel = ourParameters < 0 || torchParameters < 0 || ourParameters == torchParameters;
        if (!sameModel) {
            md.append(String.format(Locale.ROOT, "**PyTorch ran another model** (%,d parameters, ours %,d): no ratio.%n",
                    torchParameters, ourParameters));
        }
        md.append("\n| weights | batch | weight bytes/step | bound ms/step | bound tok/s | ours ms/step | ours tok/s "
                + "| % of bound | PyTorch eager tok/s | ours / eager |\n");
        md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        if (ours != null && ours.has("results")) {
            for (JsonElement e : ours.getAsJsonArray("results")) {
                JsonObject r = e.getAsJsonObject();
                String w = r.get("weights").getAsString();
                int batch = r.get("batch").getAsInt();
                long bytes = r.get("weight_bytes_per_step").getAsLong();
                double ms = Stats.median(doubles(r.get("ms_per_step_runs")));
                double tps = batch * 1e3 / ms;
                double boundMs = Double.isNaN(bandwidth) ? Double.NaN : DecodeBound.boundMs(bytes, bandwidth);
                double boundTps = batch * 1e3 / boundMs;
                double torchTps = w.equals("fp16") && sameModel ? torchTokensPerSecond(torch, batch) : Double.NaN;
                Row row = new Row(w, batch, bytes, boundMs, boundTps, ms, tps, tps / boundTps, torchTps, tps / torchTps);
                rows.add(row);
                md.append(String.format(Locale.ROOT, "| %s | %d | %,d | %s | %s | %.3f | %.1f | %s | %s | %s |%n", w,
                        batch, bytes, num(boundMs, "%.3f"), num(boundTps, "%.1f"), ms, tps,
                        pct(row.shareOfBound()), num(torchTps, "%.1f"), ratio(row.ratioToTorch())));
            }
        }
        if (rows.isEmpty()) {
            md.append("| — | — | — | — | — | not measured").append(reason(ours)).append(" | — | — | — | — |\n");
        }
        if (!rows.isEmpty()) {
            md.append("\n| weights | batch | load s | device bytes after load | prefill s (batch × prompt) | ms/step of each run |\n");
            md.append("|---|---:|---:|---:|---:|---|\n");
            for (JsonElement e : ours.getAsJsonArray("results")) {
                JsonObject r = e.getAsJsonObject();
                md.append(String.format(Locale.ROOT, "| %s | %d | %s | %s | %s | %s |%n", r.get("weights").getAsString(),
                        r.get("batch").getAsInt(), num(val(r, "load_s"), "%.1f"),
                        r.has("device_weight_bytes") ? String.format(Locale.ROOT, "%,d", r.get("device_weight_bytes").getAsLong()) : "—",
                        num(val(r, "prefill_s"), "%.2f"), r.get("ms_per_step_runs")));
            }
        }
        if (ours != null && ours.has("graphs_off")) {
            JsonObject off = ours.getAsJsonObject("graphs_off");
            JsonArray runs = off.getAsJsonArray("ms_per_step_runs");
            double[] ms = new double[runs.size()];
            for (int i = 0; i < ms.length; i++) {
                ms[i] = runs.get(i).getAsDouble();
            }
            double offMs = Stats.median(ms); // recomputed from the runs, like every row
            Row on = rows.stream().filter(r -> r.weights().equals("fp16") && r.batch() == 1).findFirst().orElse(null);
            md.append(String.format(Locale.ROOT, "%nWithout CUDA graphs (kernel by kernel, `-Dspotserve.cuda.graphs=false`), "
                    + "fp16 batch 1: %.3f ms/step%s.%n", offMs, on == null ? ""
                    : String.format(Locale.ROOT, " against %.3f with graphs (%.2fx)", on.msPerStep(), offMs / on.msPerStep())));
        }
        md.append("\nThe bound counts, per step, every layer matrix and classifier row at the weight precision and "
                + "the RMSNorm vectors at 4 bytes (not the embedding table, not the KV cache); tok/s = batch / step "
                + "time. PyTorch eager runs fp16 only, so fp32 rows have no ratio.\n");

        Row b1 = rows.stream().filter(r -> r.weights().equals("fp16") && r.batch() == 1).findFirst().orElse(null);
        List<Goal> goals = new ArrayList<>();
        goals.add(b1 == null || Double.isNaN(b1.shareOfBound())
                ? new Goal(goalText(true), "not measured", "NOT MEASURED")
                : new Goal(goalText(true), pct(b1.shareOfBound()), b1.shareOfBound() >= BOUND_GOAL ? "PASS" : "FAIL"));
        goals.add(b1 == null || Double.isNaN(b1.ratioToTorch())
                ? new Goal(goalText(false), "not measured" + (!sameModel ? " (PyTorch ran another model)"
                        : torch == null || Double.isNaN(torchTokensPerSecond(torch, 1)) ? reason(torch) : ""), "NOT MEASURED")
                : new Goal(goalText(false), ratio(b1.ratioToTorch()), b1.ratioToTorch() >= TORCH_GOAL ? "PASS" : "FAIL"));
        md.append("\n## Goals (issue 6)\n\n| goal | measured | verdict |\n|---|---:|---|\n");
        for (Goal g : goals) {
            md.append("| ").append(g.text()).append(" | ").append(g.measured()).append(" | ").append(g.verdict())
                    .append(" |\n");
        }
        appendTorch(md, torch);
        return new Report(List.copyOf(rows), List.copyOf(goals), md.toString());
    }

    private static String goalText(boolean bound) {
        return bound ? String.format(Locale.ROOT, "fp16 batch-1 decode >= %.0f%% of the bandwidth bound", BOUND_GOAL * 100)
                : String.format(Locale.ROOT, "fp16 batch-1 decode >= %.1fx eager PyTorch", TORCH_GOAL);
    }

    /**
     * PyTorch eager's tokens/s at {@code batch}: the faster of its generate decode rate and its manual-loop rate,
     * each recomputed as batch × 1000 / ms per step; NaN when absent.
     */
    static double torchTokensPerSecond(JsonObject torch, int batch) {
        if (torch == null || !torch.has("results")) {
            return Double.NaN;
        }
        double best = Double.NaN;
        for (JsonElement e : torch.getAsJsonArray("results")) {
            JsonObject r = e.getAsJsonObject();
            if (r.get("batch").getAsInt() != batch) {
                continue;
            }
            for (String key : new String[] {"generate_decode_ms_per_step", "loop_ms_per_step"}) {
                if (r.has(key) && !r.get(key).isJsonNull()) {
                    double tps = batch * 1e3 / r.get(key).getAsDouble();
                    best = Double.isNaN(best) ? tps : Math.max(best, tps);
                }
            }
        }
        return best;
    }

    private static void appendTorch(StringBuilder md, JsonObject torch) {
        md.append("\n## PyTorch eager (benchmarks/gpu/torch_decode.py)\n\n");
        if (torch == null) {
            md.append("No result file.\n");
            return;
        }
        if (torch.has("error") && !torch.get("error").isJsonNull()) {
            md.append("Error: ").append(torch.get("error").getAsString()).append("\n\n");
        }
        if (torch.has("torch")) {
            md.append(String.format(Locale.ROOT, "torch %s, transformers %s, dtype %s, attention '%s', %s "
                            + "parameters; prompt %s tokens, %s new tokens (min_new_tokens = max_new_tokens, greedy).%n%n",
                    str(torch, "torch"), str(torch, "transformers"), str(torch, "dtype"),
                    str(torch, "attn_implementation"), str(torch, "parameters"), str(torch, "prompt"),
                    str(torch, "new_tokens")));
        }
        if (!torch.has("results") || torch.getAsJsonArray("results").isEmpty()) {
            return;
        }
        md.append("| batch | prefill ms | generate ms | generate decode ms/step | tok/s | loop ms/step | tok/s |\n");
        md.append("|---:|---:|---:|---:|---:|---:|---:|\n");
        for (JsonElement e : torch.getAsJsonArray("results")) {
            JsonObject r = e.getAsJsonObject();
            int batch = r.get("batch").getAsInt();
            double gen = val(r, "generate_decode_ms_per_step");
            double loop = val(r, "loop_ms_per_step");
            md.append(String.format(Locale.ROOT, "| %d | %s | %s | %s | %s | %s | %s |%n", batch,
                    num(val(r, "prefill_ms"), "%.2f"), num(val(r, "generate_ms"), "%.1f"), num(gen, "%.3f"),
                    num(batch * 1e3 / gen, "%.1f"), num(loop, "%.3f"), num(batch * 1e3 / loop, "%.1f")));
        }
    }

    private static String reason(JsonObject json) {
        if (json == null) {
            return " (no result file)";
        }
        if (json.has("error") && !json.get("error").isJsonNull()) {
            return " (" + json.get("error").getAsString() + ")";
        }
        if (json.has("errors") && !json.getAsJsonArray("errors").isEmpty()) {
            return " (" + json.getAsJsonArray("errors").get(0).getAsString() + ")";
        }
        return "";
    }

    private static double val(JsonObject r, String key) {
        return r.has(key) && !r.get(key).isJsonNull() ? r.get(key).getAsDouble() : Double.NaN;
    }

    private static String str(JsonObject o, String key) {
        return o.has(key) && !o.get(key).isJsonNull() ? o.get(key).getAsString() : "?";
    }

    private static double[] doubles(JsonElement array) {
        var a = array.getAsJsonArray();
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsDouble();
        }
        return out;
    }

    private static String num(double v, String fmt) {
        return Double.isNaN(v) || Double.isInfinite(v) ? "—" : String.format(Locale.ROOT, fmt, v);
    }

    private static String pct(double share) {
        return Double.isNaN(share) ? "—" : String.format(Locale.ROOT, "%.1f%%", share * 100);
    }

    private static String ratio(double r) {
        return Double.isNaN(r) ? "—" : String.format(Locale.ROOT, "%.2fx", r);
    }

    /** Reads a JSON object file, or null when the file does not exist or holds no JSON object. */
    static JsonObject read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            return null;
        }
        String text = Files.readString(file, StandardCharsets.UTF_8);
        try {
            JsonElement e = JsonParser.parseString(text);
            return e.isJsonObject() ? e.getAsJsonObject() : null;
        } catch (RuntimeException e) {
            JsonObject broken = new JsonObject();
            broken.addProperty("error", file + " is not JSON: " + e.getMessage());
            return broken;
        }
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 3) {
            System.err.println("usage: DecodeComparison <decode-1b.json> <torch-decode.json> <out.md>");
            System.exit(2);
            return;
        }
        Report report = compare(read(Path.of(args[0])), read(Path.of(args[1])));
        Path out = Path.of(args[2]);
        Path parent = out.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        Files.writeString(out, report.markdown(), StandardCharsets.UTF_8);
        System.out.println("wrote " + out + " (" + report.rows().size() + " rows)");
        for (Goal g : report.goals()) {
            System.out.println(g.verdict() + ": " + g.text() + ": " + g.measured());
        }
        System.exit(report.allPassed() ? 0 : 1);
    }
}
