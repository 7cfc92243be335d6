package io.spotserve.examples;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Objects;

/**
 * The real stories260K checkpoint and its 512-token tokenizer (Karpathy's tinyllamas, MIT licence), shipped
 * inside the examples jar so the CLI generates real text offline, with nothing to download.
 *
 * <p>The loaders memory-map files, so the resources are first copied to a directory ({@link #extractTo}) or
 * to a per-JVM temporary directory ({@link #extracted()}). Provenance and checksums:
 * {@code shared/models/README.md}; a test checks the bundled bytes against the published sha256.
 */
public final class BundledModel {
    /** Classpath resource of the checkpoint (llama2.c format, 1,056,540 bytes). */
    public static final String CHECKPOINT_RESOURCE = "/models/stories260K.bin";
    /** Classpath resource of the tokenizer (llama2.c format, 6,227 bytes). */
    public static final String TOKENIZER_RESOURCE = "/models/tok512.bin";
    static final long CHECKPOINT_BYTES = 1_056_540L;
    static final long TOKENIZER_BYTES = 6_227L;

    private static Extracted extracted;

    private BundledModel() {
    }

    /** Where the two files were extracted to. */
    public record Extracted(Path checkpoint, Path tokenizer) {
        public Extracted {
            Objects.requireNonNull(checkpoint, "checkpoint");
            Objects.requireNonNull(tokenizer, "tokenizer");
        }
    }

    /**
     * Opens one of the bundled resources ({@link #CHECKPOINT_RESOURCE} or {@link #TOKENIZER_RESOURCE}).
     *
     * @throws FileNotFoundException if the resource is not on the classpath (a broken build)
     */
    public static InputStream open(String resource) throws IOException {
        InputStream in = BundledModel.class.getResourceAsStream(resource);
        if (in == null) {
            throw new FileNotFoundException("bundled model resource " + resource + " is not on the classpath");
        }
        return in;
    }

    /**
     * Copies both files into {@code dir} (created if missing; existing files are replaced) and checks their
     * sizes.
     */
    public static Extracted extractTo(Path dir) throws IOException {
        Files.createDirectories(dir);
        Path checkpoint = copy(CHECKPOINT_RESOURCE, dir.resolve("stories260K.bin"), CHECKPOINT_BYTES);
        Path tokenizer = copy(TOKENIZER_RESOURCE, dir.resolve("tok512.bin"), TOKENIZER_BYTES);
        return new Extracted(checkpoint, tokenizer);
    }

    /** Extracts once per JVM into a temporary directory that is deleted when the JVM exits. */
    public static synchronized Extracted extracted() throws IOException {
        if (extracted == null) {
            Path dir = Files.createTempDirectory("spotserve-model");
            dir.toFile().deleteOnExit(); // registered first, so deleted after the files
            Extracted e = extractTo(dir);
            e.checkpoint().toFile().deleteOnExit();
            e.tokenizer().toFile().deleteOnExit();
            extracted = e;
        }
        return extracted;
    }

    private static Path copy(String resource, Path target, long expectedBytes) throws IOException {
        Path tmp = Files.createTempFile(target.getParent(), target.getFileName().toString(), ".part");
        try (InputStream in = open(resource)) {
            long copied = Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            if (copied != expectedBytes) {
                throw new IOException("bundled resource " + resource + " has " + copied + " bytes, expected "
                        + expectedBytes);
            }
            return Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
