package io.spotserve.model;

import io.spotserve.testing.TsvFixtures;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tokenizer on the real tok512.bin, checked against outputs of Karpathy's run.c (its encode(), decode()
 * and safe_printf() called from a small C harness; see spotserve-examples/src/test/resources/runc/README.md).
 */
class TokenizerTest {
    private static final HexFormat HEX = HexFormat.of();
    private static Tokenizer tok;

    @BeforeAll
    static void load() throws IOException {
        tok = Tokenizer.load(SharedData.tok512(), 512);
    }

    @Test
    void readsTheRealFile() {
        assertEquals(512, tok.vocabSize());
        assertEquals(7, tok.maxTokenLength());
        assertEquals("<unk>", text(tok.piece(Tokenizer.UNK)));
        assertEquals("\n<s>\n", text(tok.piece(Tokenizer.BOS)));
        assertEquals("\n</s>\n", text(tok.piece(Tokenizer.EOS)));
        assertEquals("<0x00>", text(tok.piece(3)));
        assertEquals("<0xFF>", text(tok.piece(258)));
        assertEquals(" t", text(tok.piece(259)));
        assertEquals(-1f, tok.score(260));
        assertEquals(259, tok.lookup(" t".getBytes(StandardCharsets.UTF_8)));
        assertEquals(-1, tok.lookup("not a piece".getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void promptsEncodeToTheIdsRunCProduces() {
        // ids printed by an instrumented run.c for the reference prompts (runc/index.json)
        assertArrayEquals(new int[] {1}, tok.encode("", true, false));
        assertArrayEquals(new int[] {1, 403, 407, 261, 378}, tok.encode("Once upon a time", true, false));
        assertArrayEquals(new int[] {1, 317, 269, 368, 302}, tok.encode("Lily and Ben", true, false));
        // é is a vocabulary piece (485); ☕ is not, so its three UTF-8 bytes fall back to ids byte+3
        assertArrayEquals(new int[] {1, 317, 394, 261, 280, 412, 431, 485, 410, 229, 155, 152},
                tok.encode("Lily saw a café ☕", true, false));
        assertArrayEquals(new int[] {403, 407, 261, 378, 2}, tok.encode("Once upon a time", false, true));
    }

    @Test
    void encodeMatchesRunCOnEveryRecordedText() throws IOException {
        List<String[]> rows = rows("tok512-encode-runc.tsv");
        assertTrue(rows.size() >= 150, "fixture rows: " + rows.size());
        for (String[] row : rows) {
            String text = new String(HEX.parseHex(row[0]), StandardCharsets.UTF_8);
            assertArrayEquals(ids(row[1]), tok.encode(text, true, false), () -> "bos encode of " + quote(text));
            assertArrayEquals(ids(row[2]), tok.encode(text, false, true), () -> "eos encode of " + quote(text));
        }
    }

    @Test
    void invalidUtf8BytesAreGroupedAndFallBackLikeRunC() throws IOException {
        // stray continuation bytes, truncated sequences, over-long runs of continuation bytes, 0xFF
        for (String[] row : rows("tok512-encode-bytes-runc.tsv")) {
            byte[] bytes = HEX.parseHex(row[0]);
            assertArrayEquals(ids(row[1]), tok.encodeUtf8(bytes, true, false), () -> "bytes " + row[0]);
            assertArrayEquals(ids(row[2]), tok.encodeUtf8(bytes, false, true), () -> "bytes " + row[0]);
        }
    }

    @Test
    void decodeAndRunCOutputMatchRunCForEveryToken() throws IOException {
        List<String[]> rows = rows("tok512-decode-runc.tsv");
        assertEquals(6 * 512, rows.size());
        for (String[] row : rows) {
            int prev = Integer.parseInt(row[0]);
            int token = Integer.parseInt(row[1]);
            byte[] decoded = HEX.parseHex(row[2]);
            if (token == Tokenizer.BYTE_OFFSET) {
                // <0x00>: run.c returns the byte in a C string, which therefore reads as "" there
                assertEquals(0, decoded.length);
                decoded = new byte[] {0};
            }
            byte[] printed = HEX.parseHex(row[3]);
            assertArrayEquals(decoded, tok.decode(prev, token), () -> "decode(" + prev + ", " + token + ")");
            assertArrayEquals(printed, tok.runcOutput(prev, token), () -> "safe_printf(" + prev + ", " + token + ")");
        }
    }

    @Test
    void heapMergeEqualsRunCsRescanLoopOnLongRandomTexts() throws IOException {
        List<String> words = new ArrayList<>();
        for (String[] row : rows("tok512-encode-runc.tsv")) {
            words.addAll(Arrays.asList(new String(HEX.parseHex(row[0]), StandardCharsets.UTF_8).split(" ")));
        }
        Random random = new Random(5);
        for (int t = 0; t < 40; t++) {
            StringBuilder sb = new StringBuilder();
            int target = random.nextInt(2000);
            while (sb.length() < target) {
                switch (random.nextInt(4)) {
                    // "ll", "pp", "oo" are pieces, "lll" is not: overlapping equal-score pairs, leftmost must win
                    case 0 -> sb.append('-').append(String.valueOf("lpo".charAt(random.nextInt(3)))
                            .repeat(1 + random.nextInt(6)));
                    case 1 -> sb.appendCodePoint(0x20 + random.nextInt(0x3000));
                    default -> sb.append(' ').append(words.get(random.nextInt(words.size())));
                }
            }
            byte[] utf8 = sb.toString().getBytes(StandardCharsets.UTF_8);
            int[] initial = tok.encodeUtf8Unmerged(utf8);
            int[] fast = initial.clone();
            int[] naive = initial.clone();
            int nFast = tok.mergePairs(fast, fast.length);
            int nNaive = tok.mergePairsNaive(naive, naive.length);
            assertArrayEquals(Arrays.copyOf(naive, nNaive), Arrays.copyOf(fast, nFast), "text " + t);
        }
    }

    @Test
    void equalScoresMergeTheLeftmostPairFirst() {
        // "ll" (306) and "oo" (347) are pieces, "lll"/"ooo" are not; run.c's ids (also in the fixture file)
        assertArrayEquals(new int[] {410, 464, 306, 421}, tok.encode("-lll", false, false)); // " ", "-", "ll", "l"
        assertArrayEquals(new int[] {334, 347, 347}, tok.encode("ooooo", false, false)); // " o", "oo", "oo"
    }

    @Test
    void leadingSpaceIsStrippedOnlyAfterBos() {
        assertEquals(" Once", text(tok.piece(403)));
        assertEquals("Once", text(tok.decode(Tokenizer.BOS, 403)));
        assertEquals(" Once", text(tok.decode(Tokenizer.EOS, 403)));
        assertEquals(" Once", text(tok.decode(426, 403)));
        assertEquals("", text(tok.decode(Tokenizer.BOS, 410))); // the piece " " itself
    }

    @Test
    void byteFallbackTokensDecodeToRawBytesAndRunCDropsNonAscii() {
        assertArrayEquals(new byte[] {(byte) 0xE2}, tok.decode(410, 229));
        assertArrayEquals(new byte[0], tok.runcOutput(410, 229));
        assertArrayEquals(new byte[] {'\n'}, tok.decode(426, 13));
        assertArrayEquals(new byte[] {'\n'}, tok.runcOutput(426, 13));
        assertArrayEquals(new byte[0], tok.runcOutput(426, 4)); // <0x01>: control byte, run.c skips it
    }

    @Test
    void streamDecoderAssemblesCharactersSplitAcrossByteTokens() {
        int[] ids = tok.encode("Lily saw a café ☕", true, false);
        TokenStreamDecoder decoder = tok.streamDecoder(ids[0]);
        List<String> emitted = new ArrayList<>();
        for (int i = 1; i < ids.length; i++) {
            emitted.add(decoder.accept(ids[i]));
        }
        // ... 485 (é), 410 (" "), 229, 155, 152 (the three bytes of ☕)
        assertEquals(List.of("Lily", " saw", " a", " c", "a", "f", "é", " ", "", "", "☕"), emitted);
        assertFalse(decoder.hasPendingBytes());
        assertEquals("", decoder.finish());
        assertEquals(152, decoder.previousToken());
    }

    @Test
    void streamDecoderReplacesBytesThatCanNeverBeUtf8() {
        TokenStreamDecoder decoder = tok.streamDecoder(Tokenizer.BOS);
        assertEquals("\uFFFD", decoder.accept(0x80 + 3)); // a lone continuation byte
        assertEquals("", decoder.accept(0xE2 + 3)); // lead byte: could still become a character
        assertTrue(decoder.hasPendingBytes());
        assertEquals("\uFFFDa", decoder.accept(412)); // "a" breaks the sequence
        assertEquals("", decoder.accept(0xF0 + 3));
        assertEquals("\uFFFD", decoder.finish()); // unfinished at the end
        assertFalse(decoder.hasPendingBytes());
    }

    @Test
    void streamDecoderRejectsUnknownIdsWithoutChangingState() {
        TokenStreamDecoder decoder = tok.streamDecoder(Tokenizer.BOS);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> decoder.accept(512));
        assertEquals("token 512 outside [0, 512)", e.getMessage());
        assertEquals(Tokenizer.BOS, decoder.previousToken());
        assertEquals("Once", decoder.accept(403));
    }

    @Test
    void encodeThenDecodeIsTheIdentityOnRecordedAndRandomTexts() throws IOException {
        List<String> texts = new ArrayList<>();
        for (String[] row : rows("tok512-encode-runc.tsv")) {
            texts.add(new String(HEX.parseHex(row[0]), StandardCharsets.UTF_8));
        }
        Random random = new Random(42);
        int[] codePoints = {'a', 'Z', ' ', '\n', '.', 'é', 'ß', 'Ω', '中', 0x2122, 0x200A, 0x1F600, 0x2615, 0};
        for (int i = 0; i < 300; i++) {
            StringBuilder sb = new StringBuilder();
            for (int k = random.nextInt(20); k >= 0; k--) {
                sb.appendCodePoint(random.nextBoolean() ? codePoints[random.nextInt(codePoints.length)]
                        : 0x20 + random.nextInt(0x7F - 0x20));
            }
            texts.add(sb.toString());
        }
        for (String text : texts) {
            assertEquals(text, tok.decode(tok.encode(text, true, false)), () -> "round trip of " + quote(text));
        }
    }

    @Test
    void smallerVocabularyReadsAPrefixAndRejectsMissingByteTokens() throws IOException {
        Tokenizer small = Tokenizer.load(SharedData.tok512(), 100); // specials + bytes 0x00..0x60, no merges
        assertEquals(100, small.vocabSize());
        // no " " piece: the dummy prefix falls back to the byte token of 0x20 (35), like the space itself
        assertArrayEquals(new int[] {1, 35, 35, 36}, small.encode(" !", true, false));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> small.encode("a", false, false));
        assertEquals("byte 0x61 needs byte-fallback token 100 but the vocabulary has only 100 tokens", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(SharedData.tok512(), 0));
    }

    // ---- malformed files ------------------------------------------------------------------------------

    @Test
    void emptyFile(@TempDir Path dir) throws IOException {
        Path f = write(dir, new byte[2]);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Tokenizer.load(f, 512));
        assertEquals("max_token_length", e.field());
        assertEquals(f, e.file());
        assertTrue(e.getMessage().contains("truncated (file is 2 bytes)"), e.getMessage());
    }

