package io.spotserve.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Reads the tab-separated run.c fixtures kept beside the tests ({@code #} lines are comments). */
public final class TsvFixtures {
    private TsvFixtures() {
    }

    /** Rows of {@code resource}, resolved relative to {@code anchor}'s package, each split on tabs. */
    public static List<String[]> rows(Class<?> anchor, String resource) throws IOException {
        List<String[]> rows = new ArrayList<>();
        try (InputStream in = anchor.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource " + resource);
            }
            BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line; (line = reader.readLine()) != null; ) {
                if (!line.startsWith("#")) {
                    rows.add(line.split("\t", -1));
                }
            }
        }
        return rows;
    }
}
