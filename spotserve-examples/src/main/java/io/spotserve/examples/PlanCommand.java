package io.spotserve.examples;

import com.google.gson.JsonParseException;
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
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

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
@Command(name = "plan", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = "Runs SpotServe's Algorithm 1 once on a latency profile and prints the chosen configuration "
        + "as one line (exit 1 when none fits).")
final class PlanCommand implements Callable<Integer> {
    private static final String NAME = "plan";
    private static final Pattern GSON_POSITION = Pattern.compile("line (\\d+) column (\\d+)");

    @Option(names = "--profile", paramLabel = "PATH", description = "latency profile JSON (required)")
    Path profilePath;
    @Option(names = "--instances", paramLabel = "N", description = "instances available (required)")
    Integer instances;
    @Option(names = "--gpus-per-instance", paramLabel = "G", description = "default 4")
    int gpusPerInstance = 4;
    @Option(names = "--rate", paramLabel = "R", description = "arrival rate, requests/s (default 0)")
    double rate = 0;
    @Option(names = "--max-batch", paramLabel = "B", description = "default 4")
    int maxBatch = 4;
    @Option(names = "--in", paramLabel = "N", description = "prompt tokens (default 512)")
    int in = 512;
    @Option(names = "--out", paramLabel = "N", description = "output tokens (default 128)")
    int outTokens = 128;
    @Option(names = "--policy", paramLabel = "paper|artifact", description = "default paper")
    String policy = "paper";
    @Option(names = "--model", paramLabel = "opt-6.7b|gpt-20b|llama-30b",
            description = "the paper's model the profile is of (default: from the profile's file name)")
    String model;
    @Option(names = "--min-gpus", paramLabel = "N", description = "minimum GPUs of a generic model (default 1)")
    Integer minGpus;
    @Option(names = "--memory", paramLabel = "artifact|device",
            description = "memory rule (default artifact; device with --model-file)")
    String memory;
    @Option(names = "--on-demand", paramLabel = "K", description = "of the instances, on-demand ones (default 0)")
    int onDemand = 0;
    @Option(names = "--spare", paramLabel = "S", description = "default 0")
    int spare = 0;
    @Option(names = "--acquirable", paramLabel = "A", description = "default 0")
    int acquirable = 0;
    @Option(names = "--tolerance", paramLabel = "X", description = "latency tolerance (default 0.05)")
    double tolerance = 0.05;
    @Option(names = "--model-file", paramLabel = "PATH", description = "the llama2.c checkpoint a profile of ours is of")
    Path modelFile;
    @Option(names = "--device-memory-mib", paramLabel = "MIB", description = "per device (default 15360, a T4's)")
    Integer deviceMemoryMib;

    private final PrintStream out;

    PlanCommand(PrintStream out) {
        this.out = out;
    }

