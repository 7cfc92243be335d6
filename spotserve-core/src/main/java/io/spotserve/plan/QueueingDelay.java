package io.spotserve.plan;

/*
 * Implementation notes. SpotServe §2.2 splits l_req = l_sch + l_exe but gives no formula for l_sch; the
 * artifact drops it. We model the serving system as D·B parallel request slots, each busy for l_exe per
 * request (deterministic service), fed by arrivals of rate α with coefficient of variation c_a:
 * a G/D/c queue, approximated (Allen–Cunneen) as (c_a² + 0)/2 times the M/M/c waiting time, which is the
 * Erlang-C probability of waiting times l_exe / (c − a), a = α·l_exe. For c = 1 and c_a = 1 this is the exact
 * M/D/1 wait ρ·s / (2(1 − ρ)). Slots that free independently model iteration-level batching; with the
 * paper's request-level batching it is a lower bound.
 *
 * Erlang B by its stable recursion B_k = a·B_{k-1} / (k + a·B_{k-1}), stopped early once the wait it implies
 * is below a nanosecond (so c = 30,000 slots at low load costs only about a + a few hundred steps).
 *
 * [1] Kleinrock, Queueing Systems Vol. 1 (Erlang C). [2] Allen, Probability, Statistics and Queueing Theory
 *     (Allen–Cunneen G/G/c approximation).
 */
final class QueueingDelay {
    private QueueingDelay() {
    }

    /**
     * Mean waiting time before service, in seconds.
     *
     * @return 0 when the rate is 0, +∞ when a = α·s &gt;= c (the queue grows without bound)
     */
    static double waitSeconds(double arrivalRate, double serviceSeconds, long servers, double arrivalCv) {
        if (arrivalRate == 0) {
            return 0;
        }
        double a = arrivalRate * serviceSeconds;
        double c = servers;
        if (a >= c) {
            return Double.POSITIVE_INFINITY;
        }
        double scale = arrivalCv * arrivalCv / 2 * c * serviceSeconds / ((c - a) * (c - a));
        double b = 1;
        for (long k = 1; k <= servers; k++) {
            b = a * b / (k + a * b);
            if (k > a && b * scale < 1e-9) {
                return 0;
            }
        }
        double erlangC = c * b / (c - a * (1 - b));
        return arrivalCv * arrivalCv / 2 * erlangC * serviceSeconds / (c - a);
    }
}
