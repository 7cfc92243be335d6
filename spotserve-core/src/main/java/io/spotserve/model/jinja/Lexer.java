package io.spotserve.model.jinja;

import io.spotserve.model.jinja.Token.Kind;
import java.util.ArrayList;
import java.util.List;

/**
 * Splits template text into tokens: text between tags, the tags {@code {% %}}, {@code {{ }}} (with their
 * whitespace-control forms {@code {%- -%}}, {@code {{- -}}}), comments {@code {# #}} (dropped) and, inside tags,
 * names, literals and operators. Whitespace control trims the neighbouring text of all Unicode white space.
 */
final class Lexer {
    private static final String[] SYMBOLS = {"**", "//", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",",
            ".", ":", "|", "<", ">", "+", "-", "~", "*", "/", "%", "="};

    private final Source source;
    private final String src;
    private final List<Token> tokens = new ArrayList<>();
    private int pos;

    private Lexer(Source source) {
        this.source = source;
        this.src = source.text();
    }

    static List<Token> tokenize(Source source) {
        Lexer l = new Lexer(source);
        l.run();
        return l.tokens;
    }

    static boolean isSpace(int c) {
        if (c <= 32) {
            return c == 32 || (c >= 9 && c <= 13);
        }
        return c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029
                || c == 0x202f || c == 0x205f || c == 0x3000 || c == 0xfeff;
    }

