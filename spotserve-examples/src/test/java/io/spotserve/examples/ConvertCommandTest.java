package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.GgufModel;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.ModelChatTemplate;
import io.spotserve.model.Tokenizer;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.ModelSource;
import io.spotserve.model.TensorType;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code convert} writes the bundled model as GGUF and as a Hugging Face folder that {@code generate} then serves. */
class ConvertCommandTest {
    @TempDir
    Path dir;

    private record Run(int rc, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(rc, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static List<String> generate(String... model) {
        List<String> a = new ArrayList<>(List.of("generate", "--temperature", "0", "--steps", "64", "--prompt",
                "Lily and Ben"));
        a.addAll(List.of(model));
        return a;
    }

    @Test
    void bundledModelToGgufQ8AndToAnHfFolderBothGenerate() throws Exception {
        Run reference = run(generate().toArray(String[]::new));
        assertEquals(0, reference.rc(), reference.err());

        Path gguf = dir.resolve("s.gguf");
        Run c = run("convert", "--out", gguf.toString(), "--type", "q8_0");
        assertEquals(0, c.rc(), c.err());
        assertTrue(c.out().startsWith("convert: wrote " + gguf), c.out());
        assertEquals(TensorType.Q8_0, GgufModel.load(gguf).tensorType(LlamaCheckpoint.Tensor.WQ, 0));
        Run g = run(generate("--model", gguf.toString()).toArray(String[]::new));
        assertEquals(0, g.rc(), g.err());
        assertTrue(g.out().startsWith("Lily and Ben"), g.out());

        Path folder = dir.resolve("s-hf");
        BundledModel.Extracted files = BundledModel.extracted();
        c = run("convert", "--model", files.checkpoint().toString(), "--tokenizer", files.tokenizer().toString(),
                "--out", folder.toString(), "--format", "hf", "--type", "f32", "--shards", "2");
        assertEquals(0, c.rc(), c.err());
        assertEquals(ModelSource.Format.HUGGING_FACE, ModelSource.detect(folder));
        Run h = run(generate("--model", folder.toString(), "--tokenizer", files.tokenizer().toString())
                .toArray(String[]::new));
        assertEquals(0, h.rc(), h.err());
        assertEquals(reference.out(), h.out());
    }

    @Test
    void chatTemplateTravelsBetweenGgufAndHfFolders() throws Exception {
        BundledModel.Extracted files = BundledModel.extracted();
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(files.checkpoint());
        Tokenizer tok = Tokenizer.load(files.tokenizer(), ckpt.config().vocabSize());
        String template = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}"
                + "{% endfor %}";
        Path gguf = dir.resolve("chat.gguf");
        GgufWriter.write(gguf, ckpt, tok, TensorType.F32, template);
        ModelChatTemplate original = ModelSource.open(gguf).chatTemplate().orElseThrow();

        Path folder = dir.resolve("chat-hf");
        Run c = run("convert", "--model", gguf.toString(), "--out", folder.toString(), "--format", "hf",
                "--type", "f32");
        assertEquals(0, c.rc(), c.err());
        assertEquals(original, ModelSource.open(folder).chatTemplate().orElseThrow());

        Path back = dir.resolve("chat-again.gguf");
        c = run("convert", "--model", folder.toString(), "--tokenizer", files.tokenizer().toString(), "--out",
                back.toString());
        assertEquals(0, c.rc(), c.err());
        assertEquals(original, ModelSource.open(back).chatTemplate().orElseThrow());
    }

    @Test
    void badArgumentsAreOneLineUsageErrors() throws Exception {
        Path existing = Files.createFile(dir.resolve("exists.gguf"));
        String[][] table = {
                {"convert", "--out must be given", "--out PATH is required"},
                {"convert", "--out", dir.resolve("a").toString(), "--type", "q5_k", "--type must be f32"},
                {"convert", "--out", dir.resolve("a").toString(), "--format", "onnx", "--format must be gguf or hf"},
                {"convert", "--out", dir.resolve("a").toString(), "--format", "hf", "--type", "q8_0", "is GGUF-only"},
                {"convert", "--out", existing.toString(), "already exists"},
        };
        for (String[] row : table) {
            String[] args = java.util.Arrays.copyOf(row, row.length - 1);
            if (row[1].equals("--out must be given")) {
                args = new String[] {"convert"};
            }
            Run r = run(args);
            assertEquals(2, r.rc(), String.join(" ", args) + ": " + r.err());
            assertTrue(r.err().startsWith("convert: ") && r.err().contains(row[row.length - 1]), r.err());
        }
    }
}
