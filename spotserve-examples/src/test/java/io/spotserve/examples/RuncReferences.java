package io.spotserve.examples;

import com.google.gson.Gson;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Reads the run.c reference outputs in {@code src/test/resources/runc/} (see the README there): for each
 * case the exact run.c command, its stdout bytes and the token ids it went through.
 */
final class RuncReferences {
    private RuncReferences() {
    }

    /**
     * One reference run of {@code run stories260K.bin -z tok512.bin <options>}.
     *
     * @param prompt         the {@code -i} prompt, or null when none was given (run.c then encodes "")
     * @param seed           the {@code -s} seed, or null when none was given (greedy runs)
     * @param steps          the {@code -n} value as given; {@code effectiveSteps} is what run.c used (0 or
     *                       more than seq_len means seq_len = 512)
     * @param promptTokens   run.c's {@code encode(prompt, bos=1, eos=0)}
     * @param tokens         every token of the run: {@code promptTokens[0]}, then the token chosen at each
     *                       position (forced prompt tokens first, then sampled ones), including a final BOS
     *                       (1) when sampling one ended the run ({@code stoppedOnBos})
     */
    record Case(String name, String command, String prompt, float temperature, float topp, Long seed,
                int steps, int effectiveSteps, String stdout, int[] promptTokens, int[] tokens,
                boolean stoppedOnBos) {

        /** The exact bytes run.c wrote to stdout. */
        byte[] stdoutBytes() throws IOException {
            try (InputStream in = resource(stdout)) {
                return in.readAllBytes();
            }
        }
    }

    private record Index(String model, String tokenizer, List<Case> cases) {
    }

    static List<Case> cases() throws IOException {
        try (Reader reader = new InputStreamReader(resource("index.json"), StandardCharsets.UTF_8)) {
            return new Gson().fromJson(reader, Index.class).cases();
        }
    }

    static Case find(String name) throws IOException {
        return cases().stream().filter(c -> c.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no run.c reference named " + name));
    }

    private static InputStream resource(String name) throws IOException {
        InputStream in = RuncReferences.class.getResourceAsStream("/runc/" + name);
        if (in == null) {
            throw new IOException("missing test resource /runc/" + name);
        }
        return in;
    }
}
