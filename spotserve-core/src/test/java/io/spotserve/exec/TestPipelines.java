package io.spotserve.exec;

import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import java.util.ArrayList;
import java.util.List;

/** Test helpers: build loaded pipelines and run run.c-style greedy decoding on them. */
public final class TestPipelines {
    private TestPipelines() {
    }

    /** Devices for every position of {@code layout}, each with {@code capacity} bytes, named prefix/index. */
    public static List<Device> devices(Executor executor, ShardLayout layout, String prefix, long capacity) {
        List<Device> out = new ArrayList<>();
        for (int i = 0; i < layout.stages() * layout.shards(); i++) {
            out.add(executor.createDevice(new DeviceId(prefix, i), capacity));
        }
        return out;
    }

    /** A pipeline of {@code layout} on fresh roomy devices, weights loaded from {@code checkpoint}. */
    public static Pipeline loaded(Executor executor, io.spotserve.model.ModelWeights checkpoint, ShardLayout layout, String prefix,
                                  int maxBatch) {
        Pipeline p = executor.createPipeline(layout, devices(executor, layout, prefix, 1L << 30), maxBatch);
        p.loadWeights(checkpoint);
        return p;
    }

    /** Greedy decoding as run.c does it: position 0 is {@code first}; returns {@code steps} generated ids. */
    public static int[] greedy(Pipeline p, long seq, int first, int steps) {
        p.openSequence(seq, steps);
        int[] out = new int[steps];
        int token = first;
        for (int pos = 0; pos < steps; pos++) {
            float[][] logits = p.decode(new long[] {seq}, new int[] {token}, new int[] {pos});
            token = ReferenceLlama.argmax(logits[0]);
            out[pos] = token;
        }
        p.closeSequence(seq);
        return out;
    }

    /**
     * run.c's loop on one pipeline: the prompt's tokens forced one position per call, then greedy ids until
     * {@code maxNew} are generated or BOS ends the text (BOS is not returned).
     */
    public static int[] greedyAfterPrompt(Pipeline p, int[] prompt, int maxNew) {
        p.openSequence(7, prompt.length + maxNew);
        List<Integer> out = new ArrayList<>();
        int token = prompt[0];
        for (int pos = 0; out.size() < maxNew; pos++) {
            float[] logits = p.decode(new long[] {7}, new int[] {token}, new int[] {pos})[0];
            if (pos < prompt.length - 1) {
                token = prompt[pos + 1];
                continue;
            }
            token = ReferenceLlama.argmax(logits);
            if (token == io.spotserve.model.Tokenizer.BOS) {
                break;
            }
            out.add(token);
        }
        p.closeSequence(7);
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Every (P, M) with P, M in {1, 2, 4} valid for the model, P = 4 on 5 layers as [2, 1, 1, 1]. */
    public static List<ShardLayout> layouts(io.spotserve.model.LlamaConfig c) {
        List<ShardLayout> out = new ArrayList<>();
        for (int pStages : new int[] {1, 2, 4}) {
            for (int m : new int[] {1, 2, 4}) {
                if (c.layers() % pStages == 0) {
                    out.add(ShardLayout.of(c, pStages, m));
                } else {
                    List<Integer> counts = new ArrayList<>();
                    for (int s = 0; s < pStages; s++) {
                        counts.add(c.layers() / pStages + (s < c.layers() % pStages ? 1 : 0));
                    }
                    out.add(ShardLayout.balanced(c, counts, m));
                }
            }
        }
        return out;
    }
}
