package io.spotserve.bench.eval;

import java.util.Arrays;
import java.util.List;

/**
 * Everything one simulated run produced: one row per request, the fleet / configuration timeline, every
 * reconfiguration, and the cost. Rows are written to the CSV files by {@link Evaluation}.
 *
 * @param system          system name
 * @param requests        every request that arrived within the trace
 * @param timeline        state after every change (fleet, configuration; queue changes at most once a second)
 * @param reconfigurations every change of the deployment
 * @param endSeconds      when the run stopped (all done, or trace end + drain)
 * @param spotInstanceSeconds     billed spot instance-seconds
 * @param onDemandInstanceSeconds billed on-demand instance-seconds
 * @param usd             total cost
 */
public record RunResult(String system, List<Request> requests, List<TimelineRow> timeline,
                        List<Reconfiguration> reconfigurations, double endSeconds, double spotInstanceSeconds,
                        double onDemandInstanceSeconds, double usd) {

    /**
     * One request.
     *
     * @param id           index in the arrival sequence
     * @param arrival      arrival time, s
     * @param firstToken   end of its (last) prefill, s; NaN if never prefilled
     * @param finish       completion time, s; NaN if unfinished
     * @param outputTokens tokens delivered
     * @param restarts     times it lost its KV cache and had to be prefilled again
     */
    public record Request(int id, double arrival, double firstToken, double finish, int outputTokens, int restarts) {
        /** Whether it completed. */
        public boolean completed() {
            return !Double.isNaN(finish);
        }
    }

    /** One timeline row (see {@code timeline.csv}). */
    public record TimelineRow(double t, int spot, int onDemand, String config, int queue, int running) {
    }

    /** One reconfiguration (see {@code reconfigurations.csv}). */
    public record Reconfiguration(double t, String from, String to, String reason, long bytesMoved, long bytesReloaded,
                                  double pauseSeconds) {
    }

    /**
     * Latencies for percentiles: completed requests' latency, unfinished ones censored at {@code endSeconds}
     * (the same rule for every system).
     */
    public double[] latencies() {
        return requests.stream().mapToDouble(r -> (r.completed() ? r.finish() : endSeconds) - r.arrival()).toArray();
    }

    /** Nearest-rank percentile q in (0, 100] of {@link #latencies()}; NaN without requests. */
    public double percentile(double q) {
        double[] l = latencies();
        if (l.length == 0) {
            return Double.NaN;
        }
        Arrays.sort(l);
        int rank = (int) Math.ceil(q / 100.0 * l.length);
        return l[Math.max(0, Math.min(l.length - 1, rank - 1))];
    }

    /** Mean of {@link #latencies()}. */
    public double average() {
        return Arrays.stream(latencies()).average().orElse(Double.NaN);
    }

    /** Completed requests. */
    public long completed() {
        return requests.stream().filter(Request::completed).count();
    }

    /** Output tokens delivered by completed requests. */
    public long generatedTokens() {
        return requests.stream().filter(Request::completed).mapToLong(Request::outputTokens).sum();
    }

    /** USD per generated token (NaN when nothing was generated). */
    public double usdPerToken() {
        long t = generatedTokens();
        return t == 0 ? Double.NaN : usd / t;
    }
}
