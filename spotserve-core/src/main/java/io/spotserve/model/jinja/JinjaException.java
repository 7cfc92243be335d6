package io.spotserve.model.jinja;

/**
 * A chat template that cannot be parsed or rendered: a syntax error, an unsupported construct, a type error while
 * rendering, a limit reached, or the template's own {@code raise_exception(message)}. The message names the problem
 * and, where known, its place in the template source ({@code line:column}).
 */
public final class JinjaException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    /** What went wrong. */
    public enum Kind {
        /** The source is not a template we can parse (bad syntax or a construct we do not support). */
        SYNTAX,
        /** Rendering failed: a type error, an unknown filter, test or operator, and the like. */
        RENDER,
        /** The template called {@code raise_exception(message)}, typically because the conversation breaks its rules. */
        RAISED,
        /** Rendering exceeded the output or step limit. */
        LIMIT
    }

    private final Kind kind;
    private final String detail;

    JinjaException(Kind kind, String detail, String where) {
        super(message(kind, detail, where));
        this.kind = kind;
        this.detail = detail;
    }

    private static String message(Kind kind, String detail, String where) {
        String prefix = switch (kind) {
            case SYNTAX -> "chat template syntax error";
            case RENDER -> "chat template error";
            case RAISED -> "chat template rejected the conversation";
            case LIMIT -> "chat template limit reached";
        };
        return prefix + (where == null ? "" : " at " + where) + ": " + detail;
    }

    /** What went wrong. */
    public Kind kind() {
        return kind;
    }

    /** The message without the kind and position (for {@link Kind#RAISED}: the template's own words). */
    public String detail() {
        return detail;
    }
}
