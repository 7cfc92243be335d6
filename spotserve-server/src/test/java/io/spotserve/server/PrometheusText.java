package io.spotserve.server;

/** Reads one sample from Prometheus text exposition format. */
final class PrometheusText {
    private PrometheusText() {
    }

    /**
     * The value of {@code name} with exactly the labels {@code labels} (e.g. {@code market="spot",state="running"},
     * or "" for none); 0 when absent.
     */
    static double value(String text, String name, String labels) {
        String prefix = labels.isEmpty() ? name + " " : name + "{" + labels + "} ";
        for (String line : text.split("\n")) {
            if (line.startsWith(prefix)) {
                return Double.parseDouble(line.substring(prefix.length()).trim().split(" ")[0]);
            }
        }
        return 0;
    }
}
