package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The command line as a whole: help and version on every command, both option spellings, and one exit code (2)
 * and one stderr line for every bad argument or bad input file, checked before anything big is allocated or
 * anything long starts (issue 12, defect 8).
 */
class MainTest {
    @TempDir
    Path dir;

    /** Runs {@code args}, which must fail fast with exit code 2 and exactly one stderr line containing {@code fragment}. */
    private static String usageError(String fragment, String... args) {
        CliRun r = assertTimeoutPreemptively(Duration.ofSeconds(60), () -> CliRun.of(args), String.join(" ", args));
        String what = String.join(" ", args) + " -> " + r.err();
        assertEquals(2, r.code(), what);
        assertEquals("", r.out(), what);
        assertTrue(r.err().endsWith("\n") && r.err().indexOf('\n') == r.err().length() - 1, "not one line: " + what);
        assertTrue(r.err().startsWith(args[0] + ": "), what);
        assertTrue(r.err().contains(fragment), "expected '" + fragment + "' in: " + what);
        assertFalse(r.err().contains("Exception") || r.err().contains("http") || r.err().contains("gson"), what);
        return r.err();
    }

    @Test
    void everyCommandHasHelpListingItsOptionsAndVersion() {
        CommandLine cl = Main.commands(System.out, System.err);
        assertEquals(List.of("generate", "replay", "plan", "profile", "serve-demo", "serve", "convert"), List.copyOf(cl.getSubcommands().keySet()));
        for (var e : cl.getSubcommands().entrySet()) {
            CliRun help = CliRun.of(e.getKey(), "--help");
            assertEquals(0, help.code(), help.err());
            assertEquals("", help.err());
            assertTrue(help.out().startsWith("Usage: spotserve-examples " + e.getKey()), help.out());
            for (OptionSpec o : e.getValue().getCommandSpec().options()) {
                assertTrue(help.out().contains(o.longestName()), e.getKey() + " --help lacks " + o.longestName());
            }
            CliRun version = CliRun.of(e.getKey(), "--version");
            assertEquals(0, version.code(), version.err());
            assertTrue(version.out().matches("SpotServe-J \\d+\\.\\d+\\.\\d+(-SNAPSHOT)? \\(Java .*\\)\\R"), version.out());
        }
        CliRun top = CliRun.of("--help");
        assertEquals(0, top.code());
        assertTrue(top.out().contains("serve-demo") && top.out().contains("replay"), top.out());
    }

    @Test
    void aNamedCommandIsTheOnlyOneBuiltAndTheTopLevelStillListsThemAll() {
        List<String> all = List.copyOf(Main.commands(System.out, System.err).getSubcommands().keySet());
        for (String name : all) {
            CommandLine cl = Main.commands(new String[] {name, "--help"}, System.out, System.err);
            assertEquals(List.of(name), List.copyOf(cl.getSubcommands().keySet()));
        }
        for (String[] args : new String[][] {{}, {"--help"}, {"serve-http"}, {"--version"}}) {
            assertEquals(all, List.copyOf(Main.commands(args, System.out, System.err).getSubcommands().keySet()));
        }
    }

