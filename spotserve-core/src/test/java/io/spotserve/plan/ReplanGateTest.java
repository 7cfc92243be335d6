package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class ReplanGateTest {
    /** Brute force: the requests served over the horizon with and without the change, counted in small time steps. */
    private static boolean servesMore(double phiNow, double phiNext, int work, double window, double pause) {
        double horizon = Math.max(window, work / phiNow);
        double dt = horizon / 200_000;
        double now = 0;
        double next = 0;
        for (double t = 0; t < horizon; t += dt) {
            now += phiNow * dt;
            if (t >= pause) {
                next += phiNext * dt;
            }
        }
        return next > now;
    }

    @Test
    void aChangeIsMadeOnlyWhenItServesMoreOverTheHorizon() {
        Random rnd = new Random(5);
        int checked = 0;
        for (int i = 0; i < 300; i++) {
            double phiNow = 0.1 + rnd.nextDouble() * 10;
            double phiNext = phiNow * (0.5 + rnd.nextDouble() * 2);
            int work = rnd.nextInt(400);
            double window = 1 + rnd.nextDouble() * 60;
            double pause = rnd.nextDouble() * 30;
            double horizon = Math.max(window, work / phiNow);
            double margin = Math.abs(phiNext * (horizon - pause) - phiNow * horizon);
            if (margin < 0.01 * phiNow * horizon) {
                continue; // too close to call by counting
            }
            checked++;
            boolean expected = servesMore(phiNow, phiNext, work, window, pause);
            boolean got = ReplanGate.repaysPause(phiNow, phiNext, work, window, pause);
            if (expected != got) {
                throw new AssertionError("φ " + phiNow + " -> " + phiNext + ", work " + work + ", window " + window
                        + ", pause " + pause + ": expected " + expected);
            }
        }
        assertTrue(checked > 200, "checked " + checked);
    }

    @Test
    void nothingServedNowMeansAnyServingConfigurationIsWorthIt() {
        assertTrue(ReplanGate.repaysPause(0, 1, 10, 30, 100));
        assertFalse(ReplanGate.repaysPause(0, 0, 10, 30, 1));
        assertFalse(ReplanGate.repaysPause(2, 2.1, 0, 30, 10), "a longer pause than the gain over one window");
    }
}
