package io.spotserve.model;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A model or tokenizer file does not have the shape its format promises.
 *
 * <p>Thrown before any model object is built, so callers never hold a half-loaded model. The message
 * always names the file, the field, what was found and what was expected, because the usual cause is a
 * wrong or truncated download that the user has to identify.
 */
public final class ModelFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    private final Path file;
    private final String field;

    public ModelFormatException(Path file, String field, String found, String expected) {
        super(file + ": field '" + field + "' is " + found + ", expected " + expected);
        this.file = file;
        this.field = field;
    }

    /** The file that failed to load. */
    public Path file() {
        return file;
    }

    /** The header field or section that was wrong. */
    public String field() {
        return field;
    }
}
