package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.plan.LatencyProfile;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code profile} then {@code plan --model-file}: our executor's numbers drive the optimizer end to end. */
class ProfileCommandTest {

    private record Result(int code, String out, String err) {
    }

    private static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(code, out.toString(StandardCharsets.UTF_8).strip(), err.toString(StandardCharsets.UTF_8).strip());
    }

    private static final String[] QUICK = {"--prompt-tokens", "8", "--repeats", "1", "--warmup", "0",
        "--decode-steps", "1", "--max-batch", "4", "--threads", "2"};

    private static String[] args(String... first) {
        String[] a = new String[first.length + QUICK.length];
        System.arraycopy(first, 0, a, 0, first.length);
        System.arraycopy(QUICK, 0, a, first.length, QUICK.length);
        return a;
    }

    @Test
    void bundledStoriesProfileToStdoutThenPlan(@TempDir Path dir) throws Exception {
        Result r = run(args("profile"));
        assertEquals(0, r.code(), r.err());
        LatencyProfile p = LatencyProfile.parse(r.out());
        assertEquals("stories260K_cpu_profile", p.name());
        assertEquals(5, p.layerNum());
        assertEquals(64, p.hiddenSize());
        assertEquals(8, p.promptTokens());
        assertEquals(List.of(1, 2, 4), List.copyOf(p.layerTimes().keySet()));
        assertEquals(3, p.embedMs().size(), "B = 1, 2, 4");

        Path file = dir.resolve("stories.json");
        p.write(file);
        Path model = BundledModel.extractTo(dir.resolve("model")).checkpoint();
        Result plan = run("plan", "--profile", file.toString(), "--model-file", model.toString(), "--instances", "2",
                "--in", "64", "--out", "64", "--device-memory-mib", "16");
        assertEquals(0, plan.code(), plan.err());
        assertTrue(plan.out().matches("D=\\d+ P=\\d+ M=[124] B=[124] latency_s=[0-9.]+ throughput_rps=[0-9.]+ .*"),
                plan.out());
    }

    @Test
    void randomModelProfileToFile(@TempDir Path dir) {
        Path out = dir.resolve("r.json");
        Result r = run(args("profile", "--random", "32,64,2,4,2,64,32", "--out", out.toString(), "--max-tp", "4"));
        assertEquals(0, r.code(), r.err());
        assertEquals("", r.out(), "JSON went to the file");
        LatencyProfile p = LatencyProfile.read(out);
        assertEquals("random_d32_l2_cpu_profile", p.name());
        assertEquals(List.of(1, 2), List.copyOf(p.layerTimes().keySet()), "2 KV heads cap M at 2");
        assertEquals(2, p.paddedLayerNum());
    }

    @Test
    void badArgumentsAreUsageErrors(@TempDir Path dir) throws Exception {
        assertUsage(run("profile", "--random", "1,2,3"), "--random needs 7 comma-separated integers");
        assertUsage(run("profile", "--random", "30,64,2,4,2,64,32"), "dim 30 is not divisible by n_heads 4");
        assertUsage(run("profile", "--model", "x.bin", "--random", "32,64,2,4,2,64,32"), "not both");
        assertUsage(run("profile", "--max-batch", "3"), "maxBatch must be a power of two >= 1, was 3");
        assertUsage(run("profile", "--prompt-tokens", "600"), "prompt tokens 600 + decode steps 16 exceed the model's seq_len 512");
        assertUsage(run("profile", "--model", dir.resolve("missing.bin").toString()), "is not a file");
        assertUsage(run("profile", "--repeats", "0"), "--repeats must be >= 1, was 0");
        assertUsage(run("profile", "--colour", "red"), "unknown option --colour");
        assertUsage(run("profile", "--timer", "cycles"), "--timer must be wall or cpu, was 'cycles'");
        assertUsage(run("profile", "--timer", "cpu", "--threads", "2"), "it needs an executor with 1 thread, this one has 2");

        Path model = BundledModel.extractTo(dir.resolve("m")).checkpoint();
        Path t4 = io.spotserve.testing.SharedData.file("profiles/T4-4x/megatron_345M_profile.json");
        assertUsage(run("plan", "--profile", t4.toString(), "--model-file", model.toString(), "--instances", "1",
                "--in", "64", "--out", "8"), "is for 24 layers of width 1024 but model 'stories260K.bin' has 5 layers of width 64");
        assertUsage(run("plan", "--profile", t4.toString(), "--model-file", model.toString(), "--instances", "1"),
                "--in 512 + --out 128 tokens exceed the seq_len 512");
    }

    private static void assertUsage(Result r, String fragment) {
        assertEquals(2, r.code(), "exit code; stderr: " + r.err());
        assertTrue(r.err().contains(fragment), "stderr '" + r.err() + "' lacks '" + fragment + "'");
    }
}
