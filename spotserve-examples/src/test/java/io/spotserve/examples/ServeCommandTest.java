package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The serve-demo prints the same texts whether or not an instance is preempted mid-run. */
class ServeCommandTest {

    private static String run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(0, code, err.toString(StandardCharsets.UTF_8));
        return out.toString(StandardCharsets.UTF_8);
    }

    private static List<String> texts(String output) {
        return Arrays.stream(output.split("\n")).filter(l -> l.startsWith("request "))
                .map(l -> l.replaceFirst("restarts=\\d+", "")).toList();
    }

    @Test
    void preemptionDoesNotChangeTheTexts() {
        String calm = run("serve-demo", "--requests", "4", "--tokens", "24");
        String noGrace = run("serve-demo", "--requests", "4", "--tokens", "24", "--preempt-grace-ms", "0");
        String grace = run("serve-demo", "--requests", "4", "--tokens", "24", "--preempt-grace-ms", "500");
        assertEquals(4, texts(calm).size(), calm);
        assertEquals(texts(calm), texts(noGrace), noGrace);
        assertEquals(texts(calm), texts(grace), grace);
        assertTrue(calm.contains("completed=4"), calm);
        assertTrue(noGrace.contains("reconfiguration "), noGrace);
    }

    @Test
    void badOptionsAreUsageErrors() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {"serve-demo", "--tokens", "zero"}, new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, code);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("Invalid value for option '--tokens': 'zero' is not an int"));
    }
}
