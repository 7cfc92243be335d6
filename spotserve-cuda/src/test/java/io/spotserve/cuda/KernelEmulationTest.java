package io.spotserve.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Runs every CUDA kernel without a GPU: compiles the real {@code spotserve_kernels.cu} with g++ through the CPU
 * emulation shim ({@code src/test/native/cuda_cpu_shim.h}: blocks of std::threads, barriers for
 * {@code __syncthreads}, exchange slots for warp shuffles, IEEE fp16 conversions) together with the harness
 * {@code src/test/native/kernels_test.cpp}, which checks each kernel against a brute-force reference on seeded
 * random inputs and edge cases. This is how the kernels are verified on machines without a GPU (CI, and every
 * session so far); the gpu-tagged {@code CudaKernelsTest} checks the same kernels on a device.
 * {@code -Dspotserve.emulation.sanitize=true} builds the emulation with AddressSanitizer and UBSan.
 */
class KernelEmulationTest {
    private static final Path MODULE = Path.of(System.getProperty("user.dir"));

    @Test
    void everyKernelMatchesItsReferenceOnTheCpu() throws Exception {
        Assumptions.assumeTrue(gppAvailable(), "g++ not installed: cannot build the CPU emulation of the kernels");
        Path dir = Files.createDirectories(MODULE.resolve("target/kernel-emulation"));
        Path exe = dir.resolve("kernels_test");
        Files.deleteIfExists(exe);
        List<String> compile = new ArrayList<>(List.of("g++", "-std=c++20", "-O1", "-pthread", "-fno-strict-aliasing",
                "-Wno-unknown-pragmas", "-I" + MODULE.resolve("src/test/native"),
                "-I" + MODULE.resolve("src/main/cuda"),
                "-DLAUNCH_THREADS=" + Launch.THREADS, "-DLAUNCH_ATTENTION_THREADS=" + Launch.ATTENTION_THREADS,
                MODULE.resolve("src/test/native/kernels_test.cpp").toString(), "-o", exe.toString()));
        if (Boolean.getBoolean("spotserve.emulation.sanitize")) {
            // AddressSanitizer + UBSan: also catches scalar out-of-bounds accesses (about 3x slower; off in CI)
            compile.addAll(1, List.of("-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                    "-fno-omit-frame-pointer"));
        }
        Result built = run(compile, 120);
        assertEquals(0, built.exit, "the kernels or the emulation harness do not compile with g++:\n" + built.output);

        Result r = run(List.of(exe.toString()), 120);
        assertEquals(0, r.exit, "kernel emulation failed (exit " + r.exit + "):\n" + failures(r.output));
        for (String k : CudaContext.KERNELS) {
            assertTrue(r.output.contains("\nPASS " + k + " ") || r.output.startsWith("PASS " + k + " "),
                    "kernel " + k + " was not checked by the emulation harness");
        }
        assertFalse(r.output.contains("FAIL"), failures(r.output));
        assertTrue(r.output.contains("OK: 0 failure(s)"), r.output);
    }

    private record Result(int exit, String output) {
    }

    private static Result run(List<String> command, int timeoutSeconds) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).directory(MODULE.toFile()).redirectErrorStream(true).start();
        byte[] out;
        try (var in = p.getInputStream()) {
            // the harness prints ~100 short lines; reading to EOF before waitFor keeps the pipe from filling
            out = in.readAllBytes();
        }
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(command.get(0) + " did not finish in " + timeoutSeconds + " s");
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    private static String failures(String output) {
        StringBuilder b = new StringBuilder();
        for (String line : output.split("\n")) {
            if (!line.startsWith("PASS ")) {
                b.append(line).append('\n');
            }
        }
        return b.toString();
    }

    private static boolean gppAvailable() {
        try {
            Process p = new ProcessBuilder("g++", "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
