package io.spotserve.examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.Tokenizer;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BundledModelTest {
    // published sha256 of karpathy/tinyllamas stories260K files (shared/models/README.md)
    private static final String CHECKPOINT_SHA256 = "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696";
    private static final String TOKENIZER_SHA256 = "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312";

    @Test
    void bundledBytesAreThePublishedFiles() throws Exception {
        assertEquals(CHECKPOINT_SHA256, sha256(BundledModel.CHECKPOINT_RESOURCE));
        assertEquals(TOKENIZER_SHA256, sha256(BundledModel.TOKENIZER_RESOURCE));
    }

    @Test
    void extractedFilesLoad(@TempDir Path dir) throws IOException {
        BundledModel.Extracted files = BundledModel.extractTo(dir.resolve("model"));
        assertEquals(1_056_540L, Files.size(files.checkpoint()));
        assertEquals(6_227L, Files.size(files.tokenizer()));
        LlamaCheckpoint checkpoint = LlamaCheckpoint.load(files.checkpoint());
        assertEquals(new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true), checkpoint.config());
        Tokenizer tokenizer = Tokenizer.load(files.tokenizer(), checkpoint.config().vocabSize());
        assertArrayEquals(new int[] {1, 403, 407, 261, 378}, tokenizer.encode("Once upon a time", true, false));
        // extracting again replaces the files in place
        assertEquals(files, BundledModel.extractTo(dir.resolve("model")));
        try (var listing = Files.list(dir.resolve("model"))) {
            assertEquals(2, listing.count(), "no leftover .part files");
        }
    }

    @Test
    void perJvmExtractionIsReused() throws IOException {
        BundledModel.Extracted first = BundledModel.extracted();
        assertSame(first, BundledModel.extracted());
        assertEquals(CHECKPOINT_SHA256, sha256(first.checkpoint()));
    }

    @Test
    void missingResourceIsReportedByName() {
        FileNotFoundException e = assertThrows(FileNotFoundException.class, () -> BundledModel.open("/models/nope.bin"));
        assertEquals("bundled model resource /models/nope.bin is not on the classpath", e.getMessage());
    }

    private static String sha256(String resource) throws IOException {
        try (InputStream in = BundledModel.open(resource)) {
            return HexFormat.of().formatHex(digest().digest(in.readAllBytes()));
        }
    }

    private static String sha256(Path file) throws IOException {
        return HexFormat.of().formatHex(digest().digest(Files.readAllBytes(file)));
    }

    private static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
