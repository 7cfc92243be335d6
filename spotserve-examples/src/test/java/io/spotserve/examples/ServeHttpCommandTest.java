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
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/** {@code serve --port 0} gives a newcomer a live endpoint on the bundled model. */
@Timeout(120)
class ServeHttpCommandTest {
    @Test
    void servesCompletionsOnTheBundledModelUntilStopped() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        CommandLine cl = Main.commands(new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        ServeHttpCommand serve = (ServeHttpCommand) cl.getSubcommands().get("serve").getCommand();
        CompletableFuture<Integer> run = CompletableFuture.supplyAsync(() -> cl.execute("serve", "--port=0",
                "--api-key", "k1", "--instances", "1"));
        try {
            Pattern url = Pattern.compile("at (http://127\\.0\\.0\\.1:\\d+/v1)");
            Matcher m = url.matcher("");
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!m.reset(out.toString(StandardCharsets.UTF_8)).find() && System.nanoTime() < deadline && !run.isDone()) {
                Thread.sleep(20);
            }
            assertTrue(m.reset(out.toString(StandardCharsets.UTF_8)).find(), out + " / " + err);
            HttpClient http = HttpClient.newHttpClient();
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(m.group(1) + "/completions"))
                    .header("Authorization", "Bearer k1").timeout(Duration.ofSeconds(60))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"stories260K\",\"prompt\":\"Once upon a "
                            + "time\",\"max_tokens\":8,\"temperature\":0}")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            JsonObject o = JsonParser.parseString(r.body()).getAsJsonObject();
            assertEquals(8, o.getAsJsonObject("usage").get("completion_tokens").getAsInt(), r.body());
        } finally {
            serve.stop();
        }
        assertEquals(0, run.get(30, TimeUnit.SECONDS), err.toString(StandardCharsets.UTF_8));
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
