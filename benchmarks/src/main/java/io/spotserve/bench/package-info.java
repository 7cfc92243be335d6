/** JMH benchmarks; see benchmarks/README.md for the commands and recorded numbers. */
package io.spotserve.bench;
