package io.spotserve.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.PriorityQueue;

/**
 * The byte-pair-encoding tokenizer of llama2.c ({@code tokenizer.bin} / {@code tok512.bin}), bit-compatible
 * with Karpathy's {@code run.c}.
 *
 * <p>Why exact compatibility matters here: SpotServe recovers an interrupted request by re-running the
 * prompt plus the tokens already committed, and our correctness bar is "the same greedy tokens as the
 * unsharded reference". Both only hold if prompt encoding is the same token-for-token as the reference
 * implementation that produced our fixtures ({@code run.c}).
 *
 * <p>File format: int32 {@code max_token_length}, then for each of {@code vocabSize} ids a float32 merge
 * score, an int32 byte length and that many raw bytes. The vocabulary size is not stored in the file; it
 * comes from the model header ({@link LlamaConfig#vocabSize()}). Ids 0, 1, 2 are {@code <unk>}, BOS and
 * EOS; byte-fallback tokens are id {@code byte + 3}.
 *
 * <p>Instances are immutable and thread-safe.
 */
public final class Tokenizer {
    /** Id of {@code <unk>}. */
    public static final int UNK = 0;
    /** Id of the begin-of-sequence token; in llama2.c it also delimits sequences (generation stops on it). */
    public static final int BOS = 1;
    /** Id of the end-of-sequence token. */
    public static final int EOS = 2;
    /** Byte-fallback tokens start here: byte {@code b} is id {@code b + BYTE_OFFSET}. */
    public static final int BYTE_OFFSET = 3;

    private static final byte[] SPACE = {' '};
    private static final byte[] EMPTY = {};

    private final Path file;
    private final byte[][] pieces;
    private final float[] scores;
    private final int maxTokenLength;
    private final Map<Piece, Integer> ids;
    /** For each id: the raw byte its piece stands for ({@code <0xNN>}), or -1. */
    private final int[] byteValue;

    /** Byte-level BPE (Llama 3), or null for the SentencePiece-style run.c algorithm. */
    private final ByteLevelBpe bpe;
    private final int bosId;
    private final int eosId;

    private Tokenizer(Path file, byte[][] pieces, float[] scores, int maxTokenLength) {
        this(file, pieces, scores, maxTokenLength, null, BOS, EOS);
    }

    private Tokenizer(Path file, byte[][] pieces, float[] scores, int maxTokenLength, ByteLevelBpe bpe, int bosId,
                      int eosId) {
        this.bpe = bpe;
        this.bosId = bosId;
        this.eosId = eosId;
        this.file = file;
        this.pieces = pieces;
        this.scores = scores;
        this.maxTokenLength = maxTokenLength;
        this.ids = new HashMap<>(pieces.length * 2);
        // run.c binary-searches a sorted copy; with duplicate pieces which id wins is unspecified there.
        // We take the lowest id (real vocabularies have no duplicates; tok512 has none).
        for (int i = pieces.length - 1; i >= 0; i--) {
            ids.put(new Piece(pieces[i]), i);
        }
        this.byteValue = new int[pieces.length];
        for (int i = 0; i < pieces.length; i++) {
            byteValue[i] = parseBytePiece(pieces[i]);
        }
    }

