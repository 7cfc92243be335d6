package io.spotserve.model.jinja;

/**
 * The template text after the whitespace rules chat templates are written for (those of Hugging Face transformers:
 * {@code trim_blocks} and {@code lstrip_blocks}, plus Jinja's removal of one trailing newline), with a map from each
 * remaining character back to its place in the original source so errors can name {@code line:column} there.
 *
 * <ul>
 * <li>one newline at the very end of the source is dropped;</li>
 * <li>lstrip_blocks: spaces and tabs between the start of a line and a {@code {%}, {@code {#} or {@code {-} are
 * dropped;</li>
 * <li>trim_blocks: a newline right after {@code %}}, {@code #}} or {@code -}} is dropped.</li>
 * </ul>
 */
final class Source {
    private final String original;
    private final String text;
    private final int[] origin;

    private Source(String original, String text, int[] origin) {
        this.original = original;
        this.text = text;
        this.origin = origin;
    }

    static Source of(String original) {
        int n = original.length();
        boolean[] drop = new boolean[n];
        if (n > 0 && original.charAt(n - 1) == '\n') {
            drop[n - 1] = true;
        }
        // lstrip_blocks: from each line start, a run of blanks followed by '{' and one of # % -
        for (int lineStart = 0; lineStart < n; ) {
            int j = lineStart;
            while (j < n && !drop[j] && (original.charAt(j) == ' ' || original.charAt(j) == '\t')) {
                j++;
            }
            if (j > lineStart && j + 1 < n && original.charAt(j) == '{' && isBlockMark(original.charAt(j + 1))
                    && !drop[j + 1]) {
                for (int k = lineStart; k < j; k++) {
                    drop[k] = true;
                }
            }
            int next = nextLineStart(original, lineStart);
            if (next < 0) {
                break;
            }
            lineStart = next;
        }
        // trim_blocks: a newline right after a block end
        for (int i = 1; i + 1 < n; i++) {
            if (original.charAt(i) == '}' && isBlockMark(original.charAt(i - 1)) && original.charAt(i + 1) == '\n'
                    && !drop[i + 1]) {
                drop[i + 1] = true;
            }
        }
        StringBuilder b = new StringBuilder(n);
        int[] origin = new int[n + 1];
        for (int i = 0; i < n; i++) {
            if (!drop[i]) {
                origin[b.length()] = i;
                b.append(original.charAt(i));
            }
        }
        origin[b.length()] = n;
        return new Source(original, b.toString(), origin);
    }

    private static boolean isBlockMark(char c) {
        return c == '#' || c == '%' || c == '-';
    }

    /** Index after the next line terminator (\n, \r, U+2028, U+2029, as in a multiline regex), or -1. */
    private static int nextLineStart(String s, int from) {
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\n' || c == '\r' || c == '\u2028' || c == '\u2029') {
                return i + 1;
            }
        }
        return -1;
    }

    String text() {
        return text;
    }

    /** {@code line:column} (1-based) in the original source of the character at {@code index} of {@link #text()}. */
    String where(int index) {
        int at = origin[Math.max(0, Math.min(index, text.length()))];
        int line = 1;
        int col = 1;
        for (int i = 0; i < at && i < original.length(); i++) {
            if (original.charAt(i) == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return line + ":" + col;
    }
}
