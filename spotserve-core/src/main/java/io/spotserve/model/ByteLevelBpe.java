package io.spotserve.model;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * GPT-2-style byte-level BPE as Llama 3 uses it (Hugging Face {@code tokenizer.json} with merges, GGUF
 * {@code tokenizer.ggml.model = "gpt2"} with the {@code llama-bpe} pre-tokenizer): special tokens are split out
 * first, the rest is cut by Llama 3's pre-tokenization regex, each piece's UTF-8 bytes are mapped to GPT-2's
 * printable byte alphabet, and each piece is merged by merge rank (lowest first) — unless the whole piece is already
 * a vocabulary entry ({@code ignore_merges}, as Llama 3's tokenizer.json sets).
 *
 * <p>Immutable and thread-safe (the per-piece cache is concurrent).
 */
final class ByteLevelBpe {
    /** Llama 3's pre-tokenizer regex (tokenizer.json's Split pattern; llama.cpp's {@code llama-bpe}). */
    static final String LLAMA3_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        Arrays.fill(CHAR_TO_BYTE, -1);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + n++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private final String[] tokens;
    private final Map<String, Integer> ids;
    private final Map<String, Integer> mergeRanks; // "left right" -> rank
    private final Map<String, Integer> specials;   // content -> id
    private final Pattern specialSplit;             // null without specials
    private final Pattern pre;
    private final boolean ignoreMerges;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();
    private final List<String> merges;

    ByteLevelBpe(String[] tokens, List<String> merges, Map<String, Integer> specials, boolean ignoreMerges) {
        this.tokens = tokens.clone();
        this.ids = new HashMap<>(tokens.length * 2);
        for (int i = tokens.length - 1; i >= 0; i--) {
            if (tokens[i] != null) {
                ids.put(tokens[i], i);
            }
        }
        this.merges = List.copyOf(merges);
        this.mergeRanks = new HashMap<>(merges.size() * 2);
        for (int r = 0; r < merges.size(); r++) {
            String m = merges.get(r);
            if (m.indexOf(' ') <= 0) {
                throw new IllegalArgumentException("merge " + r + " \"" + m + "\" is not two pieces separated by a space");
            }
            mergeRanks.putIfAbsent(m, r);
        }
        this.specials = Map.copyOf(specials);
        if (specials.isEmpty()) {
            specialSplit = null;
        } else {
            List<String> sorted = new ArrayList<>(specials.keySet());
            sorted.sort(Comparator.comparingInt(String::length).reversed()); // longest first
            StringBuilder sb = new StringBuilder();
            for (String s : sorted) {
                sb.append(sb.length() == 0 ? "" : "|").append(Pattern.quote(s));
            }
            specialSplit = Pattern.compile(sb.toString());
        }
        this.pre = Pattern.compile(LLAMA3_PATTERN, Pattern.UNICODE_CHARACTER_CLASS);
        this.ignoreMerges = ignoreMerges;
        for (int b = 0; b < 256; b++) {
            if (!ids.containsKey(String.valueOf(BYTE_TO_CHAR[b]))) {
                throw new IllegalArgumentException("vocabulary lacks the byte-level token for byte " + b + " ('"
                        + BYTE_TO_CHAR[b] + "')");
            }
        }
    }

    int vocabSize() {
        return tokens.length;
    }

    /** The token's string in the byte-level alphabet (or a special token's content). */
    String token(int id) {
        return tokens[id];
    }

    /** The merges, best first ("left right"). */
    List<String> merges() {
        return merges;
    }

    /** Whether token {@code id} is a special (added) token. */
    boolean isSpecial(int id) {
        return specials.get(tokens[id]) != null && specials.get(tokens[id]) == id;
    }

    boolean ignoreMerges() {
        return ignoreMerges;
    }

    /** Id of a special token's content, or -1. */
    int special(String content) {
        Integer id = specials.get(content);
        return id == null ? -1 : id;
    }

    /** Encodes text: special tokens literally present become their ids; everything else goes through BPE. */
    int[] encode(String text) {
        List<Integer> out = new ArrayList<>();
        if (specialSplit == null) {
            encodeOrdinary(text, out);
        } else {
            Matcher m = specialSplit.matcher(text);
            int at = 0;
            while (m.find()) {
                encodeOrdinary(text.substring(at, m.start()), out);
                out.add(specials.get(m.group()));
                at = m.end();
            }
            encodeOrdinary(text.substring(at), out);
        }
        int[] a = new int[out.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = out.get(i);
        }
        return a;
    }

    private void encodeOrdinary(String text, List<Integer> out) {
        Matcher m = pre.matcher(text);
        while (m.find()) {
            for (int id : cache.computeIfAbsent(m.group(), this::bpe)) {
                out.add(id);
            }
        }
    }

    /** One pre-tokenized piece: byte-level alphabet, then merges by rank. */
    private int[] bpe(String piece) {
        byte[] utf8 = piece.getBytes(StandardCharsets.UTF_8);
        StringBuilder mapped = new StringBuilder(utf8.length);
        for (byte b : utf8) {
            mapped.append(BYTE_TO_CHAR[b & 0xff]);
        }
        String word = mapped.toString();
        if (ignoreMerges) {
            Integer whole = ids.get(word);
            if (whole != null) {
                return new int[]{whole};
            }
        }
        List<String> parts = new ArrayList<>(word.length());
        for (int i = 0; i < word.length(); i++) {
            parts.add(String.valueOf(word.charAt(i)));
        }
        while (parts.size() > 1) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < parts.size(); i++) {
                Integer r = mergeRanks.get(parts.get(i) + " " + parts.get(i + 1));
                if (r != null && r < bestRank) {
                    bestRank = r;
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            // merge every occurrence of this pair, left to right (as the reference BPE does)
            String left = parts.get(best);
            String right = parts.get(best + 1);
            List<String> next = new ArrayList<>(parts.size());
            for (int i = 0; i < parts.size(); i++) {
                if (i + 1 < parts.size() && parts.get(i).equals(left) && parts.get(i + 1).equals(right)) {
                    next.add(left + right);
                    i++;
                } else {
                    next.add(parts.get(i));
                }
            }
            parts = next;
        }
        int[] out = new int[parts.size()];
        for (int i = 0; i < out.length; i++) {
            Integer id = ids.get(parts.get(i));
            if (id == null) {
                throw new IllegalStateException("BPE produced \"" + parts.get(i) + "\" which is not in the vocabulary");
            }
            out[i] = id;
        }
        return out;
    }

    /** The raw bytes a token stands for (a special token: its content's UTF-8). */
    byte[] bytes(int id) {
        String t = tokens[id];
        if (t == null) {
            return new byte[0];
        }
        if (specials.containsKey(t)) {
            return t.getBytes(StandardCharsets.UTF_8);
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream(t.length());
        for (int i = 0; i < t.length(); i++) {
            char c = t.charAt(i);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b < 0) {
                // not in the byte alphabet (an added non-special token): its UTF-8
                byte[] raw = String.valueOf(c).getBytes(StandardCharsets.UTF_8);
                out.write(raw, 0, raw.length);
            } else {
                out.write(b);
            }
        }
        return out.toByteArray();
    }
}
