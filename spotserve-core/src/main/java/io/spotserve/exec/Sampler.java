package io.spotserve.exec;

import java.util.Arrays;
import java.util.Objects;

/**
 * Chooses the next token from a logits vector exactly like llama2.c's {@code run.c} {@code sample()}.
 *
 * <p>Why bit-exact: SpotServe re-runs interrupted requests from their committed tokens; our end-to-end
 * fixtures were produced by run.c; and the "every parallel configuration generates the same tokens" check
 * only means something if sampling adds no noise of its own. Arithmetic is float (not double) in the same
 * order as the C code, so the same logits and seed give the same token ids.
 *
 * <ul>
 *   <li>temperature 0: argmax, the first maximum wins; the generator is not advanced.</li>
 *   <li>otherwise: logits /= temperature, softmax in float (max subtracted), one {@code random_f32()} coin
 *       per call, then multinomial sampling if topP &ge; 1, else top-p: candidates with probability
 *       &ge; (1-topP)/(n-1), sorted by probability descending, cut where the cumulative mass first exceeds
 *       topP, and sampled with {@code coin * cumulative}.</li>
 *   <li>a positive temperature so small that the largest logit divided by it overflows (run.c would compute NaN
 *       probabilities): the limit distribution, the mass spread evenly over the largest logits, then the same coin
 *       and the same multinomial / top-p step.</li>
 * </ul>
 *
 * <p><b>The logits array is overwritten</b> with the probabilities when temperature &gt; 0, as in run.c
 * (it avoids a copy per token); greedy sampling leaves it unchanged. Ties in the top-p sort keep ascending
 * token order (glibc's qsort is a stable merge sort whenever it can allocate its scratch buffer, so run.c
 * behaves the same).
 *
 * <p>Not thread-safe: one sampler (one generator state) per sequence.
 */
public final class Sampler {
    private final SamplingParams params;
    private long state;
    private int[] order = new int[0];
    private long[] keys = new long[0];

    /** A sampler whose generator starts at {@code params.seed()}. */
    public Sampler(SamplingParams params) {
        this.params = Objects.requireNonNull(params, "params");
        this.state = params.seed();
    }

    /** The parameters this sampler was built with. */
    public SamplingParams params() {
        return params;
    }

    /** The current xorshift64* state (run.c's {@code rng_state}); the seed before the first coin. */
    public long rngState() {
        return state;
    }

    /**
     * Samples a token id from {@code logits} (one entry per vocabulary id).
     *
     * @throws IllegalArgumentException if {@code logits} is empty
     */
    public int sample(float[] logits) {
        Objects.requireNonNull(logits, "logits");
        int n = logits.length;
        if (n == 0) {
            throw new IllegalArgumentException("logits must have at least one entry, had 0");
        }
        if (params.temperature() == 0f) {
            return argmax(logits);
        }
        float temperature = params.temperature();
        float largest = logits[argmax(logits)];
        if (Float.isInfinite(largest / temperature)) {
            limitDistribution(logits, largest); // a temperature so small that the scaled logits overflow
        } else {
            for (int i = 0; i < n; i++) {
                logits[i] /= temperature;
            }
            softmax(logits);
        }
        float coin = nextFloat();
        float topP = params.topP();
        if (topP <= 0f || topP >= 1f) {
            return sampleMultinomial(logits, coin);
        }
        return sampleTopP(logits, topP, coin);
    }

    /**
     * The softmax of {@code logits / t} as t approaches 0: the mass spread evenly over the largest logits, none
     * elsewhere. Used when the division itself would overflow (a positive temperature like 1e-40 that passes
     * validation), where run.c's arithmetic yields NaN probabilities.
     */
    private static void limitDistribution(float[] logits, float largest) {
        int ties = 0;
        for (float x : logits) {
            if (x == largest) {
                ties++;
            }
        }
        float share = 1f / ties;
        for (int i = 0; i < logits.length; i++) {
            logits[i] = logits[i] == largest ? share : 0f;
        }
    }

    /** run.c {@code random_u32}: one xorshift64* step, returns the high 32 bits of the scrambled state. */
    int nextU32() {
        state ^= state >>> 12;
        state ^= state << 25;
        state ^= state >>> 27;
        return (int) ((state * 0x2545F4914F6CDD1DL) >>> 32);
    }

    /** run.c {@code random_f32}: a float in [0, 1) from the top 24 bits of {@link #nextU32()}. */
    float nextFloat() {
        return (nextU32() >>> 8) / 16777216.0f;
    }

    /** Index of the largest value; the first one on ties. */
    static int argmax(float[] values) {
        int best = 0;
        float max = values[0];
        for (int i = 1; i < values.length; i++) {
            if (values[i] > max) {
                best = i;
                max = values[i];
            }
        }
        return best;
    }

    /** In-place softmax in float with the maximum subtracted, summing in index order like run.c. */
    static void softmax(float[] x) {
        float max = x[0];
        for (int i = 1; i < x.length; i++) {
            if (x[i] > max) {
                max = x[i];
            }
        }
        float sum = 0f;
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) StrictMath.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < x.length; i++) {
            x[i] /= sum;
        }
    }

    /** First index whose cumulative probability exceeds {@code coin}; the last index on rounding shortfall. */
    static int sampleMultinomial(float[] probabilities, float coin) {
        float cdf = 0f;
        for (int i = 0; i < probabilities.length; i++) {
            cdf += probabilities[i];
            if (coin < cdf) {
                return i;
            }
        }
        return probabilities.length - 1;
    }

    int sampleTopP(float[] probabilities, float topP, float coin) {
        int n = probabilities.length;
        if (n == 1) {
            return 0; // run.c would divide by n-1 = 0 and read probindex[-1]; the only token is the answer
        }
        if (order.length < n) {
            order = new int[n];
        }
        float cutoff = (1.0f - topP) / (n - 1);
        int n0 = 0;
        for (int i = 0; i < n; i++) {
            if (probabilities[i] >= cutoff) {
                order[n0++] = i;
            }
        }
        sortByProbabilityDescending(order, n0, probabilities);
        float cumulative = 0f;
        int last = n0 - 1;
        for (int i = 0; i < n0; i++) {
            cumulative += probabilities[order[i]];
            if (cumulative > topP) {
                last = i;
                break;
            }
        }
        float r = coin * cumulative;
        float cdf = 0f;
        for (int i = 0; i <= last; i++) {
            cdf += probabilities[order[i]];
            if (r < cdf) {
                return order[i];
            }
        }
        return order[last];
    }

    /**
     * Sorts {@code idx[0..count)} by probability descending, ascending index among equals (= a stable sort
     * of the index-ordered candidates). Candidates are at least the cutoff, so positive floats (never -0.0 or
     * NaN), whose bit patterns order like their values: each becomes one primitive {@code long} key, inverted
     * bits high and index low, and a plain primitive sort does the rest.
     */
    private void sortByProbabilityDescending(int[] idx, int count, float[] probabilities) {
        if (keys.length < count) {
            keys = new long[Math.max(count, keys.length * 2)];
        }
        for (int i = 0; i < count; i++) {
            int bits = Float.floatToRawIntBits(probabilities[idx[i]]);
            keys[i] = ((long) (Integer.MAX_VALUE - bits) << 32) | idx[i];
        }
        Arrays.sort(keys, 0, count);
        for (int i = 0; i < count; i++) {
            idx[i] = (int) keys[i];
        }
    }
}
