package io.spotserve.engine;

import io.spotserve.clock.ForwardStep;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * One forward step handed to a pipeline's dispatcher: the batch was laid out in the slot's scratch arrays on the
 * engine thread; {@link #done} completes on the dispatcher when the pipeline has computed its logits (or failed).
 * The engine thread then samples, commits and streams ({@link RequestManager#complete}).
 *
 * @param slot      the pipeline that runs it
 * @param positions batch rows laid out in the scratch arrays
 * @param shape     what the step computes, for the clock's price
 * @param start     when it starts on the engine clock (null: when it is priced), for steps during a migration
 * @param dispatchedAt engine-clock time of the dispatch
 * @param done      completes when the forward pass has ended
 */
record StepInFlight(PipelineSlot slot, int positions, ForwardStep shape, Duration start, Duration dispatchedAt,
                    CompletableFuture<Void> done) {

    /** The inbox command a dispatcher posts when {@code step} has ended. */
    record Ended(StepInFlight step) {
    }
}
