package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.Tokenizer;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link Generator} on the real stories260K model and the scalar CPU executor (run.c's float order) against
 * an oracle that is run.c's {@code generate()} loop written out literally over {@link ReferenceLlama}: one
 * forward per position, no prefill blocks, no batching. Same tokens means prefill chunking and batching change
 * nothing; the run.c reference outputs themselves are checked end to end by the CLI tests in
 * spotserve-examples.
 */
class GeneratorTest {
    private static LlamaCheckpoint ckpt;
    private static Tokenizer tok;
    private static CpuExecutor executor;

    @BeforeAll
    static void load() throws IOException {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        tok = Tokenizer.load(SharedData.tok512(), ckpt.config().vocabSize());
        executor = new CpuExecutor(new ExecutorOptions(1, false));
    }

    @AfterAll
    static void close() {
        executor.close();
    }

    private static final Map<Generator.Request, int[]> ORACLE = new HashMap<>();

    /** run.c generate() literally, on the transliterated reference forward pass (memoised per request). */
    private static int[] oracle(Generator.Request r) {
        return ORACLE.computeIfAbsent(r, GeneratorTest::runc).clone();
    }

    private static int[] runc(Generator.Request r) {
        ReferenceLlama model = new ReferenceLlama(ckpt);
        int[] prompt = tok.encode(r.prompt(), true, false);
        int steps = r.steps() == 0 || r.steps() > ckpt.config().seqLen() ? ckpt.config().seqLen() : r.steps();
        Sampler sampler = new Sampler(r.sampling());
        List<Integer> out = new ArrayList<>(List.of(prompt[0]));
        int token = prompt[0];
        int pos = 0;
        while (pos < steps) {
            float[] logits = model.forward(token, pos).clone();
            int next = pos < prompt.length - 1 ? prompt[pos + 1] : sampler.sample(logits);
            pos++;
            out.add(next);
            if (next == Tokenizer.BOS) {
                break;
            }
            token = next;
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    private static final List<Generator.Request> REQUESTS = List.of(
            new Generator.Request("", 0, SamplingParams.greedy()), // runs until BOS is chosen (position 346)
            new Generator.Request("Once upon a time", 2, SamplingParams.greedy()), // ends inside the prompt
            new Generator.Request("Once upon a time", 5, SamplingParams.greedy()), // first sampled token is the last
            new Generator.Request("Lily saw a café ☕", 40, SamplingParams.greedy()),
            new Generator.Request("", 96, new SamplingParams(1.0f, 0.9f, 133742L)),
            new Generator.Request("Lily and Ben went to the park to play with a ball and a red kite", 80,
                    new SamplingParams(0.8f, 0.5f, 7L)),
            new Generator.Request("Lily and Ben", 60, new SamplingParams(1.2f, 1.0f, 99L)));

    private Pipeline pipeline(int maxBatch) {
        return TestPipelines.loaded(executor, ckpt, ShardLayout.of(ckpt.config(), 1, 1), "gen" + System.nanoTime(),
                maxBatch);
    }

    @Test
    void eachRequestAloneMatchesTheLiteralRunCLoop() {
        try (Pipeline p = pipeline(3)) { // maxBatch 3: prompts are split over several forward calls
            Generator gen = new Generator(p, tok);
            for (Generator.Request r : REQUESTS) {
                List<Integer> streamed = new ArrayList<>();
                StringBuilder text = new StringBuilder();
                int[] finishes = new int[1];
                Generator.Output out = gen.generate(r, new Generator.Listener() {
                    @Override
                    public void onToken(int index, int token, String t) {
                        assertEquals(0, index);
                        assertEquals(0, finishes[0], "token after finish");
                        streamed.add(token);
                        text.append(t);
                    }

                    @Override
                    public void onFinish(int index, String t) {
                        finishes[0]++;
                        text.append(t);
                    }
                });
                int[] expected = oracle(r);
                String label = r.toString();
                assertArrayEquals(expected, out.tokens(), label);
                assertArrayEquals(tok.encode(r.prompt(), true, false), out.promptTokens(), label);
                assertEquals(expected[expected.length - 1] == Tokenizer.BOS, out.stoppedOnBos(), label);
                assertArrayEquals(out.emitted(), streamed.stream().mapToInt(Integer::intValue).toArray(), label);
                assertEquals(1, finishes[0], label);
                assertEquals(text.toString(), out.text(), label);
                int[] upToBos = out.stoppedOnBos() ? Arrays.copyOf(expected, expected.length - 1) : expected;
                assertEquals(tok.decode(upToBos), out.text(), label);
                assertTrue(p.sequences().isEmpty(), "sequences left open after " + label);
            }
        }
    }

    @Test
    void theExampleRunsEndWhereRunCEnds() {
        try (Pipeline p = pipeline(64)) {
            Generator gen = new Generator(p, tok);
            Generator.Output full = gen.generate(REQUESTS.get(0), Generator.SILENT);
            assertTrue(full.stoppedOnBos());
            assertEquals(347, full.tokens().length); // BOS sampled at position 346 (run.c's -n 0 reference)
            Generator.Output cafe = gen.generate(REQUESTS.get(3), Generator.SILENT);
            assertTrue(cafe.text().startsWith("Lily saw a café ☕."), cafe.text());
            assertEquals(40, cafe.tokens().length - 1);
            Generator.Output short2 = gen.generate(REQUESTS.get(1), Generator.SILENT);
            assertEquals("Once upon", short2.text());
        }
    }

    @Test
    void requestsDecodedTogetherEqualEachAlone() {
        try (Pipeline p = pipeline(4)) { // fewer entries per call than the 7 requests' prompts
            Generator gen = new Generator(p, tok);
            List<StringBuilder> texts = new ArrayList<>();
            for (int i = 0; i < REQUESTS.size(); i++) {
                texts.add(new StringBuilder());
            }
            List<Generator.Output> outs = gen.generate(REQUESTS, new Generator.Listener() {
                @Override
                public void onToken(int index, int token, String text) {
                    texts.get(index).append(text);
                }

                @Override
                public void onFinish(int index, String text) {
                    texts.get(index).append(text);
                }
            });
            assertEquals(REQUESTS.size(), outs.size());
            for (int i = 0; i < REQUESTS.size(); i++) {
                assertArrayEquals(oracle(REQUESTS.get(i)), outs.get(i).tokens(), REQUESTS.get(i).toString());
                assertEquals(outs.get(i).text(), texts.get(i).toString());
            }
            assertTrue(p.sequences().isEmpty());
        }
    }

    @Test
    void aForcedBosInThePromptStopsTheRunLikeRunC() {
        try (Pipeline p = pipeline(8)) {
            Generator gen = new Generator(p, tok);
            Generation g = new Generation(new int[] {1, 403, 1, 407}, 10, ckpt.config().seqLen(),
                    SamplingParams.greedy());
            List<Integer> emitted = new ArrayList<>();
            gen.run(List.of(g), (index, token, text) -> emitted.add(token));
            assertArrayEquals(new int[] {1, 403, 1}, g.tokens());
            assertTrue(g.stoppedOnBos());
            assertEquals(List.of(403), emitted);
        }
    }

    @Test
    void kvCachesThatDoNotFitLeaveNothingOpen() {
        ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
        Device d = executor.createDevice(new io.spotserve.plan.DeviceId("tight", 0),
                layout.weightBytes(0, 0) + layout.kvBytesPerPosition(0, 0) * 100);
        try (Pipeline p = executor.createPipeline(layout, List.of(d), 8)) {
            p.loadWeights(ckpt);
            Generator gen = new Generator(p, tok);
            Generator.Request r = new Generator.Request("Once", 60, SamplingParams.greedy());
            assertEquals(61, gen.generate(List.of(r), Generator.SILENT).get(0).tokens().length);
            long before = d.usedBytes();
            assertThrows(DeviceMemoryException.class, () -> gen.generate(List.of(r, r), Generator.SILENT));
            assertTrue(p.sequences().isEmpty());
            assertEquals(before, d.usedBytes());
        } finally {
            executor.destroyDevice(d);
        }
    }

    @Test
    void badInputsAreRejectedWithMessages() throws IOException {
        Tokenizer wrongVocab = Tokenizer.load(SharedData.tok512(), 300);
        try (Pipeline p = pipeline(4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Generator(p, wrongVocab));
            assertEquals("tokenizer has 300 tokens but the model's vocab_size is 512", e.getMessage());
            Generator gen = new Generator(p, tok);
            assertThrows(IllegalArgumentException.class, () -> gen.generate(List.of(), Generator.SILENT));
            IllegalArgumentException steps = assertThrows(IllegalArgumentException.class,
                    () -> new Generator.Request("x", -3, SamplingParams.greedy()));
            assertEquals("steps must be >= 0 (0 = seq_len), was -3", steps.getMessage());
            Generation used = new Generation(new int[] {1, 403}, 5, 512, SamplingParams.greedy());
            used.advance(null);
            IllegalArgumentException advanced = assertThrows(IllegalArgumentException.class,
                    () -> gen.run(List.of(used), Generator.SILENT));
            assertTrue(advanced.getMessage().contains("already advanced to position 1"), advanced.getMessage());
            Generation tooLong = new Generation(new int[] {1}, 600, 1024, SamplingParams.greedy());
            IllegalArgumentException seqLen = assertThrows(IllegalArgumentException.class,
                    () -> gen.run(List.of(tooLong), Generator.SILENT));
            assertTrue(seqLen.getMessage().contains("seq_len is 512"), seqLen.getMessage());
        }
        Pipeline empty = executor.createPipeline(ShardLayout.of(ckpt.config(), 1, 1),
                TestPipelines.devices(executor, ShardLayout.of(ckpt.config(), 1, 1), "empty", 1L << 30), 4);
        try (empty) {
            assertThrows(IllegalStateException.class, () -> new Generator(empty, tok));
        }
    }
}
