/**
 * The evaluation report: reads the CSV output of the paper-scale simulator (io.spotserve.bench.eval) and
 * writes report.md and PNG plots that put our numbers beside the SpotServe paper's §7.6 figures. Entry point:
 * {@link io.spotserve.bench.report.EvaluationReport}.
 */
package io.spotserve.bench.report;
