package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link RuncText} on seeded random token streams built from segments whose expected output is known by
 * construction: vocabulary pieces (run.c's bytes), valid characters spelled as byte-fallback tokens (restored),
 * and byte junk run.c drops (truncated or overlong sequences, stray continuation bytes, control bytes).
 */
class RuncTextTest {
    private static Tokenizer tok;

    @BeforeAll
    static void load() throws IOException {
        tok = Tokenizer.load(BundledModel.extracted().tokenizer(), 512);
    }

    private static int byteToken(int b) {
        return b + Tokenizer.BYTE_OFFSET;
    }

    private static byte[] randomCharacter(SplittableRandom r) {
        int cp;
        do {
            cp = switch (r.nextInt(3)) {
                case 0 -> 0x80 + r.nextInt(0x800 - 0x80);
                case 1 -> 0x800 + r.nextInt(0x10000 - 0x800);
                default -> 0x10000 + r.nextInt(0x110000 - 0x10000);
            };
        } while (cp >= 0xD800 && cp <= 0xDFFF);
        return new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void seededRandomStreamsPrintRunCsBytesPlusTheValidCharacters() {
        SplittableRandom r = new SplittableRandom(42);
        int restored = 0;
        for (int c = 0; c < 300; c++) {
            List<Integer> tokens = new ArrayList<>(List.of(Tokenizer.BOS));
            ByteArrayOutputStream expected = new ByteArrayOutputStream();
            ByteArrayOutputStream runc = new ByteArrayOutputStream();
            boolean lastWasTruncated = false;
            int segments = 1 + r.nextInt(30);
            for (int s = 0; s < segments; s++) {
                int kind = r.nextInt(7);
                if (kind == 3 && lastWasTruncated) {
                    kind = 1; // a stray continuation right after a truncated sequence would complete it
                }
                lastWasTruncated = false;
                List<Integer> add = new ArrayList<>();
                byte[] out = new byte[0];
                switch (kind) {
                    case 0 -> add.add(259 + r.nextInt(512 - 259)); // a vocabulary piece: run.c's bytes
                    case 1 -> { // a valid character as byte tokens: restored
                        out = randomCharacter(r);
                        for (byte b : out) {
                            add.add(byteToken(b & 0xFF));
                        }
                        restored++;
                    }
                    case 2 -> { // truncated: lead byte and not all continuations
                        byte[] ch = randomCharacter(r);
                        int keep = 1 + r.nextInt(ch.length - 1);
                        for (int i = 0; i < keep; i++) {
                            add.add(byteToken(ch[i] & 0xFF));
                        }
                        lastWasTruncated = true;
                    }
                    case 3 -> add.add(byteToken(0x80 + r.nextInt(0x40))); // stray continuation
                    case 4 -> { // ASCII control byte other than whitespace
                        int b;
                        do {
                            b = r.nextInt(0x80);
                        } while ((b >= 0x20 && b <= 0x7E) || (b >= '\t' && b <= '\r'));
                        add.add(byteToken(b));
                    }
                    case 5 -> { // printable ASCII or whitespace as a byte token: run.c prints it
                        int b = r.nextBoolean() ? 0x20 + r.nextInt(0x5F) : '\t' + r.nextInt(5);
                        add.add(byteToken(b));
                    }
                    default -> { // invalid: overlong E0 80..9F xx, surrogate ED A0..BF xx, or a never-valid lead
                        int[][] junk = {{0xE0, 0x80 + r.nextInt(0x20), 0x80}, {0xED, 0xA0 + r.nextInt(0x20), 0x80},
                                {0xC0 + r.nextInt(2)}, {0xF5 + r.nextInt(11)}};
                        for (int b : junk[r.nextInt(junk.length)]) {
                            add.add(byteToken(b));
                        }
                    }
                }
                for (int t : add) {
                    byte[] piece = tok.runcOutput(tokens.get(tokens.size() - 1), t);
                    runc.writeBytes(piece);
                    if (kind == 0 || kind == 5) {
                        expected.writeBytes(piece);
                    }
                    tokens.add(t);
                }
                expected.writeBytes(out);
            }
            expected.write('\n');
            runc.write('\n');
            int[] ids = tokens.stream().mapToInt(Integer::intValue).toArray();
            byte[] ours = RuncText.of(tok, ids);
            assertArrayEquals(expected.toByteArray(), ours, "case " + c + " tokens " + tokens);
            assertTrue(RuncText.isValidUtf8(ours) || !RuncText.isValidUtf8(runc.toByteArray()), "case " + c);
        }
        assertTrue(restored > 100, "characters restored: " + restored);
    }

    @Test
    void theCoffeeCupIsRestoredWhereRunCDropsIt() {
        int[] prompt = tok.encode("Lily saw a café ☕", true, false);
        assertEquals("Lily saw a café ☕\n", new String(RuncText.of(tok, prompt), StandardCharsets.UTF_8));
        // cut after two of its three bytes: nothing of it is printed, as in run.c
        int[] cut = java.util.Arrays.copyOf(prompt, prompt.length - 1);
        assertEquals("Lily saw a café \n", new String(RuncText.of(tok, cut), StandardCharsets.UTF_8));
        assertFalse(new String(RuncText.of(tok, cut), StandardCharsets.UTF_8).contains("\uFFFD"));
    }
}
