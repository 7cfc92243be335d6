package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The run.c references are self-consistent and our tokenizer reproduces both ends of them: the prompt ids
 * run.c encoded, and the exact stdout bytes run.c printed for the token ids it went through.
 */
class RuncReferencesTest {
    // doc/stories260K.md in karpathy/llama2.c: "./run stories260K/stories260K.bin -z stories260K/tok512.bin -t 0.0"
    private static final String DOC_GREEDY = "Once upon a time, there was a little girl named Lily. She loved to play "
            + "outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
            + "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She said, \"I "
            + "want to play with your ball, but I can't find it.\"\n"
            + "Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\n"
            + "Lily didn't want to help her mom, so she said, \"I'm sorry, mom. I didn't know what to do.\" Her mom "
            + "said, \"Don't worry, Lily. We can help you.\n";
    // same doc: "-t 1.0 -p 0.9 -s 133742"
    private static final String DOC_SAMPLED = "Once upon a time, there was a little boy named Timmy. Timmy loved to "
            + "play with his toys and eat sandwiches. One day, Timmy's mom told him it was time to rest for a while. "
            + "Timmy's friend Billy came over and took him a down.\n"
            + "Timmy's mom saw that Timmy was sad, but Timmy said, \"I didn't understand what is it! We need to find "
            + "some leafs.\" Timmy thought about it and took a deep breath on a spoon. He hoped it was important to be "
            + "kind and continued to find its image next time.\n"
            + "After they finished getting, Timmy's dad came up to his house and promised to help Timmy.\n";

    private static Tokenizer tokenizer;
    private static List<RuncReferences.Case> cases;

    @BeforeAll
    static void load() throws IOException {
        tokenizer = Tokenizer.load(BundledModel.extracted().tokenizer(), 512);
        cases = RuncReferences.cases();
    }

    @Test
    void indexCoversTheAgreedRuns() {
        assertEquals(14, cases.size());
        assertTrue(cases.stream().anyMatch(c -> c.prompt() != null && c.prompt().equals("Lily saw a café ☕")));
        assertTrue(cases.stream().anyMatch(c -> c.effectiveSteps() == 1));
        assertTrue(cases.stream().anyMatch(c -> c.stoppedOnBos()));
    }

    @Test
    void greedyAndSampledRunsReproduceTheSamplesPublishedWithTheModel() throws IOException {
        assertEquals(DOC_GREEDY, new String(RuncReferences.find("greedy-empty-256").stdoutBytes(), StandardCharsets.UTF_8));
        assertEquals(DOC_SAMPLED, new String(RuncReferences.find("topp-empty-s133742").stdoutBytes(), StandardCharsets.UTF_8));
    }

    @Test
    void promptTokensAreOurEncoding() {
        for (RuncReferences.Case c : cases) {
            String prompt = c.prompt() == null ? "" : c.prompt();
            assertArrayEquals(c.promptTokens(), tokenizer.encode(prompt, true, false), c.name());
            int forced = Math.min(c.promptTokens().length, c.tokens().length); // steps may end inside the prompt
            assertArrayEquals(Arrays.copyOf(c.promptTokens(), forced), Arrays.copyOf(c.tokens(), forced), c.name());
        }
    }

    @Test
    void tokenCountsFollowRunCStepRule() {
        for (RuncReferences.Case c : cases) {
            int produced = c.tokens().length - 1;
            if (c.stoppedOnBos()) {
                assertTrue(produced <= c.effectiveSteps(), c.name());
                assertEquals(Tokenizer.BOS, c.tokens()[c.tokens().length - 1], c.name());
            } else {
                assertEquals(c.effectiveSteps(), produced, c.name());
            }
        }
    }

    @Test
    void stdoutIsExactlyTheRunCOutputOfTheTokens() throws IOException {
        for (RuncReferences.Case c : cases) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            int[] t = c.tokens();
            for (int i = 1; i < t.length && t[i] != Tokenizer.BOS; i++) {
                out.writeBytes(tokenizer.runcOutput(t[i - 1], t[i]));
            }
            out.write('\n');
            assertArrayEquals(c.stdoutBytes(), out.toByteArray(), c.name());
        }
    }

    @Test
    void ourTextKeepsTheCharactersRunCDrops() throws IOException {
        RuncReferences.Case cafe = RuncReferences.find("greedy-cafe-64");
        String stdout = new String(cafe.stdoutBytes(), StandardCharsets.UTF_8);
        assertTrue(stdout.startsWith("Lily saw a café ."), stdout); // ☕ was three byte tokens, all dropped
        assertTrue(tokenizer.decode(cafe.tokens()).startsWith("Lily saw a café ☕."));
    }
}
