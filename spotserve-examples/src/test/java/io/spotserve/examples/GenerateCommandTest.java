package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code generate} end to end through {@link Main#run}, against every run.c reference in
 * {@code src/test/resources/runc} (see the README there).
 *
 * <p>Expected stdout is derived from the reference's token ids with {@link Tokenizer#decode(int[])} (correct
 * UTF-8) plus run.c's final newline; separately, our bytes with the byte-fallback characters that run.c's
 * {@code safe_printf} drops taken out must be exactly run.c's stdout file.
 *
 * <p>Kernels: the scalar kernels sum in run.c's float order, so every case (greedy and sampled) runs with
 * {@code --no-vector} and must match bit for bit. The default (Vector API) kernels round differently, which may
 * legitimately change a sampled token on some CPU; with them, and on sharded layouts (whose all-reduce also
 * sums in another order), the greedy cases must still match.
 */
class GenerateCommandTest {
    private static Tokenizer tokenizer;
    private static List<RuncReferences.Case> cases;

    @BeforeAll
    static void load() throws IOException {
        tokenizer = Tokenizer.load(BundledModel.extracted().tokenizer(), 512);
        cases = RuncReferences.cases();
    }

    /** Exit code, stdout bytes and stderr text of one in-process run. */
    private record Run(int rc, byte[] out, String err) {
        String text() {
            return new String(out, StandardCharsets.UTF_8);
        }
    }