    /**
     * Loads a llama2.c tokenizer file with the model's vocabulary size. Bytes after the last entry are
     * allowed (run.c ignores them too; Llama-2's 32000-entry file is read this way by smaller vocabularies).
     *
     * @param vocabSize the model's {@code vocab_size}; the file must hold at least this many entries
     * @throws ModelFormatException if the file is truncated, a length is negative, a piece is longer than
     *                              {@code max_token_length}, or it has fewer entries than {@code vocabSize}
     * @throws IllegalArgumentException if {@code vocabSize} is not positive
     */
    public static Tokenizer load(Path file, int vocabSize) throws IOException {
        Objects.requireNonNull(file, "file");
        if (vocabSize <= 0) {
            throw new IllegalArgumentException("vocabSize must be positive, was " + vocabSize);
        }
        long size = Files.size(file);
        if (size > Integer.MAX_VALUE) {
            throw new ModelFormatException(file, "file size", size + " bytes", "at most " + Integer.MAX_VALUE
                    + " bytes for a tokenizer");
        }
        ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        if (in.remaining() < Integer.BYTES) {
            throw new ModelFormatException(file, "max_token_length", "truncated (file is " + in.remaining()
                    + " bytes)", "an int32 at offset 0");
        }
        int maxTokenLength = in.getInt();
        if (maxTokenLength <= 0) {
            throw new ModelFormatException(file, "max_token_length", String.valueOf(maxTokenLength),
                    "a positive int32");
        }
        // every entry takes at least 8 bytes, so a short file fails before the arrays would overflow; this
        // keeps an absurd vocabSize from allocating gigabytes before the truncation is noticed
        int capacity = (int) Math.min(vocabSize, in.remaining() / (Float.BYTES + Integer.BYTES));
        byte[][] pieces = new byte[capacity][];
        float[] scores = new float[capacity];
        for (int id = 0; id < vocabSize; id++) {
            int at = in.position();
            if (in.remaining() < Float.BYTES + Integer.BYTES) {
                throw new ModelFormatException(file, "token " + id,
                        "missing: the file ends at byte " + in.limit() + " after " + id + " entries",
                        vocabSize + " entries (the model's vocab_size)");
            }
            scores[id] = in.getFloat();
            int len = in.getInt();
            if (len < 0) {
                throw new ModelFormatException(file, "token " + id + " length",
                        len + " (at byte " + (at + Float.BYTES) + ")", "a length in [0, max_token_length "
                                + maxTokenLength + "]");
            }
            if (len > maxTokenLength) {
                throw new ModelFormatException(file, "token " + id + " length",
                        len + " (at byte " + (at + Float.BYTES) + ")",
                        "at most max_token_length " + maxTokenLength);
            }
            if (in.remaining() < len) {
                throw new ModelFormatException(file, "token " + id + " bytes",
                        "truncated: " + in.remaining() + " bytes left", len + " bytes");
            }
            pieces[id] = new byte[len];
            in.get(pieces[id]);
        }
        return new Tokenizer(file, pieces, scores, maxTokenLength);
    }

    /**
     * A tokenizer over an in-memory vocabulary (a GGUF {@code llama} tokenizer, pieces with SentencePiece's
     * {@code ▁} already turned into spaces). Ids 0, 1, 2 must be {@code <unk>}, BOS and EOS, and byte fallback
     * pieces {@code <0xNN>} at id {@code NN + 3}, as in Llama 2's vocabulary.
     */
    static Tokenizer of(Path source, byte[][] pieces, float[] scores) {
        if (pieces.length != scores.length || pieces.length == 0) {
            throw new IllegalArgumentException(pieces.length + " pieces and " + scores.length + " scores");
        }
        int max = 1;
        for (byte[] p : pieces) {
            max = Math.max(max, p.length);
        }
        return new Tokenizer(source, pieces.clone(), scores.clone(), max);
    }

    /** A byte-level BPE tokenizer (Llama 3) with its begin/end-of-sequence ids. */
    static Tokenizer byteLevel(Path source, ByteLevelBpe bpe, int bosId, int eosId) {
        int n = bpe.vocabSize();
        byte[][] pieces = new byte[n][];
        int max = 1;
        for (int i = 0; i < n; i++) {
            pieces[i] = bpe.bytes(i);
            max = Math.max(max, pieces[i].length);
        }
        return new Tokenizer(source, pieces, new float[n], max, bpe, bosId, eosId);
    }

    /**
     * Reads a Hugging Face {@code tokenizer.json} of a byte-level BPE model (Llama 3's): vocabulary, merges, added
     * (special) tokens; the pre-tokenizer must be Llama 3's split regex.
     *
     * @param bosId the model's begin-of-sequence id (from its config)
     * @param eosId the model's end-of-sequence id
     * @throws ModelFormatException if the file is not a byte-level BPE tokenizer.json we support
     */
    public static Tokenizer loadHuggingFace(Path file, int bosId, int eosId) throws IOException {
        return HfTokenizerJson.read(file, bosId, eosId);
    }

    /** The byte-level BPE behind this tokenizer, or null (SentencePiece-style). */
    ByteLevelBpe bpe() {
        return bpe;
    }

    /** Begin-of-sequence id ({@link #BOS} for SentencePiece-style vocabularies). */
    public int bosId() {
        return bosId;
    }

    /** End-of-sequence id ({@link #EOS} for SentencePiece-style vocabularies). */
    public int eosId() {
        return eosId;
    }

