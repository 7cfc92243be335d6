package io.spotserve.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The committed PTX: it targets compute_75, declares every kernel the Java side launches, agrees with the .cu
 * constants {@link Launch} mirrors, and (where nvcc is installed) is exactly what build-ptx.sh produces from the
 * current .cu sources.
 */
class PtxTest {
    private static final Path MODULE = Path.of(System.getProperty("user.dir"));

    private static String ptx() {
        byte[] z = CudaContext.ptx();
        assertEquals(0, z[z.length - 1], "PTX handed to cuModuleLoadData must be NUL-terminated");
        return new String(z, 0, z.length - 1, StandardCharsets.US_ASCII);
    }

    @Test
    void everyLaunchedKernelIsAnEntryOfThePtx() {
        String ptx = ptx();
        assertTrue(ptx.contains(".target sm_75"), "PTX target should be sm_75 (compute_75)");
        for (String k : CudaContext.KERNELS) {
            assertTrue(ptx.contains(".visible .entry " + k + "("), "kernel " + k + " missing from the PTX");
        }
        Matcher m = Pattern.compile("\\.visible \\.entry (\\w+)\\(").matcher(ptx);
        int entries = 0;
        while (m.find()) {
            entries++;
            assertTrue(CudaContext.KERNELS.contains(m.group(1)), "PTX entry " + m.group(1) + " unknown to CudaContext.KERNELS");
        }
        assertEquals(CudaContext.KERNELS.size(), entries);
    }

    @Test
    void launchConstantsMatchTheCudaSource() throws IOException {
        String cu = Files.readString(MODULE.resolve("src/main/cuda/spotserve_kernels.cu"));
        assertEquals(Launch.GEMV_ROWS_PER_BLOCK, define(cu, "GEMV_ROWS_PER_BLOCK"));
        assertEquals(Launch.GEMV_THREADS, Launch.GEMV_ROWS_PER_BLOCK * 32, "one warp per gemv row");
        assertTrue(Launch.ATTENTION_THREADS <= 32 * define(cu, "ATTENTION_MAX_WARPS"),
                "attention's per-warp shared partial sums must cover Launch.ATTENTION_THREADS");
        assertEquals(Launch.ATTENTION_STATIC_SHARED_BYTES, (32 + 32 * define(cu, "ATTENTION_MAX_WARPS")) * 4);
        assertTrue(cu.contains("__shared__ float bv[1024]"), "argmax_rows shared arrays sized for 1024 threads");
        assertTrue(Launch.THREADS <= 1024 && Integer.bitCount(Launch.THREADS) == 1, "argmax_rows needs a power of two");
    }

    /**
     * The driver JIT-compiles the committed PTX with its own ptxas; running the toolkit's ptxas on it for the two
     * ends of the supported range (Turing sm_75, Hopper sm_90) catches PTX the JIT would reject, without a GPU,
     * and confirms the static shared memory {@link Launch#attention} budgets for.
     */
    @Test
    void committedPtxAssemblesForSm75AndSm90() throws Exception {
        Path ptxas = findTool("ptxas");
        Assumptions.assumeTrue(ptxas != null, "ptxas not installed: cannot assemble the PTX here");
        Path dir = Files.createDirectories(MODULE.resolve("target/ptxas-check"));
        Path ptx = dir.resolve("spotserve_kernels.ptx");
        Files.writeString(ptx, ptx(), StandardCharsets.US_ASCII);
        for (String arch : new String[] {"sm_75", "sm_90"}) {
            Process p = new ProcessBuilder(ptxas.toString(), "-arch=" + arch, "-v", ptx.toString(), "-o",
                    dir.resolve(arch + ".cubin").toString()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "ptxas " + arch + " timed out");
            assertEquals(0, p.exitValue(), "ptxas -arch=" + arch + " rejected the committed PTX: " + out);
            Matcher smem = Pattern.compile("entry function 'attention'[^\\n]*\\n(?:[^\\n]*\\n)*?[^\\n]*Used \\d+ registers"
                    + "[^\\n]*?(\\d+) bytes smem").matcher(out);
            assertTrue(smem.find(), "ptxas -v reported no shared memory for attention: " + out);
            assertEquals(Launch.ATTENTION_STATIC_SHARED_BYTES, Integer.parseInt(smem.group(1)),
                    "attention's static shared memory (Launch.attention leaves the rest of 48 KiB to the scores)");
            assertTrue(Files.size(dir.resolve(arch + ".cubin")) > 0, "ptxas wrote no cubin for " + arch);
        }
    }

    /** A CUDA tool on the PATH or in a toolkit's bin directory under /usr/local (cuda, cuda-13.0, ...), or null. */
    static Path findTool(String name) throws IOException {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, name))) {
                return Path.of(dir, name);
            }
        }
        Path local = Path.of("/usr/local");
        if (!Files.isDirectory(local)) {
            return null;
        }
        try (var dirs = Files.list(local)) {
            return dirs.filter(d -> d.getFileName().toString().startsWith("cuda")).sorted()
                    .map(d -> d.resolve("bin").resolve(name)).filter(Files::isExecutable).findFirst().orElse(null);
        }
    }

    private static int define(String cu, String name) {
        Matcher m = Pattern.compile("#define " + name + " (\\d+)").matcher(cu);
        assertTrue(m.find(), "#define " + name + " missing");
        return Integer.parseInt(m.group(1));
    }

    @Test
    void committedPtxIsUpToDateWithTheSources() throws Exception {
        boolean nvcc = new ProcessBuilder("sh", "-c", "command -v nvcc || ls /usr/local/cuda*/bin/nvcc")
                .redirectErrorStream(true).start().waitFor() == 0;
        Assumptions.assumeTrue(nvcc, "nvcc not installed: cannot rebuild the PTX here");
        Process p = new ProcessBuilder("bash", MODULE.resolve("build-ptx.sh").toString(), "--check")
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "build-ptx.sh --check timed out");
        assertEquals(0, p.exitValue(), "PTX is stale; run spotserve-cuda/build-ptx.sh and commit: " + out);
    }
}
