package io.spotserve.plan;

import java.util.Locale;

/**
 * The three models of the SpotServe evaluation (paper Table 1, §6) with the [A] proxy architectures, the
 * artifact's latency-profile file and its minimum GPU count ({@code min_world_size}, used by the artifact's
 * memory-feasibility rule P &gt;= ceil(min_ws / M)). Sizes are FP32: 24.8 / 75.5 / 111.7 GiB here against
 * the paper's rounded 25.0 / 74.5 / 111.8 GB.
 */
public enum PaperModel {
    /** OPT-6.7B: 32 layers, h=4096, FFN 16384, vocab 51200; min 4 GPUs. */
    OPT_6_7B("OPT-6.7B", new ModelShape("OPT-6.7B", 32, 4096, 16384, 51200, 32, 32, 2048, 4),
            "megatron_6.7B_profile", 4),
    /** GPT-20B: 44 layers, h=6144, FFN 24576; min 12 GPUs with memory-optimized migration (16 without). */
    GPT_20B("GPT-20B", new ModelShape("GPT-20B", 44, 6144, 24576, 51200, 64, 64, 2048, 4),
            "megatron_h6144_profile", 12),
    /** "LLaMA-30B": the artifact's GPT-shaped stand-in, 48 layers, h=7168, FFN 28672; min 16 GPUs. */
    LLAMA_30B("LLaMA-30B", new ModelShape("LLaMA-30B", 48, 7168, 28672, 51200, 56, 56, 2048, 4),
            "megatron_h7168_profile", 16);

    private final String displayName;
    private final ModelShape shape;
    private final String profileName;
    private final int artifactMinGpus;

    PaperModel(String displayName, ModelShape shape, String profileName, int artifactMinGpus) {
        this.displayName = displayName;
        this.shape = shape;
        this.profileName = profileName;
        this.artifactMinGpus = artifactMinGpus;
    }

    /** The paper's name, e.g. "GPT-20B". */
    public String displayName() {
        return displayName;
    }

    /** Architecture sizes. */
    public ModelShape shape() {
        return shape;
    }

    /** Base name of the artifact's profile file, e.g. {@code megatron_h6144_profile}. */
    public String profileName() {
        return profileName;
    }

    /** The artifact's {@code min_world_size}. */
    public int artifactMinGpus() {
        return artifactMinGpus;
    }

    /**
     * The model whose profile this is, from a profile name or file name ({@code megatron_6.7B_profile.json},
     * {@code megatron_h6144}, ...), or a model name ({@code gpt-20b}, {@code OPT_6_7B}).
     *
     * @throws IllegalArgumentException if it names none of the three
     */
    public static PaperModel fromName(String name) {
        String n = name.toLowerCase(Locale.ROOT).replace('\\', '/');
        n = n.substring(n.lastIndexOf('/') + 1);
        for (PaperModel m : values()) {
            String key = m.profileName.toLowerCase(Locale.ROOT).replace("_profile", "");
            String display = m.displayName.toLowerCase(Locale.ROOT);
            if (n.startsWith(key + "_") || n.startsWith(key + ".") || n.equals(key)
                    || n.equals(display) || n.equals(m.name().toLowerCase(Locale.ROOT))) {
                return m;
            }
        }
        throw new IllegalArgumentException("'" + name + "' names none of the paper's models; expected a profile "
                + "megatron_6.7B / megatron_h6144 / megatron_h7168 or a model opt-6.7b / gpt-20b / llama-30b");
    }
}
