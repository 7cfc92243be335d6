package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The run.c loop rules of {@link Generation}, on a synthetic "model" whose logits are a seeded function of
 * (token, position), checked against a literal transcription of run.c's {@code generate()} loop.
 */
class GenerationTest {
    private static final int VOCAB = 16;

    /** Deterministic fake logits: depend only on the input token and position, BOS is a rare but real choice. */
    private static float[] logits(long salt, int token, int pos) {
        SplittableRandom r = new SplittableRandom(salt * 1_000_003L + token * 7919L + pos);
        float[] l = new float[VOCAB];
        for (int i = 0; i < VOCAB; i++) {
            l[i] = (float) r.nextGaussian();
        }
        l[1] -= 1.5f;
        return l;
    }

    /** run.c generate(), line by line: returns the first prompt token then every chosen token. */
    private static int[] runc(long salt, int[] prompt, int steps, int seqLen, SamplingParams params) {
        if (steps == 0 || steps > seqLen) {
            steps = seqLen;
        }
        Sampler sampler = new Sampler(params);
        List<Integer> out = new ArrayList<>(List.of(prompt[0]));
        int token = prompt[0];
        int pos = 0;
        while (pos < steps) {
            float[] logits = logits(salt, token, pos);
            int next = pos < prompt.length - 1 ? prompt[pos + 1] : sampler.sample(logits);
            pos++;
            out.add(next);
            if (next == 1) {
                break;
            }
            token = next;
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Drives a Generation block by block, as a batched driver does. */
    private static Generation drive(long salt, int[] prompt, int steps, int seqLen, SamplingParams params) {
        Generation g = new Generation(prompt, steps, seqLen, params);
        while (!g.isDone()) {
            int[] block = g.nextInputs();
            assertTrue(block.length >= 1);
            int start = g.position();
            for (int k = 0; k < block.length; k++) {
                boolean last = k == block.length - 1;
                assertEquals(last && start + k >= prompt.length - 1, g.needsLogits(), "needsLogits at " + (start + k));
                if (!last) {
                    assertEquals(prompt[start + k + 1], g.advance(null));
                } else {
                    g.advance(g.needsLogits() ? logits(salt, block[k], start + k) : null);
                }
                if (g.isDone()) {
                    break;
                }
            }
        }
        assertEquals(0, g.nextInputs().length);
        return g;
    }

    @Test
    void seededRandomRunsMatchTheLiteralRunCLoop() {
        SplittableRandom r = new SplittableRandom(20261123L);
        int stoppedOnBos = 0;
        int endedInPrompt = 0;
        for (int c = 0; c < 500; c++) {
            int seqLen = 1 + r.nextInt(40);
            int[] prompt = new int[1 + r.nextInt(8)];
            prompt[0] = 1;
            for (int i = 1; i < prompt.length; i++) {
                prompt[i] = 3 + r.nextInt(VOCAB - 3);
            }
            int steps = r.nextInt(seqLen + 5); // 0 and > seqLen included
            SamplingParams params = switch (r.nextInt(3)) {
                case 0 -> SamplingParams.greedy();
                case 1 -> new SamplingParams(0.5f + r.nextFloat(), 0.9f, 1 + r.nextInt(1000));
                default -> new SamplingParams(1.0f, 1.0f, 1 + r.nextInt(1000));
            };
            int[] expected = runc(c, prompt, steps, seqLen, params);
            Generation g = drive(c, prompt, steps, seqLen, params);
            String label = "case " + c + " prompt " + Arrays.toString(prompt) + " steps " + steps + " seqLen " + seqLen;
            assertArrayEquals(expected, g.tokens(), label);
            boolean bos = expected[expected.length - 1] == 1 && expected.length > 1;
            assertEquals(bos, g.stoppedOnBos(), label);
            assertEquals(g.tokens().length - 1, g.position(), label);
            assertArrayEquals(Arrays.copyOfRange(expected, 1, bos ? expected.length - 1 : expected.length), g.emitted(),
                    label);
            stoppedOnBos += bos ? 1 : 0;
            endedInPrompt += Generation.effectiveSteps(steps, seqLen) < prompt.length - 1 ? 1 : 0;
        }
        assertTrue(stoppedOnBos > 10, "BOS stops exercised: " + stoppedOnBos);
        assertTrue(endedInPrompt > 10, "runs ending inside the prompt exercised: " + endedInPrompt);
    }

    @Test
    void promptIsOnePrefillBlockThenOneTokenPerPosition() {
        float[] pick7 = new float[VOCAB];
        pick7[7] = 1f;
        Generation g = new Generation(new int[] {1, 10, 11, 12}, 10, 512, SamplingParams.greedy());
        assertArrayEquals(new int[] {1, 10, 11, 12}, g.nextInputs());
        assertEquals(10, g.advance(null));
        assertEquals(11, g.advance(pick7)); // forced: the logits are ignored
        assertEquals(12, g.advance(null));
        assertTrue(g.needsLogits());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> g.advance(null));
        assertTrue(e.getMessage().contains("position 3"), e.getMessage());
        assertEquals(3, g.position()); // unchanged
        assertEquals(7, g.advance(pick7));
        assertArrayEquals(new int[] {7}, g.nextInputs());
        assertArrayEquals(new int[] {1, 10, 11, 12, 7}, g.tokens());
        assertArrayEquals(new int[] {10, 11, 12, 7}, g.emitted());
    }

    @Test
    void stepsCountPositionsSoARunCanEndInsideItsPrompt() {
        Generation g = new Generation(new int[] {1, 10, 11, 12}, 2, 512, SamplingParams.greedy());
        assertArrayEquals(new int[] {1, 10}, g.nextInputs()); // positions 0 and 1 only
        assertFalse(g.needsLogits());
        g.advance(null);
        g.advance(null);
        assertTrue(g.isDone());
        assertFalse(g.stoppedOnBos());
        assertArrayEquals(new int[] {1, 10, 11}, g.tokens());
        assertThrows(IllegalStateException.class, () -> g.advance(null));
    }

    @Test
    void choosingBosStopsWithoutEmittingIt() {
        float[] bos = new float[VOCAB];
        bos[1] = 1f;
        Generation g = new Generation(new int[] {1}, 0, 512, SamplingParams.greedy());
        assertEquals(512, g.steps());
        assertEquals(1, g.advance(bos));
        assertTrue(g.isDone());
        assertTrue(g.stoppedOnBos());
        assertArrayEquals(new int[] {1, 1}, g.tokens());
        assertArrayEquals(new int[0], g.emitted());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> g.advance(bos));
        assertTrue(e.getMessage().contains("stopped on BOS"), e.getMessage());
    }

    @Test
    void effectiveStepsFollowRunC() {
        assertEquals(512, Generation.effectiveSteps(0, 512));
        assertEquals(512, Generation.effectiveSteps(513, 512));
        assertEquals(512, Generation.effectiveSteps(512, 512));
        assertEquals(1, Generation.effectiveSteps(1, 512));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Generation.effectiveSteps(-1, 512));
        assertEquals("steps must be >= 0 (0 = seq_len 512), was -1", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Generation.effectiveSteps(5, 0));
        IllegalArgumentException empty = assertThrows(IllegalArgumentException.class,
                () -> new Generation(new int[0], 5, 512, SamplingParams.greedy()));
        assertTrue(empty.getMessage().contains("at least one token"), empty.getMessage());
    }
}
