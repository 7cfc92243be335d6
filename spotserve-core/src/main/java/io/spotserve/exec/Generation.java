package io.spotserve.exec;

import io.spotserve.model.Tokenizer;
import java.util.Arrays;
import java.util.Objects;

/**
 * One sequence of llama2.c's {@code run.c} {@code generate()} loop, as a state machine that any driver (the
 * {@link Generator}, or the serving engine with iteration-level batching) steps with the logits it computed.
 *
 * <p>Why a separate class: SpotServe resumes interrupted requests from their committed tokens, so every code
 * path that decodes must follow the same rules, and our ground truth is run.c's output. The rules, exactly:
 * <ul>
 *   <li>{@code steps} counts <em>positions</em>, prompt included; {@code 0} or more than {@code seq_len} means
 *       {@code seq_len} ({@link #effectiveSteps}).</li>
 *   <li>Position 0 is fed the first prompt token (BOS). At position {@code pos} the next token is the forced
 *       prompt token {@code prompt[pos + 1]} while {@code pos < prompt.length - 1}, else it is sampled from the
 *       logits of position {@code pos}. So a run may end inside its prompt, and only positions from
 *       {@code prompt.length - 1} on need logits.</li>
 *   <li>If the next token is BOS the run stops and the BOS is not emitted. Otherwise it is emitted (run.c
 *       prints it, forced prompt tokens included) and becomes the input of the next position.</li>
 * </ul>
 *
 * <p>Not thread-safe: one instance per sequence. Its {@link Sampler} state advances with every sampled token.
 */
public final class Generation {
    private final int[] promptTokens;
    private final int steps;
    private final Sampler sampler;
    private final int stopToken;
    /** tokens[0] = promptTokens[0]; tokens[i] = the token chosen at position i - 1 (final BOS included). */
    private final int[] tokens;
    private int count = 1;
    private boolean stoppedOnBos;

    /**
     * Starts a run.
     *
     * @param promptTokens the encoded prompt, BOS first (as {@code Tokenizer.encode(prompt, true, false)})
     * @param steps        run.c's {@code -n}: positions to run, prompt included; 0 means {@code seqLen}
     * @param seqLen       the model's {@code seq_len}
     * @param sampling     how tokens after the prompt are chosen
     * @throws IllegalArgumentException if the prompt is empty, {@code steps < 0} or {@code seqLen < 1}
     */
    public Generation(int[] promptTokens, int steps, int seqLen, SamplingParams sampling) {
        this(promptTokens, steps, seqLen, sampling, Tokenizer.BOS);
    }

    /**
     * Starts a run that stops on {@code stopToken} instead of BOS (a model's {@code LlamaConfig.stopToken()}: EOS
     * for Llama 3).
     */
    public Generation(int[] promptTokens, int steps, int seqLen, SamplingParams sampling, int stopToken) {
        Objects.requireNonNull(promptTokens, "promptTokens");
        this.stopToken = stopToken;
        Objects.requireNonNull(sampling, "sampling");
        if (promptTokens.length == 0) {
            throw new IllegalArgumentException("prompt needs at least one token (BOS), got none");
        }
        this.promptTokens = promptTokens.clone();
        this.steps = effectiveSteps(steps, seqLen);
        this.sampler = new Sampler(sampling);
        this.tokens = new int[this.steps + 1];
        this.tokens[0] = promptTokens[0];
    }

    /**
     * The number of positions run.c runs for {@code -n steps}: {@code seqLen} when {@code steps} is 0 or more
     * than {@code seqLen}, else {@code steps}.
     *
     * @throws IllegalArgumentException if {@code steps < 0} (run.c would silently treat it as 0) or
     *                                  {@code seqLen < 1}
     */
    public static int effectiveSteps(int steps, int seqLen) {
        if (seqLen < 1) {
            throw new IllegalArgumentException("seq_len must be >= 1, was " + seqLen);
        }
        if (steps < 0) {
            throw new IllegalArgumentException("steps must be >= 0 (0 = seq_len " + seqLen + "), was " + steps);
        }
        return steps == 0 || steps > seqLen ? seqLen : steps;
    }