    private static boolean isWord(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    private JinjaException error(String what, int at) {
        return new JinjaException(JinjaException.Kind.SYNTAX, what, source.where(at));
    }

    private void run() {
        int n = src.length();
        while (pos < n) {
            int tag = nextTag(pos);
            if (tag > pos) {
                tokens.add(new Token(Kind.TEXT, src.substring(pos, tag), pos));
                pos = tag;
            }
            if (pos >= n) {
                break;
            }
            char second = src.charAt(pos + 1);
            boolean trimBefore = pos + 2 < n && src.charAt(pos + 2) == '-';
            if (trimBefore) {
                trimLastText();
            }
            int open = pos;
            pos += trimBefore ? 3 : 2;
            if (second == '#') {
                int end = src.indexOf("#}", pos);
                if (end < 0) {
                    throw error("comment '{#' is never closed with '#}'", open);
                }
                boolean trimAfter = end > pos && src.charAt(end - 1) == '-';
                pos = end + 2;
                if (trimAfter) {
                    skipSpace();
                }
                continue;
            }
            boolean statement = second == '%';
            tokens.add(new Token(statement ? Kind.OPEN_STATEMENT : Kind.OPEN_EXPRESSION, statement ? "{%" : "{{", open));
            insideTag(statement, open);
        }
        tokens.add(new Token(Kind.END, "", n));
    }

    /** The index of the next {@code {%}, {@code {{} or {@code {#} at or after {@code from}, or the end. */
    private int nextTag(int from) {
        int i = from;
        while (true) {
            i = src.indexOf('{', i);
            if (i < 0 || i + 1 >= src.length()) {
                return src.length();
            }
            char c = src.charAt(i + 1);
            if (c == '%' || c == '{' || c == '#') {
                return i;
            }
            i++;
        }
    }

    private void trimLastText() {
        if (!tokens.isEmpty() && tokens.get(tokens.size() - 1).kind() == Kind.TEXT) {
            Token t = tokens.remove(tokens.size() - 1);
            String s = t.text();
            int end = s.length();
            while (end > 0 && isSpace(s.charAt(end - 1))) {
                end--;
            }
            if (end > 0) {
                tokens.add(new Token(Kind.TEXT, s.substring(0, end), t.pos()));
            }
        }
    }

    private void skipSpace() {
        while (pos < src.length() && isSpace(src.charAt(pos))) {
            pos++;
        }
    }

    /** Tokens up to and including the tag's end ({@code %}} or {@code }}}). */
    private void insideTag(boolean statement, int open) {
        int braces = 0;
        while (true) {
            skipSpace();
            if (pos >= src.length()) {
                throw error("'" + (statement ? "{%" : "{{") + "' is never closed with '" + (statement ? "%}" : "}}")
                        + "'", open);
            }
            char c = src.charAt(pos);
            String close = statement ? "%}" : "}}";
            if (c == '-' && src.startsWith(close, pos + 1) && (statement || braces == 0)) {
                tokens.add(new Token(statement ? Kind.CLOSE_STATEMENT : Kind.CLOSE_EXPRESSION, close, pos));
                pos += 3;
                skipSpace();
                return;
            }
            if (src.startsWith(close, pos) && (statement || braces == 0)) {
                tokens.add(new Token(statement ? Kind.CLOSE_STATEMENT : Kind.CLOSE_EXPRESSION, close, pos));
                pos += 2;
                return;
            }
            if (src.startsWith("{{", pos) || src.startsWith("{%", pos) || src.startsWith("{#", pos)) {
                throw error("'" + src.substring(pos, pos + 2) + "' inside a tag opened at " + source.where(open)
                        + " (missing '" + close + "'?)", pos);
            }
            if (c == '\'' || c == '"') {
                string(c);
            } else if (isDigit(c)) {
                number();
            } else if (isWord(c)) {
                int start = pos;
                while (pos < src.length() && isWord(src.charAt(pos))) {
                    pos++;
                }
                tokens.add(new Token(Kind.NAME, src.substring(start, pos), start));
            } else {
                String sym = symbol();
                if (sym == null) {
                    throw error("unexpected character '" + c + "' inside a tag", pos);
                }
                if (sym.equals("{")) {
                    braces++;
                } else if (sym.equals("}")) {
                    braces--;
                }
                tokens.add(new Token(Kind.SYMBOL, sym, pos));
                pos += sym.length();
            }
        }
    }

    private String symbol() {
        for (String s : SYMBOLS) {
            if (src.startsWith(s, pos)) {
                return s;
            }
        }
        return null;
    }

    private void number() {
        int start = pos;
        while (pos < src.length() && isDigit(src.charAt(pos))) {
            pos++;
        }
        boolean afterDot = !tokens.isEmpty() && tokens.get(tokens.size() - 1).isSymbol(".");
        if (!afterDot && pos + 1 < src.length() && src.charAt(pos) == '.' && isDigit(src.charAt(pos + 1))) {
            pos++;
            while (pos < src.length() && isDigit(src.charAt(pos))) {
                pos++;
            }
            tokens.add(new Token(Kind.FLOAT, src.substring(start, pos), start));
        } else {
            tokens.add(new Token(Kind.INTEGER, src.substring(start, pos), start));
        }
    }

    private void string(char quote) {
        int start = pos;
        pos++;
        StringBuilder b = new StringBuilder();
        while (true) {
            if (pos >= src.length()) {
                throw error("string literal is never closed", start);
            }
            char c = src.charAt(pos++);
            if (c == quote) {
                break;
            }
            if (c != '\\') {
                b.append(c);
                continue;
            }
            if (pos >= src.length()) {
                throw error("string literal is never closed", start);
            }
            char e = src.charAt(pos++);
            switch (e) {
                case 'n' -> b.append('\n');
                case 't' -> b.append('\t');
                case 'r' -> b.append('\r');
                case 'b' -> b.append('\b');
                case 'f' -> b.append('\f');
                case 'v' -> b.append('\u000b');
                case '\'', '"', '\\' -> b.append(e);
                case 'x', 'u' -> {
                    int len = e == 'x' ? 2 : 4;
                    String hex = pos + len <= src.length() ? src.substring(pos, pos + len) : "";
                    if (hex.length() != len || !hex.chars().allMatch(h -> Character.digit(h, 16) >= 0)) {
                        throw error("invalid escape '\\" + e + hex + "' in a string literal", pos - 2);
                    }
                    b.append((char) Integer.parseInt(hex, 16));
                    pos += len;
                }
                default -> throw error("unknown escape '\\" + e + "' in a string literal", pos - 2);
            }
        }
        tokens.add(new Token(Kind.STRING, b.toString(), start));
    }
}