    @Override
    public Integer call() throws UsageException {
        if (profilePath == null) {
            throw new UsageException("plan: --profile PATH is required");
        }
        if (instances == null) {
            throw new UsageException("plan: --instances N is required");
        }
        Path path = profilePath;
        if (!Files.isRegularFile(path)) {
            throw new UsageException("plan: --profile " + path + " is not a file");
        }
        LatencyProfile profile = profile(path);
        Ranges.atLeast(NAME, "--instances", instances, 0);
        Ranges.atLeast(NAME, "--gpus-per-instance", gpusPerInstance, 1);
        decimal("--rate", rate);
        Ranges.atLeast(NAME, "--on-demand", onDemand, 0);
        if (onDemand > instances) {
            throw new UsageException("plan: --on-demand " + onDemand + " exceeds --instances " + instances);
        }

        if (model != null && modelFile != null) {
            throw new UsageException("plan: give --model or --model-file, not both");
        }
        Hardware g4dn = Hardware.G4DN_12XLARGE.withGpusPerInstance(gpusPerInstance);
        long deviceMib = deviceMemoryMib == null ? g4dn.gpuMemoryBytes() >> 20
                : Ranges.atLeast(NAME, "--device-memory-mib", deviceMemoryMib, 1);
        Hardware hw = new Hardware(g4dn.name(), gpusPerInstance, deviceMib << 20, g4dn.networkGbps(),
                g4dn.migrationOverheadSeconds(), g4dn.spotUsdPerHour(), g4dn.onDemandUsdPerHour());
        Ranges.atLeast(NAME, "--in", in, 1);
        Ranges.atLeast(NAME, "--out", outTokens, 0);
        CostModel costModel;
        String defaultMemory = "artifact";
        if (modelFile != null) {
            Path file = modelFile;
            if (!Files.isRegularFile(file)) {
                throw new UsageException("plan: --model-file " + file + " is not a file");
            }
            LlamaConfig config;
            try {
                config = LlamaCheckpoint.load(file).config();
            } catch (IllegalArgumentException | IOException e) {
                throw new UsageException("plan: --model-file " + file + ": " + e.getMessage());
            }
            if ((long) in + outTokens > config.seqLen()) {
                throw new UsageException("plan: --in " + in + " + --out " + outTokens + " tokens exceed the seq_len "
                        + config.seqLen() + " of --model-file " + file);
            }
            try {
                costModel = CostModel.of(profile, file.getFileName().toString(), config, hw);
            } catch (IllegalArgumentException e) {
                throw new UsageException("plan: --profile/--model-file mismatch: " + e.getMessage());
            }
            defaultMemory = "device";
        } else {
            costModel = paperOrGptModel(path, profile, hw);
        }

        ParallelConfigOptimizer.Builder b = ParallelConfigOptimizer.builder(costModel)
                .policy(policy(policy))
                .memoryRule(memoryRule(memory != null ? memory : defaultMemory))
                .maxBatch(Ranges.atLeast(NAME, "--max-batch", maxBatch, 1))
                .promptTokens(in)
                .outputTokens(outTokens)
                .spareInstances(Ranges.atLeast(NAME, "--spare", spare, 0))
                .acquirableInstances(Ranges.atLeast(NAME, "--acquirable", acquirable, 0))
                .latencyTolerance(decimal("--tolerance", tolerance));
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

    private CostModel paperOrGptModel(Path path, LatencyProfile profile, Hardware hw) throws UsageException {
        ModelShape shape;
        int minGpus;
        String modelName = model;
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
        minGpus = this.minGpus == null ? minGpus : Ranges.atLeast(NAME, "--min-gpus", this.minGpus, 1);
        try {
            return CostModel.of(profile, shape, hw, minGpus);
        } catch (IllegalArgumentException e) {
            throw new UsageException("plan: --profile/--model mismatch: " + e.getMessage());
        }
    }

    /** The profile in {@code path}; a file that is not one is a usage error naming what is wrong, in one line. */
    private static LatencyProfile profile(Path path) throws UsageException {
        String text;
        try {
            text = Files.readString(path, StandardCharsets.UTF_8);
        } catch (CharacterCodingException e) {
            throw new UsageException("plan: --profile " + path + " is not a text file (not UTF-8); expected a latency "
                    + "profile JSON as `profile` writes it");
        } catch (IOException e) {
            throw new UsageException("plan: --profile " + path + " cannot be read: " + e.getMessage());
        }
        try {
            return LatencyProfile.parse(text);
        } catch (IllegalArgumentException e) {
            if (e.getCause() instanceof JsonParseException) {
                Matcher m = GSON_POSITION.matcher(String.valueOf(e.getCause().getMessage()));
                throw new UsageException("plan: --profile " + path + " is not valid JSON" + (m.find() ? " (at line "
                        + m.group(1) + ", column " + m.group(2) + ")" : "") + "; expected a latency profile JSON as "
                        + "`profile` writes it");
            }
            throw new UsageException("plan: --profile " + path + ": " + e.getMessage());
        }
    }

    private static double decimal(String option, double x) throws UsageException {
        if (!(x >= 0) || Double.isInfinite(x)) {
            throw new UsageException("plan: " + option + " must be a finite number >= 0, was " + x);
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