    /** The prompt tokens (a copy). */
    public int[] promptTokens() {
        return promptTokens.clone();
    }

    /** The token that ends the run (BOS for llama2.c models). */
    public int stopToken() {
        return stopToken;
    }

    /** Number of prompt tokens, BOS included. */
    public int promptLength() {
        return promptTokens.length;
    }

    /** The positions this run may use at most (the effective steps); the KV capacity it needs. */
    public int steps() {
        return steps;
    }

    /** The sampling parameters. */
    public SamplingParams sampling() {
        return sampler.params();
    }

    /** The next position to run: the number of positions already advanced past. */
    public int position() {
        return count - 1;
    }

    /** Whether the run is over: all steps used, or BOS was chosen. */
    public boolean isDone() {
        return stoppedOnBos || position() >= steps;
    }

    /** Whether the run ended because BOS was chosen (run.c's {@code if (next == 1) break;}). */
    public boolean stoppedOnBos() {
        return stoppedOnBos;
    }

    /** Whether {@link #advance} at the current position needs that position's logits (the prompt is consumed). */
    public boolean needsLogits() {
        return !isDone() && position() >= promptTokens.length - 1;
    }

    /**
     * The tokens to feed at positions {@link #position()}, {@code position() + 1}, ...: up to and including the
     * first position that needs logits, or up to the last step. While the prompt is being consumed this is the
     * rest of the prompt (one prefill block); afterwards it is the single last token. Empty when done.
     */
    public int[] nextInputs() {
        if (isDone()) {
            return new int[0];
        }
        int pos = position();
        if (pos >= promptTokens.length - 1) {
            return new int[] {tokens[pos]};
        }
        int end = Math.min(promptTokens.length, steps);
        return Arrays.copyOfRange(promptTokens, pos, end);
    }

    /**
     * Completes the current position: takes the forced prompt token, or samples from {@code logits}.
     *
     * @param logits the logits of the current position, required when {@link #needsLogits()}, ignored
     *               otherwise (may be null then). <b>Overwritten</b> by sampling at temperature &gt; 0.
     * @return the chosen token; {@link Tokenizer#BOS} means the run stopped and nothing is emitted
     * @throws IllegalStateException    if the run is already done
     * @throws IllegalArgumentException if logits are needed but null or empty; nothing changes then
     */
    public int advance(float[] logits) {
        if (isDone()) {
            throw new IllegalStateException("generation already done after " + position() + " positions"
                    + (stoppedOnBos ? " (stopped on BOS)" : " (steps " + steps + ")"));
        }
        int pos = position();
        int next;
        if (pos < promptTokens.length - 1) {
            next = promptTokens[pos + 1];
        } else {
            if (logits == null || logits.length == 0) {
                throw new IllegalArgumentException("position " + pos + " samples the next token and needs logits, "
                        + "got " + (logits == null ? "null" : "an empty array"));
            }
            next = sampler.sample(logits);
        }
        tokens[count++] = next;
        if (next == stopToken) {
            stoppedOnBos = true;
        }
        return next;
    }

    /**
     * Every token of the run so far: the first prompt token, then the token chosen at each position (forced
     * prompt tokens, then sampled ones), including the final BOS when it ended the run. So
     * {@code tokens().length - 1 == position()}.
     */
    public int[] tokens() {
        return Arrays.copyOf(tokens, count);
    }

    /** The emitted tokens: {@link #tokens()} without the first one and without a final BOS. */
    public int[] emitted() {
        int end = stoppedOnBos ? count - 1 : count;
        return Arrays.copyOfRange(tokens, 1, end);
    }

    @Override
    public String toString() {
        return "Generation[position " + position() + "/" + steps + ", prompt " + promptTokens.length + " tokens"
                + (stoppedOnBos ? ", stopped on BOS" : "") + "]";
    }
}
