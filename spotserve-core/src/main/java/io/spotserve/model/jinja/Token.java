package io.spotserve.model.jinja;

/** One lexical token of a template: its kind, its text (a string literal's value unescaped) and where it starts. */
record Token(Kind kind, String text, int pos) {
    enum Kind {
        /** Literal text outside tags. */
        TEXT,
        /** {@code {%} */
        OPEN_STATEMENT,
        /** {@code %}} */
        CLOSE_STATEMENT,
        /** {@code {{} */
        OPEN_EXPRESSION,
        /** {@code }}} */
        CLOSE_EXPRESSION,
        /** A name (keywords such as {@code if}, {@code and} and {@code true} are names too). */
        NAME,
        /** A string literal. */
        STRING,
        /** An integer literal. */
        INTEGER,
        /** A float literal. */
        FLOAT,
        /** An operator or punctuation: {@code ( ) [ ] { } , . : | = + - ~ * / // % ** == != < > <= >=}. */
        SYMBOL,
        /** The end of the template. */
        END
    }

    boolean is(Kind k, String t) {
        return kind == k && text.equals(t);
    }

    boolean isSymbol(String t) {
        return kind == Kind.SYMBOL && text.equals(t);
    }

    boolean isName(String t) {
        return kind == Kind.NAME && text.equals(t);
    }

    String describe() {
        return switch (kind) {
            case TEXT -> "text";
            case END -> "end of template";
            case STRING -> "string '" + text + "'";
            case OPEN_STATEMENT -> "'{%'";
            case CLOSE_STATEMENT -> "'%}'";
            case OPEN_EXPRESSION -> "'{{'";
            case CLOSE_EXPRESSION -> "'}}'";
            default -> "'" + text + "'";
        };
    }
}
