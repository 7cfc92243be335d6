package io.spotserve.exec.cpu;

import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.TestPipelines;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelWeights;
import java.util.List;

/**
 * The (source, target) layout pairs that the slice export/import tests walk ({@link CpuSliceBufferTest},
 * {@link CpuSlicePartsTest}), each on packed and on plain rows.
 */
final class SliceLayoutPairs {
    /** An uneven shape: GQA 6/3 heads of 16, hidden 120, no shared classifier, 3 layers. */
    static final LlamaConfig UNEVEN = new LlamaConfig(96, 120, 3, 6, 3, 300, 64, false);

    /** One check of slices moving from a pipeline of {@code from} to one of {@code to}. */
    interface Check {
        void check(Executor cpu, ModelWeights model, ShardLayout from, ShardLayout to);
    }

    private SliceLayoutPairs() {
    }

    /** An fp32 CPU executor, one thread, vector kernels; {@code packed}: its matrices in packed rows, else plain. */
    static Executor fp32(boolean packed) {
        return new CpuExecutor(new ExecutorOptions(1, true), packed ? StageShard.PACK_MIN_COLUMNS : Integer.MAX_VALUE);
    }

    /** Every layout of {@code model}'s shape, each with the one four further on. */
    static void everyLayout(ModelWeights model, Check c) {
        walk(model, TestPipelines.layouts(model.config()), 4, c);
    }

    /** Five layouts of the {@link #UNEVEN} shape (whole, P3M3, 2+1 layers over M3, P1M3, P3M1), each with the next. */
    static void unevenLayouts(ModelWeights model, Check c) {
        LlamaConfig u = model.config();
        walk(model, List.of(ShardLayout.of(u, 1, 1), ShardLayout.of(u, 3, 3), ShardLayout.balanced(u, List.of(2, 1), 3),
                ShardLayout.of(u, 1, 3), ShardLayout.of(u, 3, 1)), 1, c);
    }

    private static void walk(ModelWeights model, List<ShardLayout> layouts, int shift, Check c) {
        for (boolean packed : new boolean[] {true, false}) {
            try (Executor cpu = fp32(packed)) {
                for (int i = 0; i < layouts.size(); i++) {
                    c.check(cpu, model, layouts.get(i), layouts.get((i + shift) % layouts.size()));
                }
            }
        }
    }
}
