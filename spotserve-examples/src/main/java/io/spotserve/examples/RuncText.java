package io.spotserve.examples;

import io.spotserve.model.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;

/**
 * The bytes the {@code generate} CLI prints for a token stream: exactly what llama2.c's {@code run.c} prints
 * ({@link Tokenizer#runcOutput}), plus the multi-byte UTF-8 characters that run.c loses.
 *
 * <p>run.c prints {@code safe_printf(decode(prev, token))}, which drops every single-byte piece that is not
 * printable ASCII or whitespace. A character outside the vocabulary is generated as 2–4 byte-fallback tokens
 * ({@code <0xE2> <0x98> <0x95>} for ☕), so run.c prints nothing for it. Here such bytes are collected, and a
 * complete, valid UTF-8 character is printed when its last byte arrives. Everything else is run.c's choice:
 * pieces run.c prints are printed verbatim, and bytes that do not end up as a valid character (a sequence cut
 * off by another token or by the end of the run, stray continuation bytes, ASCII control bytes) are dropped.
 * So removing the restored characters from our output gives run.c's output, byte for byte.
 *
 * <p>Not thread-safe: one instance per generated sequence.
 */
final class RuncText {
    private final Tokenizer tokenizer;
    private int previous;
    private final byte[] pending = new byte[4];
    private int pendingLength;
    private int pendingNeeded;

    /** Text of a sequence that starts after {@code startToken} (BOS for run.c's generate). */
    RuncText(Tokenizer tokenizer, int startToken) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.previous = startToken;
    }

    /** The bytes to print for the next emitted token (often empty while a character is incomplete). */
    byte[] accept(int token) {
        byte[] printed = tokenizer.runcOutput(previous, token);
        byte[] raw = tokenizer.decode(previous, token);
        previous = token;
        if (raw.length == 0) {
            return printed; // an empty piece (a lone space after BOS): nothing printed, nothing cut off
        }
        if (printed.length > 0) {
            pendingLength = 0; // an unfinished character is cut off: run.c dropped its bytes
            return printed;
        }
        int b = raw[0] & 0xFF; // run.c drops only single-byte pieces, so raw is one byte here
        if (b < 0x80) { // an ASCII control byte
            pendingLength = 0;
            return new byte[0];
        }
        if (b <= 0xBF) { // a continuation byte
            if (pendingLength == 0) {
                return new byte[0]; // stray
            }
            pending[pendingLength++] = (byte) b;
            if (pendingLength < pendingNeeded) {
                return new byte[0];
            }
            byte[] character = Arrays.copyOf(pending, pendingLength);
            pendingLength = 0;
            return isValidUtf8(character) ? character : new byte[0];
        }
        pendingLength = 0;
        pendingNeeded = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
        if (pendingNeeded > 0) {
            pending[pendingLength++] = (byte) b;
        }
        return new byte[0];
    }

    /** Ends the sequence: an unfinished character is dropped, as run.c drops its bytes. Returns run.c's newline. */
    byte[] finish() {
        pendingLength = 0;
        return new byte[] {'\n'};
    }

    /** Strict check: no overlong forms, no surrogates, nothing above U+10FFFF. */
    static boolean isValidUtf8(byte[] bytes) {
        try {
            StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes));
            return true;
        } catch (CharacterCodingException e) {
            return false;
        }
    }

    /** Convenience for tests and batch output: the whole text of {@code tokens[1..]} after {@code tokens[0]}. */
    static byte[] of(Tokenizer tokenizer, int[] tokens) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        RuncText text = new RuncText(tokenizer, tokens[0]);
        for (int i = 1; i < tokens.length && tokens[i] != Tokenizer.BOS; i++) {
            out.writeBytes(text.accept(tokens[i]));
        }
        out.writeBytes(text.finish());
        return out.toByteArray();
    }
}
