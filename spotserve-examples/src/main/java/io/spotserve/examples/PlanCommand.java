package io.spotserve.examples;

import io.spotserve.plan.ConfigEstimate;
import io.spotserve.plan.CostModel;
import io.spotserve.plan.Decision;
import io.spotserve.plan.Hardware;
import io.spotserve.plan.LatencyProfile;
import io.spotserve.plan.MemoryRule;
import io.spotserve.plan.ModelShape;
import io.spotserve.plan.PaperModel;
import io.spotserve.plan.ParallelConfig;
import io.spotserve.plan.ParallelConfigOptimizer;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code plan}: runs SpotServe's Algorithm 1 (§2.3) once on a latency profile and prints the chosen
 * configuration as one line.
 *
 * <pre>
 * java -jar spotserve-examples.jar plan --profile PATH --instances N [--gpus-per-instance 4] [--rate R]
 *     [--max-batch 4] [--in 512] [--out 128] [--policy paper|artifact] [--model opt-6.7b|gpt-20b|llama-30b]
 *     [--min-gpus N] [--memory artifact|device] [--on-demand K] [--spare S] [--acquirable A] [--tolerance 0.05]
 *     [--model-file PATH] [--device-memory-mib 15360]
 * </pre>
 * Output: {@code D=.. P=.. M=.. B=.. latency_s=.. throughput_rps=..} followed by {@code m1 m2 queue_s instances
 * delta meets_rate}; latency_s is the execution latency l_exe and queue_s the PAPER policy's queueing estimate.
 * The model (for memory and the artifact's minimum GPU count) is inferred from the profile's file name for the
 * paper's three models ({@code megatron_6.7B} → OPT-6.7B, {@code megatron_h6144} → GPT-20B,
 * {@code megatron_h7168} → LLaMA-30B) or given with {@code --model}; any other profile gets a GPT-style shape
 * from its layer count and width (vocab 51200) and a minimum of {@code --min-gpus} (default 1) GPUs.
 * {@code --model-file} names the llama2.c checkpoint a profile of our own executor was taken on (see the
 * {@code profile} command): its exact byte model is used and the memory rule defaults to {@code device}, with
 * {@code --device-memory-mib} per device (default the T4's 15,360 MiB).
 */
final class PlanCommand implements Main.Command {
    private static final List<String> OPTIONS = List.of("profile", "instances", "gpus-per-instance", "rate",
            "max-batch", "in", "out", "policy", "model", "min-gpus", "memory", "on-demand", "spare", "acquirable",
            "tolerance", "model-file", "device-memory-mib");

    @Override
    public int run(String[] args, PrintStream out) throws UsageException {
        Map<String, String> opts = CommandLine.parse("plan", args, Set.copyOf(OPTIONS), Set.of(),
                "options are --" + String.join(" --", OPTIONS));
        if (!opts.containsKey("profile")) {
            throw new UsageException("plan: --profile PATH is required");
        }
        if (!opts.containsKey("instances")) {
            throw new UsageException("plan: --instances N is required");
        }
        Path path = Path.of(opts.get("profile"));
        if (!Files.isRegularFile(path)) {
            throw new UsageException("plan: --profile " + path + " is not a file");
        }
        LatencyProfile profile;
        try {
            profile = LatencyProfile.read(path);
        } catch (IllegalArgumentException e) {
            throw new UsageException("plan: --profile " + e.getMessage());
        }
        int instances = integer(opts, "instances", -1, 0);
        int gpusPerInstance = integer(opts, "gpus-per-instance", 4, 1);
        double rate = decimal(opts, "rate", 0);
        int onDemand = integer(opts, "on-demand", 0, 0);
        if (onDemand > instances) {
            throw new UsageException("plan: --on-demand " + onDemand + " exceeds --instances " + instances);
        }

        if (opts.containsKey("model") && opts.containsKey("model-file")) {
            throw new UsageException("plan: give --model or --model-file, not both");
        }
        Hardware g4dn = Hardware.G4DN_12XLARGE.withGpusPerInstance(gpusPerInstance);
        long deviceMib = integer(opts, "device-memory-mib", (int) (g4dn.gpuMemoryBytes() >> 20), 1);
        Hardware hw = new Hardware(g4dn.name(), gpusPerInstance, deviceMib << 20, g4dn.networkGbps(),
                g4dn.migrationOverheadSeconds(), g4dn.spotUsdPerHour(), g4dn.onDemandUsdPerHour());
        CostModel model;
        String defaultMemory = "artifact";
        if (opts.containsKey("model-file")) {
            Path file = Path.of(opts.get("model-file"));
            if (!Files.isRegularFile(file)) {
                throw new UsageException("plan: --model-file " + file + " is not a file");
            }
            LlamaConfig config;
            try {
                config = LlamaCheckpoint.load(file).config();
            } catch (IllegalArgumentException | IOException e) {
                throw new UsageException("plan: --model-file " + file + ": " + e.getMessage());
            }
            int in = integer(opts, "in", 512, 1);
            int outTokens = integer(opts, "out", 128, 0);
            if ((long) in + outTokens > config.seqLen()) {
                throw new UsageException("plan: --in " + in + " + --out " + outTokens + " tokens exceed the seq_len "
                        + config.seqLen() + " of --model-file " + file);
            }
            try {
                model = CostModel.of(profile, file.getFileName().toString(), config, hw);
            } catch (IllegalArgumentException e) {
                throw new UsageException("plan: --profile/--model-file mismatch: " + e.getMessage());
            }
            defaultMemory = "device";
        } else {
            model = paperOrGptModel(opts, path, profile, hw);
        }

        ParallelConfigOptimizer.Builder b = ParallelConfigOptimizer.builder(model)
                .policy(policy(opts.getOrDefault("policy", "paper")))
                .memoryRule(memoryRule(opts.getOrDefault("memory", defaultMemory)))
                .maxBatch(integer(opts, "max-batch", 4, 1))
                .promptTokens(integer(opts, "in", 512, 1))
                .outputTokens(integer(opts, "out", 128, 0))
                .spareInstances(integer(opts, "spare", 0, 0))
                .acquirableInstances(integer(opts, "acquirable", 0, 0))
                .latencyTolerance(decimal(opts, "tolerance", 0.05));
        ParallelConfigOptimizer optimizer;
        try {
            optimizer = b.build();
        } catch (IllegalStateException e) {
            throw new UsageException("plan: " + e.getMessage());
        }
        Decision d = optimizer.decide(instances, onDemand, rate);
        if (d.choice().isEmpty()) {
            out.println("none reason=\"" + d.reason() + "\"");
            return 1;
        }
        ConfigEstimate e = d.choice().get();
        ParallelConfig c = e.config();
        out.println(String.format(Locale.ROOT,
                "D=%d P=%d M=%d B=%d latency_s=%.3f throughput_rps=%.4f m1=%d m2=%d queue_s=%s instances=%d "
                        + "delta=%+d meets_rate=%b",
                c.dataParallel(), c.pipelineStages(), c.tensorShards(), c.maxBatch(), e.executionSeconds(),
                e.throughputRps(), e.prefillMicroBatches(), e.decodeMicroBatches(),
                Double.isInfinite(e.schedulingSeconds()) ? "inf"
                        : String.format(Locale.ROOT, "%.3f", e.schedulingSeconds()),
                d.instancesNeeded(), d.delta(), d.meetsArrivalRate()));
        return 0;
    }

    private static CostModel paperOrGptModel(Map<String, String> opts, Path path, LatencyProfile profile,
                                             Hardware hw) throws UsageException {
        ModelShape shape;
        int minGpus;
        String modelName = opts.get("model");
        PaperModel paper = null;
        try {
            paper = PaperModel.fromName(modelName != null ? modelName : path.getFileName().toString());
        } catch (IllegalArgumentException e) {
            if (modelName != null) {
                throw new UsageException("plan: --model " + e.getMessage());
            }
        }
        if (paper != null) {
            shape = paper.shape();
            minGpus = paper.artifactMinGpus();
        } else {
            shape = ModelShape.gptStyle(profile.name(), profile.layerNum(), profile.hiddenSize(), 51200);
            minGpus = 1;
        }
        minGpus = integer(opts, "min-gpus", minGpus, 1);
        try {
            return CostModel.of(profile, shape, hw, minGpus);
        } catch (IllegalArgumentException e) {
            throw new UsageException("plan: --profile/--model mismatch: " + e.getMessage());
        }
    }

    private static int integer(Map<String, String> opts, String key, int dflt, int min) throws UsageException {
        return CommandLine.integer("plan", opts, key, dflt, min, Integer.MAX_VALUE);
    }

    private static double decimal(Map<String, String> opts, String key, double dflt) throws UsageException {
        double x = CommandLine.number("plan", opts, key, dflt);
        if (!(x >= 0) || Double.isInfinite(x)) {
            throw new UsageException("plan: --" + key + " must be a finite number >= 0, was " + opts.get(key));
        }
        return x;
    }

    private static ParallelConfigOptimizer.Policy policy(String v) throws UsageException {
        switch (v) {
            case "paper":
                return ParallelConfigOptimizer.Policy.PAPER;
            case "artifact":
                return ParallelConfigOptimizer.Policy.ARTIFACT;
            default:
                throw new UsageException("plan: --policy must be paper or artifact, was '" + v + "'");
        }
    }

    private static MemoryRule memoryRule(String v) throws UsageException {
        switch (v) {
            case "artifact":
                return MemoryRule.ARTIFACT_MIN_GPUS;
            case "device":
                return MemoryRule.DEVICE_MEMORY;
            default:
                throw new UsageException("plan: --memory must be artifact or device, was '" + v + "'");
        }
    }
}
