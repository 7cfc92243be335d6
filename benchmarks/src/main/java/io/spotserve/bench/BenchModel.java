package io.spotserve.bench;

import java.io.IOException;

/**
 * Writes the random 25M-parameter benchmark checkpoint of {@link CpuDecodeBenchmark} (once per machine, in
 * {@code java.io.tmpdir}) and prints its path, so that scripts can hand the same file to run.c and llama.cpp:
 * {@code java -cp benchmarks/target/benchmarks.jar io.spotserve.bench.BenchModel}.
 */
public final class BenchModel {
    private BenchModel() {
    }

    public static void main(String[] args) throws IOException {
        System.out.println(DecodeWorkload.checkpoint25M().file().toAbsolutePath());
    }
}
