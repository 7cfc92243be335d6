package io.spotserve.examples;

import io.spotserve.exec.Device;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorProvider;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.Sampler;
import io.spotserve.exec.SamplingParams;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.Tokenizer;
import io.spotserve.plan.DeviceId;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The oracle {@code replay} checks its completions against: each prompt generated greedily on one device, alone, one
 * token per forward step (run.c's loop), never interrupted. A request that a preemption interrupted must still
 * produce exactly these tokens, whether it resumed with its migrated KV cache or recomputed it.
 */
final class SoloOracle {
    private final Map<String, int[]> expected = new HashMap<>();

    private SoloOracle() {
    }

    /** Greedy solo outputs of {@code prompts}, {@code tokens} new tokens each (fewer where the model samples BOS). */
    static SoloOracle of(ModelWeights checkpoint, Tokenizer tokenizer, List<String> prompts, int tokens) {
        SoloOracle oracle = new SoloOracle();
        try (Executor executor = ExecutorProvider.best().create()) {
            Device device = executor.createDevice(new DeviceId("solo", 0), 1L << 30);
            try (Pipeline pipeline = executor.createPipeline(ShardLayout.of(checkpoint.config(), 1, 1),
                    List.of(device), 1)) {
                pipeline.loadWeights(checkpoint);
                long sequence = 0;
                for (String prompt : prompts) {
                    if (!oracle.expected.containsKey(prompt)) {
                        int[] ids = tokenizer.encode(prompt, true, false);
                        oracle.expected.put(prompt, greedy(pipeline, sequence++, ids, tokens, tokenizer.bosId()));
                    }
                }
            }
        }
        return oracle;
    }

    private static int[] greedy(Pipeline pipeline, long sequence, int[] prompt, int tokens, int bos) {
        Sampler sampler = new Sampler(SamplingParams.greedy());
        pipeline.openSequence(sequence, prompt.length + tokens);
        try {
            List<Integer> out = new ArrayList<>();
            int token = prompt[0];
            for (int pos = 0; out.size() < tokens; pos++) {
                float[] logits = pipeline.decode(new long[] {sequence}, new int[] {token}, new int[] {pos})[0];
                if (pos < prompt.length - 1) {
                    token = prompt[pos + 1];
                    continue;
                }
                int next = sampler.sample(logits);
                if (next == bos) {
                    break; // run.c's end of text
                }
                out.add(next);
                token = next;
            }
            return out.stream().mapToInt(Integer::intValue).toArray();
        } finally {
            pipeline.closeSequence(sequence);
        }
    }

    /** Whether {@code generated} is exactly the solo output of {@code prompt}. */
    boolean matches(String prompt, int[] generated) {
        int[] want = expected.get(prompt);
        if (want == null) {
            throw new IllegalArgumentException("no solo output for prompt '" + prompt + "'");
        }
        return Arrays.equals(want, generated);
    }
}