    /** Whether this is a byte-level BPE tokenizer (no dummy prefix, no BOS space rule). */
    public boolean byteLevel() {
        return bpe != null;
    }

    /** The file this tokenizer was read from. */
    public Path file() {
        return file;
    }

    /** Number of token ids. */
    public int vocabSize() {
        return pieces.length;
    }

    /** Longest piece, in bytes, as declared in the file header. */
    public int maxTokenLength() {
        return maxTokenLength;
    }

    /** A copy of the raw bytes of a token's piece as stored in the file (e.g. {@code "<0x0A>"}, {@code " the"}). */
    public byte[] piece(int token) {
        return pieces[checkToken(token)].clone();
    }

    /** The merge score of a token (higher merges first). */
    public float score(int token) {
        return scores[checkToken(token)];
    }

    /** The id whose piece is exactly these bytes, or -1. */
    public int lookup(byte[] piece) {
        Integer id = ids.get(new Piece(piece));
        return id == null ? -1 : id;
    }

    /**
     * Encodes text exactly like {@code run.c}'s {@code encode()}: optional BOS, a dummy leading space token
     * when the text is non-empty, one token per UTF-8 code point found in the vocabulary (else one
     * byte-fallback token per byte), then repeatedly merges the adjacent pair whose concatenation is in the
     * vocabulary with the highest score (ties: the leftmost pair), and finally an optional EOS.
     *
     * <p>Where run.c has undefined behaviour we choose: a vocabulary without a {@code " "} piece gets the
     * byte-fallback token of 0x20 as dummy prefix. Unlike C strings, a Java string may contain U+0000; it is encoded like any other byte (byte
     * fallback). Unpaired surrogates are replaced by {@code '?'} by the UTF-8 encoder.
     *
     * @throws IllegalArgumentException if a byte-fallback id would not exist in this vocabulary
     */
    public int[] encode(String text, boolean bos, boolean eos) {
        Objects.requireNonNull(text, "text");
        if (bpe != null) {
            int[] body = bpe.encode(text);
            int[] out = new int[body.length + (bos ? 1 : 0) + (eos ? 1 : 0)];
            if (bos) {
                out[0] = bosId;
            }
            System.arraycopy(body, 0, out, bos ? 1 : 0, body.length);
            if (eos) {
                out[out.length - 1] = eosId;
            }
            return out;
        }
        return encodeUtf8(text.getBytes(StandardCharsets.UTF_8), bos, eos);
    }

    /** As {@link #encode(String, boolean, boolean)} on raw bytes, which need not be valid UTF-8 (run.c's rules). */
    int[] encodeUtf8(byte[] text, boolean bos, boolean eos) {
        int[] initial = encodeUtf8Unmerged(text);
        int[] tokens = new int[initial.length + 2];
        int n = 0;
        if (bos) {
            tokens[n++] = BOS;
        }
        System.arraycopy(initial, 0, tokens, n, initial.length);
        // run.c merges over the whole array, BOS included (a vocabulary could hold a piece starting "\n<s>\n")
        n = mergePairs(tokens, n + initial.length);
        if (eos) {
            tokens[n++] = EOS;
        }
        return Arrays.copyOf(tokens, n);
    }

    /** Dummy prefix plus one token per code point or byte: run.c's tokens before the merge loop. */
    int[] encodeUtf8Unmerged(byte[] text) {
        int[] tokens = new int[text.length + 1];
        int n = 0;
        if (text.length > 0) {
            int space = lookup(SPACE);
            tokens[n++] = space >= 0 ? space : byteToken(' ');
        }
        // Code-point grouping as run.c does it: a non-continuation byte starts a group; continuation bytes
        // extend it up to 4 bytes; stray continuation bytes form groups of their own.
        int start = 0;
        int len = 0;
        for (int i = 0; i < text.length; i++) {
            if ((text[i] & 0xC0) != 0x80) {
                start = i;
                len = 0;
            } else if (len == 0) {
                start = i;
            }
            len++;
            boolean nextIsContinuation = i + 1 < text.length && (text[i + 1] & 0xC0) == 0x80;
            if (nextIsContinuation && len < 4) {
                continue;
            }
            Integer id = ids.get(new Piece(Arrays.copyOfRange(text, start, start + len)));
            if (id != null) {
                tokens[n++] = id;
            } else {
                for (int b = start; b < start + len; b++) {
                    tokens[n++] = byteToken(text[b] & 0xFF);
                }
            }
            len = 0;
        }
        return Arrays.copyOf(tokens, n);
    }

