package io.spotserve.bench.eval;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Request arrival times for the SpotServe evaluation (paper §6.1 / digest §7.3): a Gamma renewal process with
 * a true coefficient of variation (the paper's "CV = 6": shape 1/CV², scale CV²/λ), the artifact's generator
 * (shape (1000/λ)/CV, scale CV ms — right mean, but CV = 1/√shape ≈ 0.05, i.e. near-periodic), and the MAF
 * fluctuating workload (per-60-s-slot rates of {@code arrival-rates.csv}, or the artifact's recorded schedule
 * {@code query_realAr_cv6.txt}). All times are seconds from the start; generators are seeded and pure.
 */
public final class Arrivals {
    private Arrivals() {
    }

    /** Which arrival generator to use. */
    public enum Mode {
        /** Gamma renewal process with the stated CV (shape 1/CV²). */
        PAPER,
        /** The artifact's near-periodic generator (shape (1/λ)·1000/CV, scale CV/1000 s). */
        ARTIFACT
    }

    /**
     * One Gamma(shape, scale) variate: Marsaglia–Tsang for shape &gt;= 1, and for shape &lt; 1 the boost
     * G(k) = G(k + 1)·U^(1/k) (computed in logs so tiny shapes such as 1/36 do not underflow to 0 too often).
     */
    public static double gamma(SplittableRandom rng, double shape, double scale) {
        if (!(shape > 0) || !(scale > 0) || Double.isInfinite(shape) || Double.isInfinite(scale)) {
            throw new IllegalArgumentException("gamma shape and scale must be finite and > 0, were " + shape + ", " + scale);
        }
        if (shape < 1) {
            double g = gamma(rng, shape + 1, 1.0);
            double u = 1.0 - rng.nextDouble();          // (0, 1]
            return scale * Math.exp(Math.log(g) + Math.log(u) / shape);
        }
        double d = shape - 1.0 / 3;
        double c = 1 / Math.sqrt(9 * d);
        while (true) {
            double x;
            double v;
            do {
                x = normal(rng);
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            double u = rng.nextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) {
                return scale * d * v;
            }
        }
    }

    private static double normal(SplittableRandom rng) {
        double u1 = 1.0 - rng.nextDouble();
        double u2 = rng.nextDouble();
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }

    /** Shape and scale (seconds) of one inter-arrival gap for rate λ and CV under {@code mode}. */
    public static double[] gapShapeScale(Mode mode, double rate, double cv) {
        if (!(rate > 0) || !(cv > 0) || Double.isInfinite(rate) || Double.isInfinite(cv)) {
            throw new IllegalArgumentException("rate and cv must be finite and > 0, were " + rate + ", " + cv);
        }
        return mode == Mode.PAPER
                ? new double[] {1 / (cv * cv), cv * cv / rate}
                : new double[] {(1000.0 / rate) / cv, cv / 1000.0};
    }

    /** Arrival times in [0, duration) of a renewal process with constant rate λ. */
    public static double[] constantRate(Mode mode, double rate, double cv, double duration, long seed) {
        double[] ss = gapShapeScale(mode, rate, cv);
        SplittableRandom rng = new SplittableRandom(seed);
        List<Double> out = new ArrayList<>();
        double t = 0;
        while (true) {
            t += gamma(rng, ss[0], ss[1]);
            if (t >= duration) {
                break;
            }
            out.add(t);
        }
        return out.stream().mapToDouble(Double::doubleValue).toArray();
    }

    /**
     * Arrivals with a piecewise-constant rate (one value per {@code slotSeconds}), by time change: a unit-rate
     * renewal process with the mode's gap shape is drawn in cumulative-intensity time Λ and mapped back by Λ⁻¹, so
     * burstiness (CV) is the same in every slot and the expected count in a slot is rate·slot.
     */
    public static double[] piecewiseRate(Mode mode, double[] rates, double slotSeconds, double cv, long seed) {
        if (rates.length == 0 || !(slotSeconds > 0)) {
            throw new IllegalArgumentException("need >= 1 rate and slotSeconds > 0, had " + rates.length + " rates, slot " + slotSeconds);
        }
        double[] cum = new double[rates.length + 1];
        for (int i = 0; i < rates.length; i++) {
            if (!(rates[i] > 0)) {
                throw new IllegalArgumentException("rate " + i + " must be > 0, was " + rates[i]);
            }
            cum[i + 1] = cum[i] + rates[i] * slotSeconds;
        }
        double[] ss = gapShapeScale(mode, 1.0, cv);
        SplittableRandom rng = new SplittableRandom(seed);
        List<Double> out = new ArrayList<>();
        double lambda = 0;
        int slot = 0;
        while (true) {
            lambda += gamma(rng, ss[0], ss[1]);
            if (lambda >= cum[rates.length]) {
                break;
            }
            while (cum[slot + 1] <= lambda) {
                slot++;
            }
            out.add(slot * slotSeconds + (lambda - cum[slot]) / rates[slot]);
        }
        return out.stream().mapToDouble(Double::doubleValue).toArray();
    }

    /** The one-line rate list of {@code workload/arrival-rates.csv} (requests/s). */
    public static double[] readRates(Path file) throws IOException {
        String line = Files.readString(file, StandardCharsets.UTF_8).strip();
        String[] parts = line.split(",");
        double[] r = new double[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                r[i] = Double.parseDouble(parts[i].strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(file + ": field " + (i + 1) + " '" + parts[i] + "' is not a number");
            }
        }
        return r;
    }

    /** Arrival times (column 2, seconds) of {@code workload/query_realAr_cv6.txt}. */
    public static double[] readSchedule(Path file) throws IOException {
        List<Double> out = new ArrayList<>();
        int n = 0;
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            n++;
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.split(",");
            if (f.length < 2) {
                throw new IllegalArgumentException(file + ":" + n + ": expected index,arrival_s,... but got '" + line + "'");
            }
            out.add(Double.parseDouble(f[1].strip()));
        }
        return out.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    }

    /** Sample coefficient of variation of the gaps between consecutive arrivals (first gap from 0). */
    public static double gapCv(double[] arrivals) {
        int n = arrivals.length;
        if (n < 2) {
            throw new IllegalArgumentException("need >= 2 arrivals, had " + n);
        }
        double sum = 0;
        double sq = 0;
        double prev = 0;
        for (double a : arrivals) {
            double g = a - prev;
            prev = a;
            sum += g;
            sq += g * g;
        }
        double mean = sum / n;
        double var = sq / n - mean * mean;
        return Math.sqrt(Math.max(var, 0)) / mean;
    }
}
