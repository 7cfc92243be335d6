package io.spotserve.engine;

import io.spotserve.exec.SamplingParams;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;

/**
 * One generation job submitted to the {@link ServingEngine}: a prompt (text, encoded with a leading BOS like
 * run.c, or explicit token ids whose first id is the start token), how many new tokens to generate, how to
 * sample them and an optional deadline.
 *
 * <p>{@code maxNewTokens} counts generated tokens (not run.c's {@code steps}, which also counts prompt
 * positions): a serving API promises output length, and it is independent of the prompt. Generation stops
 * earlier when the model samples BOS (run.c's end-of-text convention); that token is not part of the output.
 * The request's {@link SamplingParams} carry the seed, so a request re-run after a preemption samples the same
 * tokens. Checks that need the model (prompt length against the context) happen at submission.
 *
 * @param prompt       prompt text, or {@code null} when {@code promptTokens} is given
 * @param promptTokens prompt token ids, or {@code null} when {@code prompt} is given
 * @param maxNewTokens most tokens to generate, {@code >= 1}
 * @param sampling     temperature, top-p and seed
 * @param timeout      how long after submission the request may take on the engine clock; {@code null} = none
 */
public record GenerationRequest(String prompt, int[] promptTokens, int maxNewTokens, SamplingParams sampling,
                                Duration timeout) {

    public GenerationRequest {
        if ((prompt == null) == (promptTokens == null)) {
            throw new IllegalArgumentException("exactly one of prompt (text) and promptTokens must be given, got "
                    + (prompt == null ? "neither" : "both"));
        }
        if (promptTokens != null) {
            if (promptTokens.length == 0) {
                throw new IllegalArgumentException("promptTokens must hold at least the start token, was empty");
            }
            promptTokens = promptTokens.clone();
        }
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("maxNewTokens must be >= 1, was " + maxNewTokens);
        }
        Objects.requireNonNull(sampling, "sampling");
        if (timeout != null && (timeout.isNegative() || timeout.isZero())) {
            throw new IllegalArgumentException("timeout must be > 0, was " + timeout);
        }
    }

    /** A greedy request for {@code prompt} generating up to {@code maxNewTokens} tokens. */
    public static GenerationRequest of(String prompt, int maxNewTokens) {
        return builder().prompt(prompt).maxNewTokens(maxNewTokens).build();
    }

    /** A builder; defaults: greedy, 1.0 top-p, seed 1, no timeout. */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public int[] promptTokens() {
        return promptTokens == null ? null : promptTokens.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GenerationRequest r && Objects.equals(prompt, r.prompt)
                && Arrays.equals(promptTokens, r.promptTokens) && maxNewTokens == r.maxNewTokens
                && sampling.equals(r.sampling) && Objects.equals(timeout, r.timeout);
    }

    @Override
    public int hashCode() {
        return Objects.hash(prompt, Arrays.hashCode(promptTokens), maxNewTokens, sampling, timeout);
    }

    @Override
    public String toString() {
        return "GenerationRequest[" + (prompt != null ? "prompt=\"" + prompt + "\"" : "promptTokens="
                + Arrays.toString(promptTokens)) + ", maxNewTokens=" + maxNewTokens + ", " + sampling
                + (timeout != null ? ", timeout=" + timeout : "") + "]";
    }

    /** Builds a {@link GenerationRequest}; sampling knobs are validated (field and value named) in {@link #build()}. */
    public static final class Builder {
        private String prompt;
        private int[] promptTokens;
        private int maxNewTokens = 16;
        private float temperature = 0f;
        private float topP = 1f;
        private long seed = 1L;
        private Duration timeout;

        private Builder() {
        }

        /** Prompt text (encoded with a leading BOS); replaces prompt tokens given before. */
        public Builder prompt(String text) {
            this.prompt = Objects.requireNonNull(text, "prompt");
            this.promptTokens = null;
            return this;
        }

        /** Prompt token ids, the first is the start token (usually BOS = 1); replaces a prompt text given before. */
        public Builder promptTokens(int... tokens) {
            this.promptTokens = Objects.requireNonNull(tokens, "promptTokens").clone();
            this.prompt = null;
            return this;
        }

        /** Most tokens to generate; default 16. */
        public Builder maxNewTokens(int n) {
            this.maxNewTokens = n;
            return this;
        }

        /** Sampling temperature, {@code >= 0}; 0 (default) = greedy. */
        public Builder temperature(float t) {
            this.temperature = t;
            return this;
        }

        /** Nucleus mass in (0, 1]; default 1 (off). */
        public Builder topP(float p) {
            this.topP = p;
            return this;
        }

        /** Seed of the request's sampler, non-zero; default 1. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** All three sampling knobs at once. */
        public Builder sampling(SamplingParams params) {
            this.temperature = params.temperature();
            this.topP = params.topP();
            this.seed = params.seed();
            return this;
        }

        /** Deadline relative to submission, on the engine clock; {@code null} = none. */
        public Builder timeout(Duration timeout) {
            this.timeout = timeout;
            return this;
        }

        /**
         * The request.
         *
         * @throws IllegalArgumentException naming the field and value: no or two prompts, maxNewTokens &lt; 1,
         *                                  temperature negative/NaN/infinite, topP outside (0, 1], seed 0, timeout &le; 0
         */
        public GenerationRequest build() {
            return new GenerationRequest(prompt, promptTokens, maxNewTokens, new SamplingParams(temperature, topP, seed),
                    timeout);
        }
    }
}
