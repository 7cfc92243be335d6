/** The OpenAI-compatible HTTP server on the JDK's {@code com.sun.net.httpserver}. */
module io.spotserve.server {
    requires transitive io.spotserve.core;
    requires io.spotserve.metrics;
    requires jdk.httpserver;
    requires com.google.gson;
    requires org.slf4j;
    requires micrometer.registry.prometheus; // Micrometer's Automatic-Module-Name (a stable name, set by Micrometer)

    exports io.spotserve.server;
}
