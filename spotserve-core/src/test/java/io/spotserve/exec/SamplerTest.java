package io.spotserve.exec;

import io.spotserve.testing.TsvFixtures;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * The sampler against (a) run.c's own choices on real stories260K logits, (b) run.c's RNG output, and (c)
 * brute-force re-implementations on seeded random logits.
 */
class SamplerTest {
    private static final BigInteger MASK64 = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

    // ---- (a) real logits recorded from run.c, with the tokens run.c sampled from them ----------------

    @Test
    void reproducesRunCChoicesOnRealLogits() throws IOException {
        List<String[]> cases = rows("runc-sampler-cases.tsv");
        assertEquals(5, cases.size());
        for (String[] c : cases) {
            String name = c[0];
            float temperature = Float.parseFloat(c[1]);
            float topP = Float.parseFloat(c[2]);
            long seed = Long.parseLong(c[3]);
            int[] expected = Arrays.stream(c[4].split(" ")).mapToInt(Integer::parseInt).toArray();
            // run.c -p 0 means "top-p off", which is topP = 1 here; greedy runs ignore the seed
            SamplingParams params = temperature == 0f ? SamplingParams.greedy()
                    : new SamplingParams(temperature, topP <= 0f ? 1f : topP, seed);
            Sampler sampler = new Sampler(params);
            float[][] logits = logitRows(name + ".logits", expected.length, 512);
            int[] actual = new int[expected.length];
            for (int step = 0; step < expected.length; step++) {
                actual[step] = sampler.sample(logits[step]);
            }
            assertArrayEquals(expected, actual, name);
        }
    }

    // ---- (b) the generator -----------------------------------------------------------------------------

    @Test
    void generatorMatchesRunCOutputForRecordedSeeds() throws IOException {
        // runc-rng.txt: per seed 8 lines "random_u32 state_after" then 8 lines "random_f32 (%.9g) %a"
        List<String> lines = new ArrayList<>();
        for (String[] row : rows("runc-rng.txt")) {
            lines.add(row[0]);
        }
        int seeds = 0;
        for (int i = 0; i < lines.size(); i += 17) {
            long seed = Long.parseUnsignedLong(lines.get(i).substring("seed ".length()));
            Sampler ints = new Sampler(new SamplingParams(1f, 1f, seed));
            Sampler floats = new Sampler(new SamplingParams(1f, 1f, seed));
            for (int k = 0; k < 8; k++) {
                String[] u = lines.get(i + 1 + k).split(" ");
                assertEquals(Long.parseLong(u[0]), Integer.toUnsignedLong(ints.nextU32()), "u32 seed " + seed);
                assertEquals(Long.parseUnsignedLong(u[1]), ints.rngState(), "state seed " + seed);
                String[] f = lines.get(i + 9 + k).split(" ");
                assertEquals(Float.parseFloat(f[1]), floats.nextFloat(), "f32 seed " + seed);
            }
            seeds++;
        }
        assertEquals(3, seeds);
    }

    @Test
    void generatorMatchesTheXorshiftFormulaInExactArithmetic() {
        Random random = new Random(7);
        for (int s = 0; s < 50; s++) {
            long seed = random.nextLong() | 1;
            Sampler sampler = new Sampler(new SamplingParams(1f, 1f, seed));
            BigInteger state = new BigInteger(Long.toUnsignedString(seed));
            for (int k = 0; k < 20; k++) {
                state = state.xor(state.shiftRight(12));
                state = state.xor(state.shiftLeft(25)).and(MASK64);
                state = state.xor(state.shiftRight(27));
                long expected = state.multiply(new BigInteger("2545F4914F6CDD1D", 16)).and(MASK64).shiftRight(32)
                        .longValueExact();
                assertEquals(expected, Integer.toUnsignedLong(sampler.nextU32()));
                assertEquals(state, new BigInteger(Long.toUnsignedString(sampler.rngState())));
            }
        }
    }

