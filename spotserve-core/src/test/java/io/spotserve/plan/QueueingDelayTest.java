package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class QueueingDelayTest {

    @Test
    void singleServerPoissonIsTheExactMdOneWait() {
        // M/D/1: Wq = ρ·s / (2(1 − ρ))
        for (double rho : new double[] {0.1, 0.5, 0.9, 0.99}) {
            double s = 2.5;
            double expected = rho * s / (2 * (1 - rho));
            assertEquals(expected, QueueingDelay.waitSeconds(rho / s, s, 1, 1.0), 1e-12 * expected, "rho " + rho);
        }
    }

    @Test
    void matchesErlangCByDirectSummation() {
        Random r = new Random(42);
        for (int t = 0; t < 200; t++) {
            int c = 1 + r.nextInt(40);
            double a = c * (0.05 + 0.9 * r.nextDouble());
            double s = 0.5 + 20 * r.nextDouble();
            double cv = 3 * r.nextDouble();
            // Erlang C = (a^c/c! · c/(c−a)) / (Σ_{k<c} a^k/k! + a^c/c! · c/(c−a))
            double term = 1;
            double sum = 0;
            for (int k = 0; k < c; k++) {
                sum += term;
                term = term * a / (k + 1);
            }
            double top = term * c / (c - a);
            double erlangC = top / (sum + top);
            double expected = cv * cv / 2 * erlangC * s / (c - a);
            double got = QueueingDelay.waitSeconds(a / s, s, c, cv);
            assertEquals(expected, got, 1e-9 + 1e-9 * expected, "c=" + c + " a=" + a);
        }
        // known value: c = 3, a = 2 gives a waiting probability of 4/9
        assertEquals(4.0 / 9 * 1.0 / (3 - 2) * 0.5, QueueingDelay.waitSeconds(2, 1, 3, 1), 1e-12);
    }

    @Test
    void waitFallsWithMoreServersAndIsUnboundedAtSaturation() {
        double s = 12.9;
        double alpha = 0.6;
        double previous = Double.POSITIVE_INFINITY;
        for (int c = 1; c <= 4000; c++) {
            double w = QueueingDelay.waitSeconds(alpha, s, c, 1.0);
            if (c <= alpha * s) {
                assertEquals(Double.POSITIVE_INFINITY, w, "c=" + c);
            } else {
                assertTrue(w <= previous && w >= 0, "c=" + c + " w=" + w + " previous=" + previous);
            }
            previous = w;
        }
        assertEquals(0, QueueingDelay.waitSeconds(0, s, 1, 1.0));
        assertEquals(0, QueueingDelay.waitSeconds(alpha, s, 4000, 1.0));
    }
}
