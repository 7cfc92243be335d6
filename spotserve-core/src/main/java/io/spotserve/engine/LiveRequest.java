package io.spotserve.engine;

import io.spotserve.exec.Sampler;
import io.spotserve.model.TokenStreamDecoder;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;

/**
 * Engine-side state of one accepted request. Owned by the engine thread, except {@link #future} and the
 * publisher, which are thread-safe. The committed tokens and the sampler live here, not on a device, so a
 * preemption loses at most the KV cache: the request resumes from its committed step.
 */
final class LiveRequest {
    final long id;
    final GenerationRequest request;
    final int[] prompt;
    final Sampler sampler;
    final CompletableFuture<Completion> future;
    final TokenPublisher publisher;
    final TokenStreamDecoder decoder;
    final StringBuilder text = new StringBuilder();
    final Duration submittedAt;
    final Duration deadline;
    int[] generated;
    int generatedCount;
    Duration firstTokenAt;
    int restarts;
    PipelineSlot slot;
    /** Its KV cache parked in host memory while it waits for a pipeline (see {@link KvParking}), or null. */
    java.util.List<KvParking.Piece> parked;
    /** Positions the parked cache holds. */
    int parkedLength;
    /** Whether it still counts against the admission queue's capacity (until first admitted). */
    boolean countedInQueue = true;

    LiveRequest(long id, GenerationRequest request, int[] prompt, TokenStreamDecoder decoder,
                CompletableFuture<Completion> future, TokenPublisher publisher, Duration submittedAt) {
        this.id = id;
        this.request = request;
        this.prompt = prompt;
        this.sampler = new Sampler(request.sampling());
        this.future = future;
        this.publisher = publisher;
        this.decoder = decoder;
        this.submittedAt = submittedAt;
        this.deadline = request.timeout() == null ? null : saturatedSum(submittedAt, request.timeout());
        this.generated = new int[Math.min(request.maxNewTokens(), 64)];
    }

    /** {@code a + b}, or the largest Duration when the sum overflows (a deadline that never comes). */
    static Duration saturatedSum(Duration a, Duration b) {
        try {
            return a.plus(b);
        } catch (ArithmeticException e) {
            return Duration.ofSeconds(Long.MAX_VALUE, 999_999_999);
        }
    }

    /** Prompt plus committed tokens: the positions whose KV cache a pipeline must hold before the next sample. */
    int totalTokens() {
        return prompt.length + generatedCount;
    }

    int tokenAt(int position) {
        return position < prompt.length ? prompt[position] : generated[position - prompt.length];
    }

    void commit(int token) {
        if (generatedCount == generated.length) {
            generated = Arrays.copyOf(generated, Math.min(request.maxNewTokens(), generated.length * 2));
        }
        generated[generatedCount++] = token;
    }

    int[] generatedTokens() {
        return Arrays.copyOf(generated, generatedCount);
    }

    /** Whether the caller gave up on it (future cancelled or completed from outside, stream cancelled). */
    boolean abandoned() {
        return future.isDone() || (publisher != null && publisher.isCancelled());
    }
}
