/** Micrometer meters for a {@link io.spotserve.engine.ServingEngine}: {@link io.spotserve.metrics.SpotServeMetrics}. */
package io.spotserve.metrics;