    @Test
    void nonPositiveMaxTokenLength(@TempDir Path dir) throws IOException {
        byte[] bytes = real();
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(0, -7);
        Path f = write(dir, bytes);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Tokenizer.load(f, 512));
        assertEquals("max_token_length", e.field());
        assertEquals(f + ": field 'max_token_length' is -7, expected a positive int32", e.getMessage());
    }

    @Test
    void fewerEntriesThanTheModelVocabulary(@TempDir Path dir) throws IOException {
        Path f = write(dir, real());
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Tokenizer.load(f, 513));
        assertEquals("token 512", e.field());
        assertEquals(f + ": field 'token 512' is missing: the file ends at byte 6227 after 512 entries, expected "
                + "513 entries (the model's vocab_size)", e.getMessage());
        ModelFormatException huge = assertThrows(ModelFormatException.class,
                () -> Tokenizer.load(f, Integer.MAX_VALUE));
        assertEquals("token 512", huge.field());
    }

    @Test
    void truncatedInsideAPiece(@TempDir Path dir) throws IOException {
        // entry 511 starts at 6227 - (4 + 4 + 3) and its piece is 3 bytes (U+200A); cut one byte of it
        Path f = write(dir, Arrays.copyOf(real(), 6226));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Tokenizer.load(f, 512));
        assertEquals("token 511 bytes", e.field());
        assertTrue(e.getMessage().endsWith("is truncated: 2 bytes left, expected 3 bytes"), e.getMessage());
    }

    @Test
    void negativeAndTooLongPieceLengths(@TempDir Path dir) throws IOException {
        // entry 0 (<unk>): score at byte 4, length at byte 8
        byte[] negative = real();
        ByteBuffer.wrap(negative).order(ByteOrder.LITTLE_ENDIAN).putInt(8, -5);
        Path f1 = write(dir.resolve("neg.bin"), negative);
        ModelFormatException e1 = assertThrows(ModelFormatException.class, () -> Tokenizer.load(f1, 512));
        assertEquals("token 0 length", e1.field());
        assertEquals(f1 + ": field 'token 0 length' is -5 (at byte 8), expected a length in [0, max_token_length 7]",
                e1.getMessage());

        byte[] tooLong = real();
        ByteBuffer.wrap(tooLong).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 4); // "<unk>" is 5 bytes
        Path f2 = write(dir.resolve("long.bin"), tooLong);
        ModelFormatException e2 = assertThrows(ModelFormatException.class, () -> Tokenizer.load(f2, 512));
        assertEquals("token 0 length", e2.field());
        assertEquals(f2 + ": field 'token 0 length' is 5 (at byte 8), expected at most max_token_length 4",
                e2.getMessage());
    }

    // ---- helpers --------------------------------------------------------------------------------------

    private static byte[] real() throws IOException {
        return Files.readAllBytes(SharedData.tok512());
    }

    private static Path write(Path target, byte[] bytes) throws IOException {
        Path f = Files.isDirectory(target) ? target.resolve("tok.bin") : target;
        return Files.write(f, bytes);
    }

    private static List<String[]> rows(String resource) throws IOException {
        return TsvFixtures.rows(TokenizerTest.class, resource);
    }

    private static int[] ids(String s) {
        return s.isEmpty() ? new int[0] : Arrays.stream(s.split(" ")).mapToInt(Integer::parseInt).toArray();
    }

    private static String text(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static String quote(String s) {
        return "\"" + s.replace("\n", "\\n").replace("\t", "\\t") + "\"";
    }
}
