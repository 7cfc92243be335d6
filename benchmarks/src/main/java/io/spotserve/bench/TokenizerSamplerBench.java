package io.spotserve.bench;

import io.spotserve.exec.Sampler;
import io.spotserve.exec.SamplingParams;
import io.spotserve.model.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * Prompt encoding with the real tok512 tokenizer (heap-based BPE merge; prompt lengths grow 8x per step to
 * show the scaling), and run.c-exact sampling of one token for a 512- and a 32000-token vocabulary.
 *
 * <p>Run from the repository root (needs {@code ../shared/models/tok512.bin}, or
 * {@code -Dspotserve.tok=PATH}):
 * {@code java -jar benchmarks/target/benchmarks.jar TokenizerSamplerBench -f 1 -wi 3 -i 5}
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class TokenizerSamplerBench {
    private static final String STORY = "Once upon a time, there was a little girl named Lily. She loved to play "
            + "outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too "
            + "high. Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. ";

    /** The tokenizer and a prompt of {@code promptChars} characters (the story repeated). */
    @State(Scope.Benchmark)
    public static class Prompt {
        @Param({"500", "4000", "32000"})
        public int promptChars;

        Tokenizer tokenizer;
        String text;

        @Setup
        public void setup() throws IOException {
            Path tok = Paths.get(System.getProperty("spotserve.tok", "../shared/models/tok512.bin"));
            if (!Files.exists(tok)) {
                throw new IllegalStateException("tokenizer not found at " + tok.toAbsolutePath()
                        + "; run from the repository root or pass -Dspotserve.tok=PATH");
            }
            tokenizer = Tokenizer.load(tok, 512);
            text = STORY.repeat(promptChars / STORY.length() + 1).substring(0, promptChars);
        }
    }

    /** Seeded Gaussian logits (std 3: peaked, not degenerate) and one sampler per mode. */
    @State(Scope.Benchmark)
    public static class Logits {
        @Param({"512", "32000"})
        public int vocab;

        float[] logits;
        float[] scratch;
        Sampler greedy;
        Sampler topP;
        Sampler multinomial;

        @Setup
        public void setup() {
            Random random = new Random(1);
            logits = new float[vocab];
            for (int i = 0; i < vocab; i++) {
                logits[i] = (float) random.nextGaussian() * 3f;
            }
            scratch = new float[vocab];
            greedy = new Sampler(SamplingParams.greedy());
            topP = new Sampler(new SamplingParams(1f, 0.9f, 133742));
            multinomial = new Sampler(new SamplingParams(1f, 1f, 133742));
        }

        float[] fresh() {
            System.arraycopy(logits, 0, scratch, 0, vocab); // the sampler overwrites its input, as run.c does
            return scratch;
        }
    }

    @Benchmark
    public int[] encode(Prompt p) {
        return p.tokenizer.encode(p.text, true, false);
    }

    @Benchmark
    public int sampleGreedy(Logits l) {
        return l.greedy.sample(l.fresh());
    }

    @Benchmark
    public int sampleTopP09(Logits l) {
        return l.topP.sample(l.fresh());
    }

    @Benchmark
    public int sampleMultinomial(Logits l) {
        return l.multinomial.sample(l.fresh());
    }
}
