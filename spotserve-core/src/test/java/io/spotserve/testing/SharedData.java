package io.spotserve.testing;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * Locates the team's read-only shared material (real model, traces, profiles) for tests. Maven passes
 * {@code -Dspotserve.shared.dir}; otherwise we walk up from the working directory looking for
 * {@code shared/}. Tests fail (not skip) when it is missing: these real files are part of the test contract.
 */
public final class SharedData {
    private SharedData() {
    }

    /** The root of ../shared. */
    public static Path root() {
        String prop = System.getProperty("spotserve.shared.dir");
        if (prop != null && Files.isDirectory(Paths.get(prop))) {
            return Paths.get(prop).toAbsolutePath().normalize();
        }
        Path dir = Paths.get("").toAbsolutePath();
        for (Path p = dir; p != null; p = p.getParent()) {
            Path candidate = p.resolve("shared");
            if (Files.isDirectory(candidate.resolve("models"))) {
                return candidate;
            }
            Path sibling = p.resolveSibling("shared");
            if (Files.isDirectory(sibling.resolve("models"))) {
                return sibling;
            }
        }
        throw new IllegalStateException("cannot find the shared/ folder (models, traces, profiles) from " + dir
                + "; set -Dspotserve.shared.dir=PATH");
    }

    /** A file under ../shared, which must exist. */
    public static Path file(String relative) {
        Path p = root().resolve(relative);
        if (!Files.exists(p)) {
            throw new IllegalStateException("shared file missing: " + p);
        }
        return p;
    }

    /** The real stories260K checkpoint. */
    public static Path stories260K() {
        return file("models/stories260K.bin");
    }

    /** The real 512-token tokenizer that goes with stories260K. */
    public static Path tok512() {
        return file("models/tok512.bin");
    }
}
