package io.spotserve.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.Gson;
import io.spotserve.testing.SharedData;
import io.spotserve.model.jinja.JinjaException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Models carry their chat template: a GGUF file's {@code tokenizer.chat_template} (written by our GgufWriter, read
 * back with the BOS/EOS token texts), a Hugging Face folder's {@code tokenizer_config.json} in its several shapes;
 * a llama2.c checkpoint has none; malformed fields fail naming the file and field.
 */
class ModelChatTemplateTest {
    @TempDir
    static Path dir;
    static LlamaCheckpoint ckpt;
    static Tokenizer tok;
    static String llama3;

    @BeforeAll
    static void load() throws IOException {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        tok = Tokenizer.load(SharedData.tok512(), ckpt.config().vocabSize());
        try (InputStream in = ModelChatTemplateTest.class.getResourceAsStream("/chat-templates/llama3.jinja")) {
            llama3 = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    static final List<ChatMessage> CHAT = List.of(new ChatMessage("system", " Be brief. "),
            new ChatMessage("user", "Hi there\n"));

    static String expectedLlama3(String bos) {
        return bos + "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n";
    }

    @Test
    void ggufCarriesItsTemplateAndTokenTexts() throws IOException {
        Path f = dir.resolve("with-template.gguf");
        GgufWriter.write(f, ckpt, tok, TensorType.F32, llama3);
        ModelSource source = ModelSource.open(f);
        ModelChatTemplate t = source.chatTemplate().orElseThrow();
        assertEquals(llama3, t.source());
        String bos = new String(tok.piece(ckpt.config().bosId()), StandardCharsets.UTF_8).replace(' ', '\u2581');
        String eos = new String(tok.piece(ckpt.config().eosId()), StandardCharsets.UTF_8).replace(' ', '\u2581');
        assertEquals(bos, t.bosToken());
        assertEquals(eos, t.eosToken());
        assertEquals(expectedLlama3(bos), t.template().render(CHAT));
        assertEquals(t, GgufModel.load(f).chatTemplate().orElseThrow());

        Path plain = dir.resolve("without-template.gguf");
        GgufWriter.write(plain, ckpt, tok, TensorType.F32);
        assertEquals(Optional.empty(), ModelSource.open(plain).chatTemplate());
        assertEquals(Optional.empty(), ModelSource.open(SharedData.stories260K()).chatTemplate(), "llama2.c");
    }

    @Test
    void huggingFaceFolderReadsTokenizerConfig() throws IOException {
        Path folder = dir.resolve("hf");
        HfWriter.write(folder, ckpt, TensorType.F32, 1, null);
        assertEquals(Optional.empty(), ModelSource.open(folder).chatTemplate(), "no tokenizer_config.json");

        Path cfg = folder.resolve(ModelChatTemplate.TOKENIZER_CONFIG);
        Files.writeString(cfg, "{\"bos_token\": \"<|begin_of_text|>\", \"eos_token\": {\"__type\": \"AddedToken\","
                + " \"content\": \"<|eot_id|>\"}, \"chat_template\": " + new Gson().toJson(llama3) + "}");
        ModelChatTemplate t = ModelSource.open(folder).chatTemplate().orElseThrow();
        assertEquals(new ModelChatTemplate(llama3, "<|begin_of_text|>", "<|eot_id|>"), t);
        assertEquals(expectedLlama3("<|begin_of_text|>"), t.template().render(CHAT));
        assertEquals(t, HfModel.load(folder).chatTemplate().orElseThrow());

        // a list of named templates: "default" wins, else the first
        Files.writeString(cfg, "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
                + " {\"name\": \"default\", \"template\": \"D{{ eos_token }}\"}], \"eos_token\": \"</s>\"}");
        assertEquals("D</s>", ModelSource.open(folder).chatTemplate().orElseThrow().template().render(CHAT));
        Files.writeString(cfg, "{\"chat_template\": [{\"name\": \"a\", \"template\": \"A\"}]}");
        assertEquals(new ModelChatTemplate("A", "", ""), ModelSource.open(folder).chatTemplate().orElseThrow());
        Files.writeString(cfg, "{\"bos_token\": \"<s>\"}");
        assertEquals(Optional.empty(), ModelSource.open(folder).chatTemplate());
    }

    @Test
    void malformedTemplatesFailClearly() throws IOException {
        Path folder = dir.resolve("hf-bad");
        HfWriter.write(folder, ckpt, TensorType.F32, 1, null);
        Path cfg = folder.resolve(ModelChatTemplate.TOKENIZER_CONFIG);
        ModelSource source = ModelSource.open(folder);

        Files.writeString(cfg, "{not json");
        ModelFormatException e = assertThrows(ModelFormatException.class, source::chatTemplate);
        assertTrue(e.getMessage().contains(ModelChatTemplate.TOKENIZER_CONFIG), e.getMessage());
        Files.writeString(cfg, "{\"chat_template\": 42}");
        e = assertThrows(ModelFormatException.class, source::chatTemplate);
        assertEquals("chat_template", e.field());
        Files.writeString(cfg, "{\"chat_template\": [{\"name\": \"x\"}]}");
        e = assertThrows(ModelFormatException.class, source::chatTemplate);
        assertEquals("chat_template[]", e.field());
        Files.writeString(cfg, "{\"chat_template\": \"x\", \"bos_token\": [1]}");
        e = assertThrows(ModelFormatException.class, source::chatTemplate);
        assertEquals("bos_token", e.field());

        // a template that does not parse is named with its position when it is turned into a ChatTemplate
        Files.writeString(cfg, "{\"chat_template\": \"{% for m in messages %}{{ m.content }}\"}");
        JinjaException j = assertThrows(JinjaException.class, () -> source.chatTemplate().orElseThrow().template());
        assertTrue(j.getMessage().contains("{% for %} is never closed"), j.getMessage());
    }
}