    @Test
    void firstCoinOfTheDocumentedSeed() {
        // random_f32 for seed 133742: (3033531262 >> 8) / 2^24, computed by hand from run.c's formula
        Sampler sampler = new Sampler(new SamplingParams(1f, 0.9f, 133742));
        assertEquals((3033531262L >> 8) / 16777216.0f, sampler.nextFloat());
        assertEquals(0.706299007f, (3033531262L >> 8) / 16777216.0f);
    }

    // ---- (c) brute force on random logits ----------------------------------------------------------

    @Test
    void greedyIsArgmaxFirstMaximumAndLeavesStateAndLogitsAlone() {
        Sampler sampler = new Sampler(SamplingParams.greedy());
        float[] logits = {0.5f, 2f, -1f, 2f, 1.999f};
        float[] copy = logits.clone();
        assertEquals(1, sampler.sample(logits));
        assertArrayEquals(copy, logits);
        assertEquals(1L, sampler.rngState());
        assertEquals(0, sampler.sample(new float[] {Float.NEGATIVE_INFINITY}));
        Random random = new Random(3);
        for (int t = 0; t < 200; t++) {
            float[] l = randomLogits(random, 1 + random.nextInt(50));
            int best = 0;
            for (int i = 0; i < l.length; i++) {
                if (l[i] > l[best]) {
                    best = i;
                }
            }
            assertEquals(best, sampler.sample(l));
        }
    }

    @Test
    void multinomialMatchesBruteForce() {
        Random random = new Random(11);
        for (int t = 0; t < 300; t++) {
            float temperature = 0.25f + random.nextFloat() * 2f;
            long seed = random.nextLong() | 1;
            float[] logits = randomLogits(random, 1 + random.nextInt(600));
            Sampler sampler = new Sampler(new SamplingParams(temperature, 1f, seed));
            Oracle oracle = new Oracle(seed);
            for (int step = 0; step < 3; step++) {
                float[] l = logits.clone();
                int expected = oracle.multinomial(logits.clone(), temperature);
                assertEquals(expected, sampler.sample(l), "trial " + t + " step " + step);
                assertEquals(1.0, sum(l), 1e-4, "logits are replaced by probabilities");
            }
        }
    }

    @Test
    void topPMatchesBruteForce() {
        Random random = new Random(12);
        for (int t = 0; t < 300; t++) {
            float temperature = 0.25f + random.nextFloat() * 2f;
            float topP = 0.05f + random.nextFloat() * 0.9f;
            long seed = random.nextLong() | 1;
            float[] logits = randomLogits(random, 2 + random.nextInt(600));
            Sampler sampler = new Sampler(new SamplingParams(temperature, topP, seed));
            Oracle oracle = new Oracle(seed);
            for (int step = 0; step < 3; step++) {
                int expected = oracle.topP(logits.clone(), temperature, topP);
                assertEquals(expected, sampler.sample(logits.clone()), "trial " + t + " step " + step);
            }
        }
    }

    @Test
    void topPNeverLeavesTheNucleusAndTiesKeepIndexOrder() {
        // probabilities 0.4, 0.3, 0.2, 0.1 (as logits): nucleus for topP 0.6 is {0, 1} (0.4 + 0.3 > 0.6)
        float[] logits = {(float) Math.log(0.1), (float) Math.log(0.4), (float) Math.log(0.2), (float) Math.log(0.3)};
        Sampler sampler = new Sampler(new SamplingParams(1f, 0.6f, 99));
        int[] counts = new int[4];
        for (int i = 0; i < 4000; i++) {
            counts[sampler.sample(logits.clone())]++;
        }
        assertEquals(0, counts[0] + counts[2]);
        // within the nucleus the mass is renormalised: 4/7 vs 3/7
        assertEquals(4000 * 4 / 7.0, counts[1], 5 * Math.sqrt(4000 * (4 / 7.0) * (3 / 7.0)));
        // equal probabilities 0.25 each, topP 0.5: the stable sort keeps index order, the nucleus is {0, 1, 2}
        // (0.25 + 0.25 is not > 0.5), and the coin scaled by 0.75 picks among them in index order
        int[] seen = new int[4];
        for (long seed = 1; seed <= 200; seed++) {
            float coin = new Sampler(new SamplingParams(1f, 0.5f, seed)).nextFloat();
            float r = coin * 0.75f;
            int expected = r < 0.25f ? 0 : r < 0.5f ? 1 : 2;
            int pick = new Sampler(new SamplingParams(1f, 0.5f, seed)).sample(new float[] {1f, 1f, 1f, 1f});
            assertEquals(expected, pick, "seed " + seed);
            seen[pick]++;
        }
        assertTrue(seen[0] > 0 && seen[1] > 0 && seen[2] > 0 && seen[3] == 0, Arrays.toString(seen));
    }

