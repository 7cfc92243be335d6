package io.spotserve.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.spotserve.engine.Completion;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.model.ChatMessage;
import io.spotserve.model.ChatTemplate;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.ModelChatTemplate;
import io.spotserve.model.ModelSource;
import io.spotserve.model.TensorType;
import io.spotserve.model.Tokenizer;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The chat endpoint renders messages with the model's own chat template: a GGUF written by our GgufWriter with
 * Llama-3's {@code tokenizer.chat_template} makes the engine receive the Llama-3 formatted prompt (same prompt
 * token count as tokenizing that text, and the same greedy completion as submitting it to the engine directly). A
 * template the user sets wins; a model without one gets the plain template; a template that rejects the
 * conversation answers 400 naming {@code messages}.
 */
@Timeout(180)
class ModelChatTemplateServerTest {
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    static final String CHAT = "{\"messages\": [{\"role\": \"system\", \"content\": \"Tell a story.\"},"
            + " {\"role\": \"user\", \"content\": \"A cat\"}], \"max_tokens\": 12, \"temperature\": 0}";
    static final List<ChatMessage> MESSAGES = List.of(new ChatMessage("system", "Tell a story."),
            new ChatMessage("user", "A cat"));

    @TempDir
    Path dir;

    static JsonObject chat(SpotServeServer server, int expectedStatus) throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port()
                        + "/v1/chat/completions")).timeout(Duration.ofSeconds(60)).header("Content-Type",
                        "application/json").POST(HttpRequest.BodyPublishers.ofString(CHAT)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(expectedStatus, r.statusCode(), r.body());
        return JsonParser.parseString(r.body()).getAsJsonObject();
    }

    static int promptTokens(JsonObject response) {
        return response.getAsJsonObject("usage").get("prompt_tokens").getAsInt();
    }

    static String content(JsonObject response) {
        return response.getAsJsonArray("choices").get(0).getAsJsonObject().getAsJsonObject("message")
                .get("content").getAsString();
    }

    static SpotServeServer start(TestModel.Served served, SpotServeServer.Builder settings) throws Exception {
        return settings.engine(served.engine()).port(0).build().start();
    }

    @Test
    void ggufChatTemplateShapesThePromptTheEngineReceives() throws Exception {
        String llama3;
        try (InputStream in = getClass().getResourceAsStream("/chat-templates/llama3.jinja")) {
            llama3 = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        Path gguf = dir.resolve("stories-llama3.gguf");
        GgufWriter.write(gguf, TestModel.CHECKPOINT, TestModel.TOKENIZER, TensorType.F32, llama3);
        ModelSource source = ModelSource.open(gguf);
        Tokenizer tok = source.tokenizer();
        ModelChatTemplate own = source.chatTemplate().orElseThrow();
        assertFalse(own.bosToken().isEmpty(), "the BOS token's text comes from the file's vocabulary");
        String expected = own.bosToken() + "<|start_header_id|>system<|end_header_id|>\n\nTell a story.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nA cat<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n";
        String plain = ChatTemplate.plain().render(MESSAGES);
        int expectedTokens = tok.encode(expected, true, false).length;
        int plainTokens = tok.encode(plain, true, false).length;
        assertNotEquals(expectedTokens, plainTokens, "the two prompts are told apart by their length");

        try (TestModel.Served served = TestModel.engine(source, tok, 1, b -> b.maxBatch(2))) {
            Completion direct = served.engine().submit(GenerationRequest.of(expected, 12)).join();
            assertEquals(expectedTokens, direct.promptLength());
            try (SpotServeServer server = start(served, SpotServeServer.builder().model(source))) {
                JsonObject r = chat(server, 200);
                assertEquals(expectedTokens, promptTokens(r), r.toString());
                assertEquals(direct.text(), content(r), "the engine continued the Llama-3 prompt");
            }
            // a template set by the user wins over the model's
            try (SpotServeServer server = start(served, SpotServeServer.builder().chatTemplate(ChatTemplate.plain())
                    .model(source))) {
                assertEquals(plainTokens, promptTokens(chat(server, 200)));
            }
            // no model given, or a model without a template: the plain template
            try (SpotServeServer server = start(served, SpotServeServer.builder())) {
                assertEquals(plainTokens, promptTokens(chat(server, 200)));
            }
            ModelSource noTemplate = ModelSource.open(writeWithout(dir));
            try (SpotServeServer server = start(served, SpotServeServer.builder().model(noTemplate))) {
                assertEquals(plainTokens, promptTokens(chat(server, 200)));
            }
            // a template that refuses the conversation: 400 on messages with the template's words
            ChatTemplate strict = ChatTemplate.jinja("{% for m in messages %}{% if m.role == 'system' %}"
                    + "{{ raise_exception('System role not supported') }}{% endif %}{{ m.content }}{% endfor %}",
                    Map.of());
            try (SpotServeServer server = start(served, SpotServeServer.builder().chatTemplate(strict))) {
                JsonObject err = chat(server, 400).getAsJsonObject("error");
                assertEquals("messages", err.get("param").getAsString(), err.toString());
                assertTrue(err.get("message").getAsString().contains("System role not supported"), err.toString());
            }
        }
    }

    static Path writeWithout(Path dir) throws java.io.IOException {
        Path f = dir.resolve("no-template.gguf");
        GgufWriter.write(f, TestModel.CHECKPOINT, TestModel.TOKENIZER, TensorType.F32);
        return f;
    }
}
