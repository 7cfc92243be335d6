/** Micrometer meters bound to a SpotServe-J engine (vLLM's names where the meaning is the same). */
module io.spotserve.metrics {
    requires transitive io.spotserve.core;
    requires transitive micrometer.core; // Micrometer's Automatic-Module-Name (a stable name, set by Micrometer)

    exports io.spotserve.metrics;
}