    @Test
    void multinomialFrequenciesFollowTheDistribution() {
        float[] probs = {0.5f, 0.25f, 0.125f, 0.0625f, 0.0625f};
        float[] logits = new float[probs.length];
        for (int i = 0; i < probs.length; i++) {
            logits[i] = (float) Math.log(probs[i]);
        }
        Sampler sampler = new Sampler(new SamplingParams(1f, 1f, 2024));
        int draws = 20000;
        int[] counts = new int[probs.length];
        for (int i = 0; i < draws; i++) {
            counts[sampler.sample(logits.clone())]++;
        }
        for (int i = 0; i < probs.length; i++) {
            double mean = draws * probs[i];
            assertEquals(mean, counts[i], 5 * Math.sqrt(mean * (1 - probs[i])), "token " + i);
        }
    }

    @Test
    void singleTokenVocabulary() {
        Sampler sampler = new Sampler(new SamplingParams(1f, 0.5f, 3));
        assertEquals(0, sampler.sample(new float[] {4f}));
        assertTrue(sampler.rngState() != 3L, "the coin is still drawn, as in run.c");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> sampler.sample(new float[0]));
        assertEquals("logits must have at least one entry, had 0", e.getMessage());
    }

    @Test
    void rejectsBadParameters() {
        assertEquals("temperature must be finite and >= 0, was -0.5",
                assertThrows(IllegalArgumentException.class, () -> new SamplingParams(-0.5f, 0.9f, 1)).getMessage());
        assertEquals("temperature must be finite and >= 0, was NaN",
                assertThrows(IllegalArgumentException.class, () -> new SamplingParams(Float.NaN, 0.9f, 1)).getMessage());
        assertEquals("temperature must be finite and >= 0, was Infinity",
                assertThrows(IllegalArgumentException.class,
                        () -> new SamplingParams(Float.POSITIVE_INFINITY, 0.9f, 1)).getMessage());
        assertEquals("topP must be in (0, 1], was 0.0",
                assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1f, 0f, 1)).getMessage());
        assertEquals("topP must be in (0, 1], was 1.5",
                assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1f, 1.5f, 1)).getMessage());
        assertEquals("topP must be in (0, 1], was NaN",
                assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1f, Float.NaN, 1)).getMessage());
        assertEquals("seed must be non-zero, was 0 (state 0 is a fixed point of the xorshift64* generator)",
                assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1f, 0.9f, 0)).getMessage());
        assertTrue(SamplingParams.greedy().isGreedy());
        assertThrows(NullPointerException.class, () -> new Sampler(null));
    }

    // ---- brute-force oracle ----------------------------------------------------------------------------

    /**
     * An independent re-statement of run.c's sampler: probabilities via a separate float softmax, the RNG in
     * BigInteger arithmetic, top-p by sorting all tokens (no cutoff) and taking the shortest prefix whose
     * float-accumulated mass exceeds topP.
     */
    private static final class Oracle {
        private BigInteger state;

        Oracle(long seed) {
            state = new BigInteger(Long.toUnsignedString(seed));
        }

        float coin() {
            state = state.xor(state.shiftRight(12));
            state = state.xor(state.shiftLeft(25)).and(MASK64);
            state = state.xor(state.shiftRight(27));
            long u32 = state.multiply(new BigInteger("2545F4914F6CDD1D", 16)).and(MASK64).shiftRight(32).longValue();
            return (u32 >> 8) / 16777216.0f;
        }

        static float[] probabilities(float[] logits, float temperature) {
            float[] p = new float[logits.length];
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < logits.length; i++) {
                p[i] = logits[i] / temperature;
                max = Math.max(max, p[i]);
            }
            float sum = 0f;
            for (int i = 0; i < p.length; i++) {
                p[i] = (float) StrictMath.exp(p[i] - max);
                sum += p[i];
            }
            for (int i = 0; i < p.length; i++) {
                p[i] /= sum;
            }
            return p;
        }

        int multinomial(float[] logits, float temperature) {
            float[] p = probabilities(logits, temperature);
            float coin = coin();
            float cdf = 0f;
            for (int i = 0; i < p.length; i++) {
                cdf += p[i];
                if (coin < cdf) {
                    return i;
                }
            }
            return p.length - 1;
        }

        int topP(float[] logits, float temperature, float topP) {
            float[] p = probabilities(logits, temperature);
            float coin = coin();
            Integer[] order = IntStream.range(0, p.length).boxed().toArray(Integer[]::new);
            Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -p[i]).thenComparingInt(i -> i));
            float mass = 0f;
            int k = 0;
            while (k < order.length && !(mass > topP)) {
                mass += p[order[k++]];
            }
            float r = coin * mass;
            float cdf = 0f;
            for (int i = 0; i < k; i++) {
                cdf += p[order[i]];
                if (r < cdf) {
                    return order[i];
                }
            }
            return order[k - 1];
        }
    }

    // ---- helpers ---------------------------------------------------------------------------------------

    private static float[] randomLogits(Random random, int n) {
        float[] l = new float[n];
        float scale = 0.5f + random.nextFloat() * 8f;
        for (int i = 0; i < n; i++) {
            l[i] = (float) random.nextGaussian() * scale;
        }
        return l;
    }

    private static double sum(float[] values) {
        double s = 0;
        for (float v : values) {
            s += v;
        }
        return s;
    }

    private static float[][] logitRows(String resource, int rows, int vocab) throws IOException {
        try (InputStream in = SamplerTest.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource " + resource);
            }
            ByteBuffer buffer = ByteBuffer.wrap(in.readAllBytes()).order(ByteOrder.LITTLE_ENDIAN);
            assertEquals((long) rows * vocab * Float.BYTES, buffer.remaining(), resource + " size");
            float[][] out = new float[rows][vocab];
            for (float[] row : out) {
                buffer.asFloatBuffer().get(row);
                buffer.position(buffer.position() + vocab * Float.BYTES);
            }
            return out;
        }
    }

    private static List<String[]> rows(String resource) throws IOException {
        return TsvFixtures.rows(SamplerTest.class, resource);
    }

    /**
     * Regression (issue 12, defect 3): 1e-40 passes validation, but logits / 1e-40 overflow, and run.c's arithmetic
     * then makes NaN probabilities (top-p read index -1, multinomial repeated the last token). Every accepted
     * temperature is well defined: a tiny one behaves as its limit, the argmax, checked against a brute-force argmax.
     */
    @Test
    void tinyPositiveTemperatureSamplesTheArgmax() {
        Random rnd = new Random(12);
        for (float topP : new float[] {0.5f, 0.9f, 1f}) {
            for (float t : new float[] {1e-40f, Float.MIN_VALUE, 1e-30f}) {
                Sampler sampler = new Sampler(new SamplingParams(t, topP, 7));
                for (int trial = 0; trial < 50; trial++) {
                    float[] logits = new float[512];
                    int best = 0;
                    for (int i = 0; i < logits.length; i++) {
                        logits[i] = (float) rnd.nextGaussian() * 4f;
                        if (logits[i] > logits[best]) {
                            best = i;
                        }
                    }
                    assertEquals(best, sampler.sample(logits.clone()), "t = " + t + ", topP = " + topP);
                }
            }
        }
        // ties at the maximum share the mass: each of them is drawn, nothing else is
        Sampler sampler = new Sampler(new SamplingParams(1e-40f, 1f, 3));
        boolean[] seen = new boolean[4];
        for (int trial = 0; trial < 200; trial++) {
            int token = sampler.sample(new float[] {2f, 5f, -1f, 5f});
            assertTrue(token == 1 || token == 3, "token " + token);
            seen[token] = true;
        }
        assertTrue(seen[1] && seen[3], "both maxima are drawn");
    }
}
