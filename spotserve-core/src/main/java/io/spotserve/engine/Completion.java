package io.spotserve.engine;

import java.time.Duration;
import java.util.Arrays;

/**
 * The result of a finished {@link GenerationRequest}.
 *
 * @param requestId    the engine's id for the request (submission order)
 * @param text         the generated text (prompt excluded)
 * @param tokens       the generated token ids (prompt excluded; a terminating BOS excluded)
 * @param promptLength number of prompt tokens, start token included
 * @param reason       why generation stopped
 * @param submittedAt  engine-clock time of submission
 * @param firstTokenAt engine-clock time the first token was committed
 * @param finishedAt   engine-clock time the last token was committed
 * @param restarts     how often the request lost its KV cache to a preemption and was recomputed
 */
public record Completion(long requestId, String text, int[] tokens, int promptLength, FinishReason reason,
                         Duration submittedAt, Duration firstTokenAt, Duration finishedAt, int restarts) {

    /** Why a request stopped generating. */
    public enum FinishReason {
        /** {@code maxNewTokens} were generated. */
        LENGTH,
        /** The model sampled BOS, run.c's end of text. */
        STOP
    }

    public Completion {
        tokens = tokens.clone();
    }

    @Override
    public int[] tokens() {
        return tokens.clone();
    }

    /** Time from submission to completion. */
    public Duration latency() {
        return finishedAt.minus(submittedAt);
    }

    /** Time from submission to the first generated token. */
    public Duration timeToFirstToken() {
        return firstTokenAt.minus(submittedAt);
    }

    @Override
    public String toString() {
        return "Completion[id=" + requestId + ", " + reason + ", tokens=" + Arrays.toString(tokens) + ", restarts="
                + restarts + ", latency=" + latency() + "]";
    }
}
