/**
 * The serving engine run for simulation: a timing-only executor ({@link io.spotserve.bench.engine.TimingExecutor})
 * that keeps the real engine's control plane (capacity checks, device mapping, weight and KV migration, reloads)
 * while holding no floats, so the paper's evaluation grid (SpotServe §6, OPT-6.7B to LLaMA-30B sized models) runs
 * through the real {@code ServingEngine} on a simulated clock.
 */
package io.spotserve.bench.engine;
