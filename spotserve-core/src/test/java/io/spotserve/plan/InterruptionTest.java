package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.plan.Arrangement.Action;
import java.util.Random;
import org.junit.jupiter.api.Test;

class InterruptionTest {
    private static final CostModel GPT = Profiles.model(PaperModel.GPT_20B);
    private static final ParallelConfig C = ParallelConfig.of(2, 2, 8, 4);
    private static final InterruptionArranger ARRANGER = new InterruptionArranger(GPT);
    /** One decode step of C with M2 = 1 (about 94 ms). */
    private static final double T = GPT.decodeStepSeconds(2, 8, 4, 1);

    @Test
    void eachOfTheArrangersBranchesBecomesAStopTimeAndAStepCount() {
        // MIGRATE: 80 steps at the arranger's price, never past grace − T_mig
        Interruption m = Interruption.atPreemption(ARRANGER, C, 1, 128, 150.5 * T, 70 * T, 0);
        assertEquals(Action.MIGRATE, m.action(), m.reason());
        assertEquals(80, m.steps());
        assertEquals(GPT.decodeSeconds(2, 8, 4, 1, 80), m.leaveAfterSeconds(), 1e-12);
        assertEquals(80.5 * T, m.latestSeconds(), 1e-12);
        assertEquals(80, m.stepsBeforeStop(1));
        assertTrue(m.carriesCaches());
        // at a slower measured pace the same 80 steps no longer fit: stop at the latest safe time
        Interruption slow = Interruption.atPreemption(ARRANGER, C, 1, 128, 150.5 * T, 70 * T, 2 * T);
        assertEquals(80.5 * T, slow.leaveAfterSeconds(), 1e-12);
        // FINISH: the batch's 5 tokens, then leave (latest still grace − T_mig)
        Interruption f = Interruption.atPreemption(ARRANGER, C, 1, 5, 300 * T, 100 * T, T);
        assertEquals(Action.FINISH, f.action());
        assertEquals(5 * T, f.leaveAfterSeconds(), 1e-12);
        assertEquals(200 * T, f.latestSeconds(), 1e-12);
        assertEquals(5, f.stepsBeforeStop(0));
        // REROUTE: stop after the step in flight, no cache
        Interruption r = Interruption.atPreemption(ARRANGER, C, 1, 128, 100 * T, 120 * T, T);
        assertEquals(Action.REROUTE, r.action());
        assertEquals(0, r.leaveAfterSeconds());
        assertEquals(1, r.stepsBeforeStop(1));
        assertEquals(0, r.stepsBeforeStop(0));
        assertTrue(!r.carriesCaches());
    }

    @Test
    void anAcquisitionJoinsAfterTheStepsThatCoverTheNewcomersStartup() {
        Interruption a = Interruption.atAcquisition(ARRANGER, C, 1, 128, 40 * T, 39 * T, 0);
        assertEquals(Action.MIGRATE, a.action());
        assertEquals(40, a.steps());
        assertEquals(a.leaveAfterSeconds(), a.latestSeconds());
        assertEquals(GPT.decodeSeconds(2, 8, 4, 1, 40), a.leaveAfterSeconds(), 1e-12);
        assertEquals(Action.REROUTE, Interruption.atAcquisition(ARRANGER, C, 1, 128, 40 * T, 50 * T, T).action());
    }

    /** Property: the stop is never after the latest safe time, and MIGRATE/FINISH run exactly S_t steps. */
    @Test
    void theStopNeverPassesTheLatestSafeTime() {
        Random rnd = new Random(3);
        for (int i = 0; i < 2000; i++) {
            int remaining = rnd.nextInt(200);
            double grace = rnd.nextDouble() * 300 * T;
            double mig = rnd.nextDouble() * 200 * T;
            double pace = rnd.nextBoolean() ? 0 : rnd.nextDouble() * 3 * T;
            Interruption x = Interruption.atPreemption(ARRANGER, C, 1, remaining, grace, mig, pace);
            Arrangement a = ARRANGER.onPreemption(C, 1, remaining, grace, mig);
            assertEquals(a.action(), x.action());
            assertTrue(x.leaveAfterSeconds() <= x.latestSeconds() + 1e-12, x.toString());
            assertEquals(Math.max(0, grace - mig), x.latestSeconds(), 1e-12);
            assertEquals(a.action() == Action.REROUTE ? 0 : a.steps(), x.steps());
        }
    }

    @Test
    void negativeTimesAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Interruption(Action.MIGRATE, 0, -1, 0, "x"));
        assertThrows(IllegalArgumentException.class,
                () -> Interruption.atPreemption(ARRANGER, C, 1, 10, -1, 0, 0));
    }
}
