package io.spotserve.engine;

/**
 * One generated token as streamed to a {@link java.util.concurrent.Flow.Subscriber}: committed, so it is never
 * retracted or repeated, even when the request is moved to another pipeline after a preemption.
 *
 * @param index position among the request's generated tokens, from 0
 * @param id    the token id
 * @param text  the characters this token completes (UTF-8 sequences split across byte tokens are held back
 *              until complete, so this may be empty)
 */
public record Token(int index, int id, String text) {
}
