package io.spotserve.exec;

/**
 * How the next token is chosen from the logits: the three knobs of llama2.c's {@code run.c} sampler.
 *
 * <p>Part of a request, so a request that is re-run after preemption samples the same tokens: with the
 * same seed and the same logits, {@link Sampler} reproduces run.c's choices exactly.
 *
 * @param temperature {@code 0} = greedy argmax; otherwise logits are divided by it before the softmax.
 *                    Must be finite and {@code >= 0}.
 * @param topP        nucleus mass in {@code (0, 1]}; {@code 1} turns top-p off (plain multinomial sampling)
 * @param seed        initial state of the xorshift64* generator; must not be {@code 0} (a fixed point of
 *                    xorshift; run.c replaces 0 by the clock). All 64 bits are used, as run.c's
 *                    {@code unsigned long long} state.
 */
public record SamplingParams(float temperature, float topP, long seed) {

    public SamplingParams {
        if (!(temperature >= 0f) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be finite and >= 0, was " + temperature);
        }
        if (!(topP > 0f && topP <= 1f)) {
            throw new IllegalArgumentException("topP must be in (0, 1], was " + topP);
        }
        if (seed == 0) {
            throw new IllegalArgumentException(
                    "seed must be non-zero, was 0 (state 0 is a fixed point of the xorshift64* generator)");
        }
    }

    /** Greedy decoding (temperature 0): deterministic, the seed is never used. */
    public static SamplingParams greedy() {
        return new SamplingParams(0f, 1f, 1L);
    }

    /** Whether this is greedy argmax decoding. */
    public boolean isGreedy() {
        return temperature == 0f;
    }
}