    @Test
    void missingOrUnknownCommandIsOneLine() {
        for (String[] args : new String[][] {{}, {"serve-http"}, {"--bogus"}}) {
            CliRun r = CliRun.of(args);
            assertEquals(2, r.code(), r.err());
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().startsWith("spotserve-examples: ") && r.err().contains("generate, replay, plan, profile, "
                    + "serve-demo") || r.err().contains("unknown option --bogus"), r.err());
        }
    }

    @Test
    void serveDemoTakesKeyEqualsValue() {
        CliRun r = CliRun.of("serve-demo", "--instances=1", "--requests=1", "--tokens=6");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("completed=1 "), r.out());
    }

    @Test
    void serveDemoBoundsInstancesAndGpusUpFront() {
        usageError("--gpus must be in [1, 64], was 100000", "serve-demo", "--gpus", "100000");
        usageError("--instances must be in [1, 256], was 10000", "serve-demo", "--instances", "10000");
        usageError("--requests must be in [1, 10000]", "serve-demo", "--requests=20000");
        // within both bounds but not within memory: 200 x 64 devices each holding a copy of the model and its KV
        assumeTrue(Runtime.getRuntime().maxMemory() < 40L << 30);
        usageError("--instances 200 x --gpus 64 needs about", "serve-demo", "--instances", "200", "--gpus", "64");
    }

    @Test
    void profileEstimatesItsHeapBeforeAllocating() {
        String err = usageError("needs about", "profile", "--random", "16384,65536,64,128,128,128000,4096");
        assertTrue(err.contains("of heap, more than half of the JVM's maximum"), err);
        // the issue's own command: 5.2 GiB by the estimate, so it is refused on any heap below 10 GiB
        assumeTrue(Runtime.getRuntime().maxMemory() < 10L << 30);
        usageError("needs about", "profile", "--random", "4096,11008,2,32,32,32000,2048");
    }

    @Test
    void replayRefusesSpeedsAndRatesThatMakeNoSenseOrNeverEnd() {
        usageError("--speed must be in (0, 10000]", "replay", "--speed", "1e308");
        usageError("--speed must be in (0, 10000]", "replay", "--speed=0");
        usageError("the trace would take about", "replay", "--speed", "1e-300");
        usageError("--requests 300 at --rate 1.0E-300 would take about", "replay", "--rate", "1e-300", "--requests",
                "300");
        usageError("--rate 1.0E-300 over the trace's 1020 s would submit about", "replay", "--rate", "1e-300");
        usageError("--rate 1000.0 over the trace's 1020 s would submit about", "replay", "--rate", "1000");
        usageError("--rate must be a positive finite number", "replay", "--rate", "Infinity");
    }

    @Test
    void badInputFilesExitTwoWithOneLineForEveryCommand() throws IOException {
        byte[] binary = new byte[4096];
        new Random(7).nextBytes(binary);
        Path bin = Files.write(dir.resolve("noise.bin"), binary);
        Path text = Files.writeString(dir.resolve("words.txt"), "hello world {\n");
        usageError("--trace " + bin + " is not a text file (not UTF-8)", "replay", "--trace", bin.toString());
        usageError("--trace " + text + ":1:", "replay", "--trace", text.toString());
        usageError("--profile " + bin + " is not a text file (not UTF-8)", "plan", "--profile", bin.toString(),
                "--instances", "2");
        usageError("--profile " + text + " is not valid JSON (at line 1, column ", "plan", "--profile",
                text.toString(), "--instances", "2");
        usageError("--model-file " + bin, "plan", "--profile", io.spotserve.testing.SharedData.file(
                "profiles/T4-4x/megatron_345M_profile.json").toString(), "--instances", "2", "--model-file", bin.toString());
        usageError("profile: --model " + text, "profile", "--model", text.toString());
        usageError("generate: --model ", "generate", "--model", bin.toString(), "--tokenizer", bin.toString());
    }

    @Test
    void optionsAreParsedTheSameWayByEveryCommand() {
        List<String[]> twice = new ArrayList<>();
        twice.add(new String[] {"generate", "--steps", "1", "--steps=2"});
        twice.add(new String[] {"replay", "--speed=10", "--speed", "20"});
        twice.add(new String[] {"plan", "--instances", "1", "--instances", "2"});
        twice.add(new String[] {"profile", "--repeats=1", "--repeats=2"});
        twice.add(new String[] {"serve-demo", "--gpus", "1", "--gpus", "2"});
        for (String[] args : twice) {
            usageError("should be specified only once", args);
            usageError("unknown option --colour; see " + args[0] + " --help", args[0], "--colour=red");
        }
    }
}
