package io.spotserve.model;

import java.util.List;
import java.util.Objects;

/**
 * Per-pair divisors of the rotary frequencies: pair {@code i} of a head rotates at
 * {@code baseFrequency(i) / factors.get(i)}. This is how GGUF stores Llama-3.1's {@code rope_type: llama3}
 * scaling (a {@code rope_freqs.weight} tensor of {@code head_size / 2} factors); a Hugging Face
 * {@code rope_scaling} object is converted with {@link #llama3} so both formats yield equal configs.
 *
 * @param factors one positive divisor per rotary pair ({@code head_size / 2} of them)
 */
public record RopeScaling(List<Float> factors) {
    public RopeScaling {
        factors = List.copyOf(Objects.requireNonNull(factors, "factors"));
        for (int i = 0; i < factors.size(); i++) {
            float f = factors.get(i);
            if (!(f > 0) || Float.isInfinite(f)) {
                throw new IllegalArgumentException("rope scaling factor " + i + " is " + f + ", expected a finite positive value");
            }
        }
    }

    /**
     * Llama-3.1's frequency-dependent scaling (Hugging Face {@code rope_type: "llama3"}): wavelengths shorter than
     * {@code originalMaxPositions / highFreqFactor} keep their frequency, longer than
     * {@code originalMaxPositions / lowFreqFactor} are divided by {@code factor}, and those between are interpolated.
     */
    public static RopeScaling llama3(double theta, int headSize, double factor, double lowFreqFactor,
                                     double highFreqFactor, int originalMaxPositions) {
        if (!(factor >= 1) || !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor) || originalMaxPositions <= 0) {
            throw new IllegalArgumentException("llama3 rope scaling needs factor >= 1, 0 < low_freq_factor < "
                    + "high_freq_factor and original_max_position_embeddings > 0; got factor " + factor
                    + ", low_freq_factor " + lowFreqFactor + ", high_freq_factor " + highFreqFactor
                    + ", original_max_position_embeddings " + originalMaxPositions);
        }
        double lowWavelen = originalMaxPositions / lowFreqFactor;
        double highWavelen = originalMaxPositions / highFreqFactor;
        Float[] out = new Float[headSize / 2];
        for (int i = 0; i < out.length; i++) {
            double freq = 1.0 / Math.pow(theta, (2.0 * i) / headSize);
            double wavelen = 2 * Math.PI / freq;
            double divisor;
            if (wavelen < highWavelen) {
                divisor = 1;
            } else if (wavelen > lowWavelen) {
                divisor = factor;
            } else {
                double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                divisor = 1.0 / ((1 - smooth) / factor + smooth);
            }
            out[i] = (float) divisor;
        }
        return new RopeScaling(List.of(out));
    }
}