    private static Run run(List<String> args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc = Main.run(args.toArray(String[]::new), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(rc, out.toByteArray(), err.toString(StandardCharsets.UTF_8));
    }

    /** The run.c options of a case as our flags; run.c's {@code -p 0} (top-p off) is our {@code --topp 1}. */
    private static List<String> args(RuncReferences.Case c, String... extra) {
        List<String> a = new ArrayList<>(List.of("generate", "--steps", Integer.toString(c.steps()),
                "--temperature", Float.toString(c.temperature())));
        float topp = c.topp() <= 0f || c.topp() >= 1f ? 1f : c.topp();
        a.addAll(List.of("--topp", Float.toString(topp)));
        if (c.prompt() != null) {
            a.addAll(List.of("--prompt", c.prompt()));
        }
        if (c.seed() != null) {
            a.addAll(List.of("--seed", Long.toString(c.seed())));
        }
        a.addAll(List.of(extra));
        return a;
    }

    /** What we must print: the reference's tokens decoded as UTF-8 text, then run.c's newline. */
    private static String expected(RuncReferences.Case c) {
        int[] t = c.tokens();
        return tokenizer.decode(c.stoppedOnBos() ? Arrays.copyOf(t, t.length - 1) : t) + "\n";
    }

    private static boolean greedy(RuncReferences.Case c) {
        return c.temperature() == 0f;
    }

    /**
     * Our stdout with the bytes run.c drops taken out: walks the reference tokens over our bytes (each token's
     * raw bytes must be there, in order), leaving out tokens whose run.c output is empty.
     *
     * @return {the remaining bytes, the number of bytes taken out}
     */
    private static Object[] withoutDroppedBytes(RuncReferences.Case c, byte[] ours) {
        ByteArrayOutputStream kept = new ByteArrayOutputStream();
        int at = 0;
        int dropped = 0;
        int[] t = c.tokens();
        for (int i = 1; i < t.length && t[i] != Tokenizer.BOS; i++) {
            byte[] piece = tokenizer.decode(t[i - 1], t[i]);
            assertArrayEquals(piece, Arrays.copyOfRange(ours, at, Math.min(ours.length, at + piece.length)),
                    c.name() + ": bytes of token " + i + " at offset " + at);
            if (tokenizer.runcOutput(t[i - 1], t[i]).length == 0) {
                dropped += piece.length;
            } else {
                kept.writeBytes(piece);
            }
            at += piece.length;
        }
        assertEquals(at + 1, ours.length, c.name() + ": only the final newline follows the tokens");
        kept.write('\n');
        return new Object[] {kept.toByteArray(), dropped};
    }

    @Test
    void everyRunCReferenceIsReproducedWithRunCsFloatOrder() throws IOException {
        int droppedTotal = 0;
        for (RuncReferences.Case c : cases) {
            Run r = run(args(c, "--no-vector"));
            assertEquals(0, r.rc(), c.name() + ": " + r.err());
            assertEquals(expected(c), r.text(), c.name());
            Object[] stripped = withoutDroppedBytes(c, r.out());
            assertArrayEquals(c.stdoutBytes(), (byte[]) stripped[0], c.name());
            droppedTotal += (int) stripped[1];
        }
        assertEquals(3, droppedTotal, "the three bytes of ☕ in greedy-cafe-64, and nothing else, are what run.c drops");
        Run cafe = run(args(RuncReferences.find("greedy-cafe-64"), "--no-vector"));
        assertTrue(cafe.text().startsWith("Lily saw a café ☕. "), cafe.text());
    }

    @Test
    void greedyReferencesAreReproducedWithEveryKernelLayoutAndBatch() throws IOException {
        String[][] variants = {
                {},                                                      // default kernels (vector when present)
                {"--pp", "2", "--stage-layers", "3,2", "--tp", "2"},
                {"--pp", "4", "--stage-layers", "2,1,1,1", "--tp", "4"},
                {"--stage-layers", "1,1,1,1,1", "--tp", "2", "--threads", "1"},
        };
        for (RuncReferences.Case c : cases) {
            if (!greedy(c)) {
                continue;
            }
            for (String[] v : variants) {
                Run r = run(args(c, v));
                assertEquals(0, r.rc(), c.name() + " " + Arrays.toString(v) + ": " + r.err());
                assertEquals(expected(c), r.text(), c.name() + " " + Arrays.toString(v));
            }
            Run batch = run(args(c, "--batch", "3"));
            assertEquals(0, batch.rc(), c.name() + " --batch 3: " + batch.err());
            assertEquals(expected(c).repeat(3), batch.text(), c.name() + " --batch 3");
        }
    }

    @Test
    void batchSampleIUsesSeedSPlusIAndSampleZeroIsTheReference() throws IOException {
        RuncReferences.Case c = RuncReferences.find("topp-once-s42-128");
        Run batch = run(args(c, "--no-vector", "--batch", "3"));
        assertEquals(0, batch.rc(), batch.err());
        StringBuilder separately = new StringBuilder(expected(c));
        for (long seed = 43; seed <= 44; seed++) {
            List<String> a = args(c, "--no-vector");
            a.set(a.indexOf("--seed") + 1, Long.toString(seed));
            Run one = run(a);
            assertEquals(0, one.rc(), one.err());
            assertTrue(!one.text().equals(expected(c)), "seed " + seed + " differs from seed 42");
            separately.append(one.text());
        }
        assertEquals(separately.toString(), batch.text());
    }

    @Test
    void stepsZeroOrBeyondSeqLenMeanSeqLenAndAnExplicitModelWorks() throws IOException {
        RuncReferences.Case full = RuncReferences.find("greedy-empty-full"); // -n 0: ends on BOS at position 346
        BundledModel.Extracted files = BundledModel.extracted();
        Run r = run(List.of("generate", "--model", files.checkpoint().toString(), "--tokenizer",
                files.tokenizer().toString(), "--temperature", "0", "--steps", "100000"));
        assertEquals(0, r.rc(), r.err());
        assertEquals(expected(full), r.text());
    }

    @Test
    void ggufFilesAndHuggingFaceFoldersGenerateTheBundledModelsText(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws IOException {
        RuncReferences.Case c = RuncReferences.find("greedy-empty-full");
        BundledModel.Extracted files = BundledModel.extracted();
        io.spotserve.model.LlamaCheckpoint ckpt = io.spotserve.model.LlamaCheckpoint.load(files.checkpoint());
        io.spotserve.model.Tokenizer tok = io.spotserve.model.Tokenizer.load(files.tokenizer(), ckpt.config().vocabSize());
        java.nio.file.Path gguf = dir.resolve("stories260K.gguf");
        io.spotserve.model.GgufWriter.write(gguf, ckpt, tok, io.spotserve.model.TensorType.F32);
        java.nio.file.Path folder = dir.resolve("stories260K-hf");
        io.spotserve.model.HfWriter.write(folder, ckpt, io.spotserve.model.TensorType.F32, 2, null);
        for (List<String> args : List.of(List.of("--model", gguf.toString()),
                List.of("--model", folder.toString(), "--tokenizer", files.tokenizer().toString()))) {
            List<String> a = new ArrayList<>(List.of("generate", "--temperature", "0", "--steps", "0"));
            a.addAll(args);
            Run r = run(a);
            assertEquals(0, r.rc(), a + ": " + r.err());
            assertEquals(expected(c), r.text(), a.toString());
        }
    }

    @Test
    void badArgumentsPrintOneLineAndExitTwoWithNothingOnStdout() throws IOException {
        String tok = BundledModel.extracted().tokenizer().toString();
        String model = BundledModel.extracted().checkpoint().toString();
        String[][] table = {
                // args..., expected fragment of the message
                {"--steps", "-1", "--steps must be >= 0, was -1"},
                {"--steps", "ten", "Invalid value for option '--steps': 'ten' is not an int"},
                {"--temperature=-0.5", "--temperature must be a finite number >= 0"},
                {"--temperature", "NaN", "--temperature must be a finite number >= 0"},
                {"--temperature", "hot", "Invalid value for option '--temperature': 'hot' is not a float"},
                {"--topp", "0", "--topp must be in (0, 1]"},
                {"--topp", "1.5", "--topp must be in (0, 1]"},
                {"--topp", "NaN", "--topp must be in (0, 1]"},
                {"--temperature", "0.8", "--seed", "0", "--seed must be non-zero when --temperature > 0"},
                {"--temperature", "0.8", "--seed", "-2", "--batch", "3", "gives sample 2 the seed 0"},
                {"--seed", "x1", "Invalid value for option '--seed': 'x1' is not a long"},
                {"--bogus", "1", "unknown option --bogus; see generate --help"},
                {"--bogus=1", "unknown option --bogus; see generate --help"},
                {"stray", "unexpected argument 'stray'"},
                {"--steps", "Missing required parameter for option '--steps'"},
                {"--prompt", "--steps", "4", "Expected parameter for option '--prompt' but found '--steps'"},
                {"--steps", "3", "--steps=4", "option '--steps' (N) should be specified only once"},
                {"--no-vector=yes", "Invalid value for option '--no-vector': 'yes' is not a boolean"},
                {"hello", "unexpected argument 'hello'"},
                {"--model", "/no/such/model.bin", "--tokenizer", tok, "--model /no/such/model.bin is not a readable file"},
                {"--model", model, "--tokenizer", "/no/such/tok.bin", "--tokenizer /no/such/tok.bin is not a readable"},
                {"--model", model, "is a llama2.c checkpoint, which carries no tokenizer; add --tokenizer PATH"},
                {"--tokenizer", tok, "--tokenizer needs --model PATH too"},
                {"--model", tok, "--tokenizer", tok, "field 'hidden_dim' is 0"},
                {"--model", model, "--tokenizer", model, "--tokenizer " + model + ": field 'token 2 length'"},
                {"--pp", "2", "--pp 2 does not divide the model's 5 layers; give the layers per stage, e.g. "
                        + "--stage-layers 3,2"},
                {"--pp", "4", "e.g. --stage-layers 2,1,1,1"},
                {"--pp", "6", "--pp 6 exceeds the model's 5 layers"},
                {"--pp", "0", "--pp must be >= 1, was 0"},
                {"--pp", "3", "--stage-layers", "2,1,1,1", "lists 4 stages but --pp is 3"},
                {"--stage-layers", "2,2", "stage layer counts [2, 2] sum to 4 but the model has 5 layers"},
                {"--stage-layers", "2,x,1", "--stage-layers must be a comma-separated list"},
                {"--tp", "3", "M = 3 tensor shards do not divide n_heads 8"},
                {"--tp", "8", "do not divide n_kv_heads 4"},
                {"--batch", "0", "--batch must be in [1, 1024], was 0"},
                {"--threads", "0", "--threads must be in [1, 4096], was 0"},
        };
        for (String[] row : table) {
            List<String> a = new ArrayList<>(List.of("generate"));
            a.addAll(Arrays.asList(row).subList(0, row.length - 1));
            String fragment = row[row.length - 1];
            Run r = run(a);
            assertEquals(2, r.rc(), a + ": " + r.err());
            assertEquals(0, r.out().length, a + " printed on stdout: " + r.text());
            assertTrue(r.err().endsWith("\n") && r.err().indexOf('\n') == r.err().length() - 1,
                    a + ": not one line: " + r.err());
            assertTrue(r.err().startsWith("generate: "), a + ": " + r.err());
            assertTrue(r.err().contains(fragment), a + ": expected '" + fragment + "' in: " + r.err());
        }
    }

    @Test
    void helpGoesToStdoutAndExitsZero() {
        Run r = run(List.of("generate", "--help"));
        assertEquals(0, r.rc());
        assertTrue(r.text().startsWith("Usage: spotserve-examples generate"), r.text());
        for (String option : List.of("--model", "--tokenizer", "--prompt", "--steps", "--temperature", "--topp", "--seed",
                "--pp", "--stage-layers", "--tp", "--batch", "--threads", "--no-vector")) {
            assertTrue(r.text().contains(option), option);
        }
        assertEquals("", r.err());
    }
}