    /**
     * run.c's merge loop, literally: rescan all adjacent pairs, merge the best one, repeat. O(n^2) lookups;
     * kept as the oracle that {@link #mergePairs} is tested against.
     */
    int mergePairsNaive(int[] tokens, int n) {
        Map<Long, Integer> pairCache = new HashMap<>();
        while (true) {
            float bestScore = -1e10f;
            int bestId = -1;
            int bestIdx = -1;
            for (int i = 0; i < n - 1; i++) {
                int id = mergedId(tokens[i], tokens[i + 1], pairCache);
                // strict '>' on primitive floats, like run.c: the leftmost best pair wins, and -0.0 == 0.0
                if (id != -1 && scores[id] > bestScore) {
                    bestScore = scores[id];
                    bestId = id;
                    bestIdx = i;
                }
            }
            if (bestIdx == -1) {
                return n;
            }
            tokens[bestIdx] = bestId;
            System.arraycopy(tokens, bestIdx + 2, tokens, bestIdx + 1, n - bestIdx - 2);
            n--;
        }
    }

    /**
     * The same merges as {@link #mergePairsNaive} in O(n log n): tokens form a linked list and every
     * adjacent pair that can merge sits in a heap ordered by score (descending), then by position
     * (ascending; original indices keep the list order). Popped entries whose nodes changed since they were
     * pushed are skipped. Like run.c, only scores {@code > -1e10} ever merge, and -0.0 ties with 0.0.
     */
    int mergePairs(int[] tokens, int n) {
        if (n < 2) {
            return n;
        }
        int[] next = new int[n];
        int[] prev = new int[n];
        int[] version = new int[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        Map<Long, Integer> pairCache = new HashMap<>();
        PriorityQueue<Candidate> heap = new PriorityQueue<>();
        for (int i = 0; i + 1 < n; i++) {
            offer(heap, tokens, i, i + 1, version, pairCache);
        }
        int count = n;
        while (!heap.isEmpty()) {
            Candidate c = heap.poll();
            int left = c.left;
            int right = c.right;
            if (next[left] != right || version[left] != c.leftVersion || version[right] != c.rightVersion) {
                continue; // stale: one of the two tokens was merged away or changed
            }
            tokens[left] = c.id;
            version[left]++;
            version[right] = -1; // dead
            int after = next[right];
            next[left] = after;
            if (after >= 0) {
                prev[after] = left;
            }
            count--;
            if (prev[left] >= 0) {
                offer(heap, tokens, prev[left], left, version, pairCache);
            }
            if (after >= 0) {
                offer(heap, tokens, left, after, version, pairCache);
            }
        }
        int out = 0;
        for (int i = 0; i >= 0; i = next[i]) {
            tokens[out++] = tokens[i];
        }
        assert out == count;
        return out;
    }

    private void offer(PriorityQueue<Candidate> heap, int[] tokens, int left, int right, int[] version,
                       Map<Long, Integer> pairCache) {
        int id = mergedId(tokens[left], tokens[right], pairCache);
        if (id != -1 && scores[id] > -1e10f) {
            heap.add(new Candidate(scores[id] + 0.0f, left, right, version[left], version[right], id));
        }
    }

    /** A mergeable adjacent pair; best first = higher score, then leftmost. */
    private record Candidate(float score, int left, int right, int leftVersion, int rightVersion, int id)
            implements Comparable<Candidate> {
        @Override
        public int compareTo(Candidate o) {
            int byScore = Float.compare(o.score, score); // scores are > -1e10, never NaN, and -0.0 became 0.0
            return byScore != 0 ? byScore : Integer.compare(left, o.left);
        }
    }

    private int mergedId(int left, int right, Map<Long, Integer> cache) {
        long key = ((long) left << 32) | (right & 0xFFFFFFFFL);
        Integer cached = cache.get(key);
        if (cached != null) {
            return cached;
        }
        byte[] a = pieces[left];
        byte[] b = pieces[right];
        int id = -1;
        if (a.length + b.length <= 2 * maxTokenLength) {
            byte[] joined = Arrays.copyOf(a, a.length + b.length);
            System.arraycopy(b, 0, joined, a.length, b.length);
            id = lookup(joined);
        }
        cache.put(key, id);
        return id;
    }

    private int byteToken(int b) {
        int id = b + BYTE_OFFSET;
        if (id >= pieces.length) {
            throw new IllegalArgumentException("byte 0x" + Integer.toHexString(b) + " needs byte-fallback token "
                    + id + " but the vocabulary has only " + pieces.length + " tokens");
        }
        return id;
    }

    /**
     * The bytes {@code run.c}'s {@code decode(prev, token)} returns: the token's piece, without its leading
     * space when {@code prevToken} is BOS, and a {@code <0xNN>} piece replaced by that single raw byte.
     * One raw byte may be half of a UTF-8 character; use {@link #streamDecoder(int)} to get text.
     *
     * <p>Byte pieces are recognised in their canonical form {@code <0xHH>} (two hex digits, any case), the only
     * form llama2.c tokenizers contain; run.c's {@code sscanf} would also accept some malformed variants.
     */
    public byte[] decode(int prevToken, int token) {
        checkToken(token);
        if (bpe != null) {
            return pieces[token].clone();
        }
        int b = byteValue[token];
        byte[] piece = pieces[token];
        if (prevToken == BOS && piece.length > 0 && piece[0] == ' ') {
            piece = Arrays.copyOfRange(piece, 1, piece.length);
            b = parseBytePiece(piece);
        }
        if (b >= 0) {
            return new byte[] {(byte) b};
        }
        return piece.clone();
    }

    /**
     * Exactly the bytes {@code run.c} writes to stdout for this token ({@code safe_printf(decode(prev,
     * token))}): like {@link #decode(int, int)}, but a single-byte result that is neither printable ASCII
     * nor whitespace (in the C locale) is dropped. That drops every byte-fallback half of a multi-byte
     * character, so use this only to compare with run.c's output, never to show text.
     */
    public byte[] runcOutput(int prevToken, int token) {
        byte[] piece = decode(prevToken, token);
        if (piece.length == 1) {
            int c = piece[0] & 0xFF;
            boolean printable = c >= 0x20 && c <= 0x7E;
            boolean space = c == ' ' || (c >= '\t' && c <= '\r');
            if (!printable && !space) {
                return EMPTY;
            }
        }
        return piece;
    }

    /**
     * A decoder for a stream of generated tokens that follow {@code startToken} (which is not itself
     * emitted, like run.c's first prompt token, usually {@link #BOS}).
     */
    public TokenStreamDecoder streamDecoder(int startToken) {
        return new TokenStreamDecoder(this, checkToken(startToken));
    }

    /**
     * Decodes {@code tokens[1..]} as text, treating {@code tokens[0]} as the start token (not emitted). With
     * {@code tokens = encode(text, true, false)} this returns {@code text} (the BOS rule removes the dummy
     * space). Incomplete or invalid UTF-8 becomes U+FFFD.
     */
    public String decode(int[] tokens) {
        if (tokens.length == 0) {
            return "";
        }
        TokenStreamDecoder decoder = streamDecoder(tokens[0]);
        StringBuilder out = new StringBuilder();
        for (int i = 1; i < tokens.length; i++) {
            out.append(decoder.accept(tokens[i]));
        }
        return out.append(decoder.finish()).toString();
    }

    private int checkToken(int token) {
        if (token < 0 || token >= pieces.length) {
            throw new IllegalArgumentException("token " + token + " outside [0, " + pieces.length + ")");
        }
        return token;
    }

    /** Value of a {@code <0xHH>} piece, or -1. */
    static int parseBytePiece(byte[] p) {
        if (p.length != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') {
            return -1;
        }
        int hi = Character.digit(p[3], 16);
        int lo = Character.digit(p[4], 16);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    @Override
    public String toString() {
        return "Tokenizer[" + file + ", " + pieces.length + " tokens, max_token_length " + maxTokenLength + "]";
    }

    /** Byte-array key with value equality, for the piece-to-id map. */
    private record Piece(byte[] bytes) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Piece other && Arrays.equals(bytes, other.bytes);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(bytes);
        }

        @Override
        public String toString() {
            return new String(bytes, StandardCharsets.UTF_8);
        }
    }
}
