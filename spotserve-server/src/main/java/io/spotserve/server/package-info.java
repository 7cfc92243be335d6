/**
 * An embeddable OpenAI-compatible HTTP server on a {@link io.spotserve.engine.ServingEngine}:
 * {@link io.spotserve.server.SpotServeServer}. Endpoints: {@code POST /v1/completions}, {@code POST
 * /v1/chat/completions} (plain JSON or server-sent events), {@code GET /v1/models}, {@code GET /health},
 * {@code GET /metrics} (Prometheus text).
 */
package io.spotserve.server;
