package io.spotserve.bench.eval;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ArrivalsTest {
    private static final Path WORKLOAD = Evaluation.locateShared().resolve("traces/spotserve/workload");

    @Test
    void paperGammaGapsHaveCoefficientOfVariationSix() {
        double[] ss = Arrivals.gapShapeScale(Arrivals.Mode.PAPER, 0.35, 6);
        assertEquals(1.0 / 36, ss[0], 1e-12);
        SplittableRandom rng = new SplittableRandom(7);
        int n = 200_000;
        double sum = 0;
        double sq = 0;
        for (int i = 0; i < n; i++) {
            double g = Arrivals.gamma(rng, ss[0], ss[1]);
            assertTrue(g >= 0 && Double.isFinite(g), "gap " + g);
            sum += g;
            sq += g * g;
        }
        double mean = sum / n;
        double cv = Math.sqrt(sq / n - mean * mean) / mean;
        assertEquals(1 / 0.35, mean, 0.1 / 0.35, "mean gap");
        assertEquals(6.0, cv, 0.5, "coefficient of variation");
    }

    @Test
    void constantRateArrivalsKeepTheCvAndTheRate() {
        double[] a = Arrivals.constantRate(Arrivals.Mode.PAPER, 1.5, 6, 200_000, 3);
        assertEquals(1.5 * 200_000, a.length, 0.1 * 1.5 * 200_000);
        assertEquals(6.0, Arrivals.gapCv(a), 0.6);
        for (int i = 1; i < a.length; i++) {
            assertTrue(a[i] >= a[i - 1]);
        }
    }

    @Test
    void artifactGeneratorIsNearlyPeriodic() {
        double[] a = Arrivals.constantRate(Arrivals.Mode.ARTIFACT, 0.35, 6, 100_000, 5);
        double cv = Arrivals.gapCv(a);
        assertTrue(cv < 0.2, "artifact CV " + cv);
        assertEquals(0.35 * 100_000, a.length, 0.02 * 0.35 * 100_000);
    }

    @Test
    void theArtifactsRecordedMafScheduleIsNearlyPeriodicToo() throws Exception {
        double[] a = Arrivals.readSchedule(WORKLOAD.resolve("query_realAr_cv6.txt"));
        assertEquals(681, a.length);
        assertTrue(Arrivals.gapCv(a) < 0.2, "recorded schedule CV " + Arrivals.gapCv(a));
    }

    @Test
    void piecewiseRatesFollowTheMafSlots() throws Exception {
        double[] rates = Arrivals.readRates(WORKLOAD.resolve("arrival-rates.csv"));
        assertEquals(19, rates.length);
        double[] a = Arrivals.piecewiseRate(Arrivals.Mode.ARTIFACT, rates, 60, 6, 11);
        int[] per = new int[rates.length];
        for (double t : a) {
            per[(int) (t / 60)]++;
        }
        for (int i = 0; i < rates.length; i++) {
            assertEquals(rates[i] * 60, per[i], 2.5, "slot " + i);
        }
        // the recorded schedule has about the same total (681 requests)
        assertEquals(681, a.length, 5);
    }

    @Test
    void badParametersAreRejectedWithTheValue() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Arrivals.constantRate(Arrivals.Mode.PAPER, -1, 6, 10, 1));
        assertTrue(e.getMessage().contains("-1"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> Arrivals.gamma(new SplittableRandom(1), 0, 1));
    }
}
