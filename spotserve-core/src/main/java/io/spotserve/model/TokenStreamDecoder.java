package io.spotserve.model;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Turns a stream of generated token ids into text, one token at a time, for streaming responses.
 *
 * <p>Why it exists: a character outside the vocabulary is generated as several byte-fallback tokens
 * ({@code <0xE2> <0x98> <0x95>} for ☕). {@code run.c} prints each byte on its own and drops the non-ASCII
 * ones; a streaming API must instead hold the bytes back until the character is complete. {@link #accept}
 * therefore returns only complete characters and keeps an unfinished UTF-8 sequence (at most 3 bytes) for
 * the next token; bytes that can never become valid UTF-8 are emitted as U+FFFD right away.
 *
 * <p>The leading-space rule follows run.c: the piece of a token that follows BOS loses its leading space.
 * Control characters are passed through unchanged (filtering for display is the caller's choice).
 *
 * <p>Not thread-safe: one decoder per sequence. Obtain one from {@link Tokenizer#streamDecoder(int)}.
 */
public final class TokenStreamDecoder {
    private final Tokenizer tokenizer;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    private int previous;
    private byte[] pending = new byte[0];

    TokenStreamDecoder(Tokenizer tokenizer, int startToken) {
        this.tokenizer = tokenizer;
        this.previous = startToken;
    }

    /**
     * Decodes the next token of the sequence.
     *
     * @return the characters this token completes, possibly empty
     * @throws IllegalArgumentException if the id is outside the vocabulary (the decoder is left unchanged)
     */
    public String accept(int token) {
        byte[] piece = tokenizer.decode(previous, token);
        previous = token;
        byte[] all = Arrays.copyOf(pending, pending.length + piece.length);
        System.arraycopy(piece, 0, all, pending.length, piece.length);
        return decode(all, false);
    }

    /**
     * Ends the sequence: an unfinished UTF-8 sequence still held back becomes U+FFFD.
     *
     * @return the remaining characters, usually empty
     */
    public String finish() {
        return decode(pending, true);
    }

    /** The last token fed (or the start token): the "previous token" of run.c's decode. */
    public int previousToken() {
        return previous;
    }

    /** Whether bytes of an unfinished character are held back. */
    public boolean hasPendingBytes() {
        return pending.length > 0;
    }

    private String decode(byte[] bytes, boolean endOfInput) {
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length + 1);
        utf8.reset();
        CoderResult result = utf8.decode(in, out, endOfInput);
        if (endOfInput) {
            utf8.flush(out);
        }
        if (result.isOverflow()) {
            throw new IllegalStateException("UTF-8 output buffer too small for " + bytes.length + " bytes");
        }
        pending = Arrays.copyOfRange(bytes, in.position(), bytes.length);
        return out.flip().toString();
    }
}
