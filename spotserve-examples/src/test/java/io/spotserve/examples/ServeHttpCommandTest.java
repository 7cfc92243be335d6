package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import io.spotserve.model.ChatMessage;
import io.spotserve.model.ChatTemplate;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.ModelSource;
import io.spotserve.model.TensorType;
import io.spotserve.model.Tokenizer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/**
 * {@code serve --port 0} gives a newcomer a live endpoint on the bundled model; {@code serve --model X} renders chat
 * messages with the chat template X ships unless {@code --chat-template} says otherwise.
 */
@Timeout(120)
class ServeHttpCommandTest {
    /**
     * Blocking tasks each get a thread of their own: from JDK 25 on, {@code CompletableFuture}'s default executor is the
     * common pool even when its parallelism is 1 (2 CPUs), so a second task waited for the first to finish.
     */
    private static final Executor OWN_THREAD = r -> {
        Thread t = new Thread(r, "test-task");
        t.setDaemon(true);
        t.start();
    };

    /** A running {@code serve} and its base URL. */
    record Running(ServeHttpCommand command, CompletableFuture<Integer> exit, String baseUrl, String output) {
    }

    static Running start(String... args) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        CommandLine cl = Main.commands(new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        ServeHttpCommand serve = (ServeHttpCommand) cl.getSubcommands().get("serve").getCommand();
        CompletableFuture<Integer> run = CompletableFuture.supplyAsync(() -> cl.execute(args), OWN_THREAD);
        Pattern url = Pattern.compile("at (http://127\\.0\\.0\\.1:\\d+/v1)");
        Matcher m = url.matcher("");
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!m.reset(out.toString(StandardCharsets.UTF_8)).find() && System.nanoTime() < deadline && !run.isDone()) {
            Thread.sleep(20);
        }
        if (!m.reset(out.toString(StandardCharsets.UTF_8)).find()) {
            serve.stop();
            throw new AssertionError(out + " / " + err);
        }
        return new Running(serve, run, m.group(1), out.toString(StandardCharsets.UTF_8));
    }

    static HttpResponse<String> post(String url, String key, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(60))
                .POST(HttpRequest.BodyPublishers.ofString(body));
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        return HttpClient.newHttpClient().send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void servesCompletionsOnTheBundledModelUntilStopped() throws Exception {
        Running s = start("serve", "--port=0", "--api-key", "k1", "--instances", "1");
        try {
            HttpResponse<String> r = post(s.baseUrl() + "/completions", "k1", "{\"model\":\"stories260K\","
                    + "\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":0}");
            assertEquals(200, r.statusCode(), r.body());
            JsonObject o = JsonParser.parseString(r.body()).getAsJsonObject();
            assertEquals(8, o.getAsJsonObject("usage").get("completion_tokens").getAsInt(), r.body());
            assertTrue(s.output().contains("with the plain chat template"), s.output());
        } finally {
            s.command().stop();
        }
        assertEquals(0, s.exit().get(30, TimeUnit.SECONDS));
    }

    @Test
    void serveUsesTheChatTemplateItsModelShips(@TempDir Path dir) throws Exception {
        BundledModel.Extracted files = BundledModel.extracted();
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(files.checkpoint());
        Tokenizer tok = Tokenizer.load(files.tokenizer(), ckpt.config().vocabSize());
        Path gguf = dir.resolve("stories-chat.gguf");
        GgufWriter.write(gguf, ckpt, tok, TensorType.F32, "{{ bos_token }}{% for m in messages %}[{{ m.role }}]"
                + "{{ m.content | trim }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}");
        String bos = ModelSource.open(gguf).chatTemplate().orElseThrow().bosToken();
        String chat = "{\"messages\": [{\"role\": \"system\", \"content\": \"Tell a story. \"}, {\"role\":"
                + " \"user\", \"content\": \"A cat\"}], \"max_tokens\": 4, \"temperature\": 0}";
        int own = tok.encode(bos + "[system]Tell a story.[user]A cat[assistant]", true, false).length;
        int plain = tok.encode(ChatTemplate.plain().render(List.of(new ChatMessage("system", "Tell a story. "),
                new ChatMessage("user", "A cat"))), true, false).length;
        for (boolean forcePlain : new boolean[] {false, true}) {
            Running s = forcePlain ? start("serve", "--port=0", "--instances", "1", "--model", gguf.toString(),
                    "--chat-template", "plain") : start("serve", "--port=0", "--instances", "1", "--model",
                    gguf.toString());
            try {
                assertTrue(s.output().contains("serving stories-chat at"), s.output());
                assertTrue(s.output().contains(forcePlain ? "with the plain chat template"
                        : "with the model's chat template"), s.output());
                HttpResponse<String> r = post(s.baseUrl() + "/chat/completions", null, chat);
                assertEquals(200, r.statusCode(), r.body());
                JsonObject o = JsonParser.parseString(r.body()).getAsJsonObject();
                assertEquals(forcePlain ? plain : own, o.getAsJsonObject("usage").get("prompt_tokens").getAsInt(),
                        r.body());
            } finally {
                s.command().stop();
            }
            assertEquals(0, s.exit().get(30, TimeUnit.SECONDS));
        }
    }

    @Test
    void badChatTemplateIsAUsageError(@TempDir Path dir) throws Exception {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {"serve", "--port", "0", "--chat-template", dir.resolve("nope").toString()},
                new PrintStream(new ByteArrayOutputStream()), new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, code);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("is neither a file nor 'plain'"), err.toString());
        Path bad = dir.resolve("bad.jinja");
        java.nio.file.Files.writeString(bad, "{% if messages %}unclosed");
        err.reset();
        code = Main.run(new String[] {"serve", "--port", "0", "--chat-template", bad.toString()},
                new PrintStream(new ByteArrayOutputStream()), new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, code);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("{% if %} is never closed"), err.toString());
    }

    @Test
    void badPortIsAUsageError() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {"serve", "--port", "70000"}, new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, code);
        assertEquals("serve: --port must be in [0, 65535], was 70000\n", err.toString(StandardCharsets.UTF_8));
    }
}
