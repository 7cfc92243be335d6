/**
 * Spot-instance availability traces: parsing the real preemption traces SpotServe is evaluated on (the
 * {@code time_ms,op,node} event logs and the JSON-lines replay segments, see {@code shared/traces/README.md})
 * into an immutable {@link io.spotserve.trace.AvailabilityTrace}. Pure parsing and queries: no clock, no
 * threads. A trace-driven instance provider and the paper-scale evaluation replay these traces.
 */
package io.spotserve.trace;
