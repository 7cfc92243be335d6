package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.plan.Arrangement.Action;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class InterruptionArrangerTest {
    private static final CostModel GPT = Profiles.model(PaperModel.GPT_20B);
    private static final ParallelConfig C = ParallelConfig.of(2, 2, 8, 4);
    private static final InterruptionArranger ARRANGER = new InterruptionArranger(GPT);
    /** One decode step of C with M2 = 1 (about 94 ms). */
    private static final double T = GPT.decodeStepSeconds(2, 8, 4, 1);

    /**
     * Preemption edges. Times are given in decode steps of C (×T) so the rows stay exact.
     * Columns: remaining R, T⁻ (steps), T_mig (steps), expected S, expected action.
     */
    @ParameterizedTest(name = "R={0} grace={1}T mig={2}T -> {3} {4}")
    @CsvSource({
        "128, 100,  120, 0,   REROUTE",  // T⁻ < T_mig: no time to migrate anything
        "128, 100,  100, 0,   REROUTE",  // T⁻ = T_mig: still none (strict <)
        "128, 0,    0,   0,   REROUTE",  // zero grace
        "128, 7,    0,   6,   MIGRATE",  // l(S) < T⁻ − T_mig is strict: 7 steps do not fit in 7T
        "128, 300,  100, 128, FINISH",   // the whole batch fits: nothing to interrupt
        "128, 227.5, 100, 127, MIGRATE", // one token short of finishing
        "5,   300,  100, 5,   FINISH",   // S capped by the request's remaining tokens
        "0,   30,   1,   0,   FINISH",   // nothing left to generate
        "128, 150.5, 80,  0,   REROUTE",  // S = 70 but l(70) = 70T < T_mig = 80T: migration costs more than it saves
        "128, 150.5, 70,  80,  MIGRATE",  // l(80) = 80T > T_mig = 70T
    })
    void preemptionEdges(int remaining, double graceSteps, double migSteps, int steps, Action action) {
        Arrangement a = ARRANGER.onPreemption(C, 1, remaining, graceSteps * T, migSteps * T);
        assertEquals(action, a.action(), a.reason());
        assertEquals(steps, a.steps(), a.reason());
        if (action == Action.REROUTE) {
            assertEquals(0, a.decodeSeconds());
        } else {
            assertEquals(GPT.decodeSeconds(2, 8, 4, 1, steps), a.decodeSeconds(), 1e-12);
        }
    }

    /** Acquisition edges: columns R, T⁺ (steps), T_mig (steps), expected S, expected action. */
    @ParameterizedTest(name = "R={0} init={1}T mig={2}T -> {3} {4}")
    @CsvSource({
        "128, 7,    0,  7,   MIGRATE",  // l(S) >= T⁺ reached exactly at 7 steps
        "128, 6.5,  0,  7,   MIGRATE",
        "128, 0,    0,  0,   REROUTE",  // ready now: S = 0 and T_mig < l(0) = 0 fails
        "128, 200,  10, 128, FINISH",   // the batch finishes before the new instance is ready
        "5,   7,    0,  5,   FINISH",   // S capped by the remaining tokens
        "128, 40,   50, 0,   REROUTE",  // T_mig >= l(40)
        "128, 40,   39, 40,  MIGRATE",
    })
    void acquisitionEdges(int remaining, double initSteps, double migSteps, int steps, Action action) {
        Arrangement a = ARRANGER.onAcquisition(C, 1, remaining, initSteps * T, migSteps * T);
        assertEquals(action, a.action(), a.reason());
        assertEquals(steps, a.steps(), a.reason());
    }

    @Test
    void agreesWithALinearScanOnRandomInputs() {
        Random r = new Random(7);
        int[][] shapes = {{2, 8, 4, 1}, {3, 4, 4, 2}, {1, 8, 1, 1}, {6, 4, 2, 2}};
        for (int t = 0; t < 2000; t++) {
            int[] s = shapes[r.nextInt(shapes.length)];
            ParallelConfig c = ParallelConfig.of(1, s[0], s[1], s[2]);
            int remaining = r.nextInt(300);
            double grace = r.nextInt(4) == 0 ? 0 : 60 * r.nextDouble();
            double mig = r.nextInt(4) == 0 ? 0 : 20 * r.nextDouble();
            double step = GPT.decodeStepSeconds(s[0], s[1], s[2], s[3]);

            int pre = -1;
            for (int k = 0; k <= remaining; k++) {
                if (k * step < grace - mig) {
                    pre = k;
                }
            }
            Arrangement a = ARRANGER.onPreemption(c, s[3], remaining, grace, mig);
            check(a, pre, remaining, step, mig);

            int acq = remaining;
            for (int k = remaining; k >= 0; k--) {
                if (k * step >= grace) {
                    acq = k;
                }
            }
            check(ARRANGER.onAcquisition(c, s[3], remaining, grace, mig), acq, remaining, step, mig);
        }
    }

    private static void check(Arrangement a, int s, int remaining, double step, double mig) {
        if (s < 0) {
            assertEquals(Action.REROUTE, a.action(), a.reason());
            assertEquals(0, a.steps());
        } else if (s == remaining) {
            assertEquals(Action.FINISH, a.action(), a.reason());
            assertEquals(s, a.steps());
        } else if (mig < s * step) {
            assertEquals(Action.MIGRATE, a.action(), a.reason());
            assertEquals(s, a.steps());
        } else {
            assertEquals(Action.REROUTE, a.action(), a.reason());
            assertEquals(0, a.steps());
        }
    }

    @Test
    void badInputsAreRejected() {
        assertMessage(() -> ARRANGER.onPreemption(C, 1, -1, 30, 5), "remaining tokens");
        assertMessage(() -> ARRANGER.onPreemption(C, 1, 10, Double.NaN, 5), "T⁻");
        assertMessage(() -> ARRANGER.onPreemption(C, 1, 10, 30, -1), "T_mig");
        assertMessage(() -> ARRANGER.onAcquisition(C, 1, 10, -2, 1), "T⁺");
        assertMessage(() -> ARRANGER.onAcquisition(C, 8, 10, 2, 1), "micro-batches 8");
        assertMessage(() -> ARRANGER.onAcquisition(ParallelConfig.of(1, 2, 32, 1), 1, 10, 2, 1), "M (tensor shards) 32");
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(expected), "message '" + e.getMessage() + "' should contain " + expected);
    }
}
