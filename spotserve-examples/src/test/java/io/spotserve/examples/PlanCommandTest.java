package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class PlanCommandTest {

    private record Result(int code, String out, String err) {
    }

    private static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(code, out.toString(StandardCharsets.UTF_8).strip(), err.toString(StandardCharsets.UTF_8).strip());
    }

    private static String profile(String name) {
        return SharedData.file("profiles/T4-4x/" + name + "_profile.json").toString();
    }

    /**
     * Cells of the artifact's configuration table (spotserve-paper.md §2.3, (D, P, M)); B, latency and
     * throughput recomputed with the artifact's formula, and Table 1 (B = 1, minimum GPUs).
     */
    @ParameterizedTest
    @CsvSource({
        "megatron_h6144, 12, 0.4, 4, D=3 P=2 M=8 B=2 latency_s=12.116 throughput_rps=0.4952",
        "megatron_h6144, 7,  0.4, 4, D=2 P=3 M=4 B=4 latency_s=14.459 throughput_rps=0.5533",
        "megatron_6.7B,  9,  2.0, 4, D=9 P=1 M=4 B=2 latency_s=4.889 throughput_rps=3.6819",
        "megatron_h7168, 12, 0.2, 4, D=1 P=6 M=8 B=4 latency_s=17.291 throughput_rps=0.2313",
        "megatron_h6144, 3,  0,   1, D=1 P=3 M=4 B=1 latency_s=14.373",
        "megatron_6.7B,  1,  0,   1, D=1 P=1 M=4 B=1 latency_s=5.447",
        "megatron_h7168, 4,  0,   1, D=1 P=2 M=8 B=1 latency_s=17.540",
    })
    void artifactPolicyPrintsTheOracleLine(String name, int instances, String rate, int maxBatch, String expected) {
        Result r = run("plan", "--profile", profile(name), "--instances", "" + instances, "--rate", rate,
                "--max-batch", "" + maxBatch, "--policy", "artifact");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith(expected + " ") || r.out().startsWith(expected + "."), r.out());
        assertEquals(1, r.out().lines().count());
        assertTrue(r.out().matches("D=\\d+ P=\\d+ M=\\d+ B=\\d+ latency_s=[0-9.]+ throughput_rps=[0-9.]+ .*"), r.out());
    }

    @Test
    void paperPolicyUsesFewerInstancesAndReportsTheDelta() {
        Result r = run("plan", "--profile", profile("megatron_h6144"), "--instances", "12", "--rate", "0.35");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("D=2 P=2 M=8 B=4 latency_s=12.961 "), r.out());
        assertTrue(r.out().endsWith("instances=8 delta=-4 meets_rate=true"), r.out());
    }

    @Test
    void infeasibleIsOneLineAndExitOne() {
        Result r = run("plan", "--profile", profile("megatron_h7168"), "--instances", "3", "--rate", "0.2",
                "--policy", "artifact");
        assertEquals(1, r.code());
        assertTrue(r.out().startsWith("none reason="), r.out());
    }

    @Test
    void modelIsInferredOrGivenOrGeneric(@TempDir Path dir) throws Exception {
        // a profile outside the paper's three: GPT-style shape, min 1 GPU unless --min-gpus
        Result generic = run("plan", "--profile", profile("megatron_h2048"), "--instances", "1", "--policy", "artifact",
                "--max-batch", "1");
        assertEquals(0, generic.code(), generic.err());
        Result withMin = run("plan", "--profile", profile("megatron_h2048"), "--instances", "1", "--policy",
                "artifact", "--max-batch", "1", "--min-gpus", "4", "--gpus-per-instance", "8");
        assertEquals(0, withMin.code(), withMin.err());
        assertTrue(pipelineGpus(withMin.out()) >= 4, withMin.out());
        // --model overrides the file name: GPT-20B's minimum of 12 GPUs applies to a renamed copy of its profile
        Path copy = dir.resolve("renamed.json");
        Files.copy(Path.of(profile("megatron_h6144")), copy);
        Result generic20b = run("plan", "--profile", copy.toString(), "--instances", "2", "--policy", "artifact");
        assertEquals(0, generic20b.code(), generic20b.err());
        Result named = run("plan", "--profile", copy.toString(), "--model", "gpt-20b", "--instances", "3",
                "--policy", "artifact");
        assertEquals(0, named.code(), named.err());
        assertTrue(pipelineGpus(named.out()) >= 12, named.out());
        Result tooFew = run("plan", "--profile", copy.toString(), "--model", "gpt-20b", "--instances", "2",
                "--policy", "artifact");
        assertEquals(1, tooFew.code(), tooFew.out());
        // a model that does not match the profile is a usage error
        Result mismatch = run("plan", "--profile", profile("megatron_h2048"), "--model", "gpt-20b", "--instances", "3");
        assertEquals(2, mismatch.code());
        assertTrue(mismatch.err().contains("mismatch"), mismatch.err());
    }

    /** P·M of a printed line. */
    private static int pipelineGpus(String line) {
        String[] f = line.split(" ");
        return Integer.parseInt(f[1].substring(2)) * Integer.parseInt(f[2].substring(2));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "plan --instances 4|--profile PATH is required",
        "plan --profile PROFILE|--instances N is required",
        "plan --profile PROFILE --instances four|Invalid value for option '--instances': 'four' is not an int",
        "plan --profile PROFILE --instances 4 --policy fastest|--policy must be paper or artifact, was 'fastest'",
        "plan --profile PROFILE --instances 4 --rate -1|--rate must be a finite number >= 0, was -1.0",
        "plan --profile PROFILE --instances 4 --gpus 4|unknown option --gpus",
        "plan --profile PROFILE --instances 4 --memory lots|--memory must be artifact or device",
        "plan --profile PROFILE --instances 4 --model gpt-5|--model 'gpt-5' names none",
        "plan --profile /no/such/file.json --instances 4|is not a file",
        "plan --profile PROFILE --instances 4 --on-demand 5|--on-demand 5 exceeds --instances 4",
        "plan --profile PROFILE --instances 4 --policy artifact --acquirable 2|ARTIFACT policy searches only N_t",
        "plan --profile PROFILE --instances|Missing required parameter for option '--instances'",
        "plan --profile=PROFILE --instances=4 --max-batch=0|--max-batch must be >= 1, was 0",
    })
    void badArgumentsExitTwoWithOneLine(String line, String message) {
        String[] args = line.replace("PROFILE", profile("megatron_6.7B")).split(" ");
        Result r = run(args);
        assertEquals(2, r.code(), r.out() + r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains(message), r.err());
    }
}
