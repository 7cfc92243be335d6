package io.spotserve.bench.engine;

import io.spotserve.bench.eval.Evaluation;
import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Models and layouts the timing-executor tests share: the real stories260K checkpoint and paper-size shapes. */
final class TestModels {
    /** OPT-6.7B as a LLaMA shape: 32 layers of width 4096, 32 heads, FFN 10920 (3 matrices ≈ OPT's 2 of 16384). */
    static final LlamaConfig OPT_6_7B = new LlamaConfig(4096, 10920, 32, 32, 32, 51200, 2048, false);
    /** LLaMA-30B-size: 48 layers of width 7168, 56 heads, FFN 19112. */
    static final LlamaConfig LLAMA_30B = new LlamaConfig(7168, 19112, 48, 56, 56, 51200, 2048, false);

    private static LlamaCheckpoint stories;

    private TestModels() {
    }

    /** The real stories260K checkpoint from ../shared/models (fails, not skips, when missing). */
    static synchronized LlamaCheckpoint stories260K() {
        if (stories == null) {
            try {
                stories = LlamaCheckpoint.load(Evaluation.locateShared().resolve("models/stories260K.bin"));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return stories;
    }

    /** P stages (layers spread as evenly as possible, earlier stages one more) × M shards. */
    static ShardLayout layout(LlamaConfig c, int stages, int shards) {
        List<Integer> counts = new ArrayList<>();
        for (int s = 0; s < stages; s++) {
            counts.add(c.layers() / stages + (s < c.layers() % stages ? 1 : 0));
        }
        return ShardLayout.balanced(c, counts, shards);
    }

    /** One fresh device of {@code capacity} bytes per position, stage-major, on instance {@code tag}. */
    static List<Device> devices(Executor ex, ShardLayout layout, String tag, long capacity) {
        List<Device> out = new ArrayList<>();
        for (int i = 0; i < layout.stages() * layout.shards(); i++) {
            out.add(ex.createDevice(new DeviceId(tag, i), capacity));
        }
        return out;
    }
}
