package io.spotserve.exec;

import io.spotserve.model.TokenStreamDecoder;
import io.spotserve.model.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Text generation on one loaded {@link Pipeline} with llama2.c {@code run.c}'s exact semantics (see
 * {@link Generation} for the rules): encodes the prompt, runs it as prefill blocks, then decodes token by
 * token, several sequences together in one batched forward pass when more than one is given.
 *
 * <p>Why it is in core: the CLI, the tests against run.c's reference outputs and the serving engine must agree
 * token for token, so the loop is written once. Each forward call carries, for every unfinished sequence in
 * order, either the rest of its prompt or its one decode token, up to {@link Pipeline#maxBatch()} entries;
 * prompt blocks longer than that are split over several calls. Logits are computed only for positions whose
 * next token is sampled. With the same logits this gives exactly run.c's tokens: prefill and batching change
 * which forward call computes a position, never the position's inputs.
 *
 * <p>Text is streamed as it is produced: each token's characters are reported as soon as they are complete
 * UTF-8 ({@link TokenStreamDecoder}), so a character split over byte-fallback tokens arrives whole (run.c
 * drops such bytes when printing).
 *
 * <p>Not thread-safe: drive one pipeline from one thread.
 */
public final class Generator {
    private final Pipeline pipeline;
    private final Tokenizer tokenizer;

    /** A prompt, run.c's step count ({@code 0} = {@code seq_len}) and the sampling parameters. */
    public record Request(String prompt, int steps, SamplingParams sampling) {
        public Request {
            Objects.requireNonNull(prompt, "prompt");
            Objects.requireNonNull(sampling, "sampling");
            if (steps < 0) {
                throw new IllegalArgumentException("steps must be >= 0 (0 = seq_len), was " + steps);
            }
        }
    }

    /**
     * The result of one request.
     *
     * @param promptTokens the encoded prompt, BOS first
     * @param tokens       every token of the run as in {@link Generation#tokens()}: the first prompt token, then
     *                     the token chosen at each position, with a final BOS when it ended the run
     * @param stoppedOnBos whether sampling BOS ended the run before the steps ran out
     * @param text         the text of the emitted tokens (prompt continuation included, as run.c prints it),
     *                     with characters that span byte-fallback tokens decoded correctly
     */
    public record Output(int[] promptTokens, int[] tokens, boolean stoppedOnBos, String text) {
        public Output {
            promptTokens = promptTokens.clone();
            tokens = tokens.clone();
            Objects.requireNonNull(text, "text");
        }

        @Override
        public int[] promptTokens() {
            return promptTokens.clone();
        }

        @Override
        public int[] tokens() {
            return tokens.clone();
        }

        /** The emitted token ids: {@link #tokens()} without the first one and without a final BOS. */
        public int[] emitted() {
            return Arrays.copyOfRange(tokens, 1, stoppedOnBos ? tokens.length - 1 : tokens.length);
        }
    }

    /** Receives text as it is generated. Calls come from the generating thread, in production order. */
    public interface Listener {
        /**
         * Sequence {@code index} (its place in the request list) emitted {@code token}.
         *
         * @param text the characters this token completes; may be empty (an unfinished UTF-8 character is
         *             held back until its last byte)
         */
        void onToken(int index, int token, String text);

        /**
         * Sequence {@code index} is finished; {@code text} is what was still held back (U+FFFD for an unfinished
         * UTF-8 character), usually empty.
         */
        default void onFinish(int index, String text) {
        }
    }

    /** A listener that ignores everything. */
    public static final Listener SILENT = (index, token, text) -> {
    };

    /**
     * A generator on {@code pipeline}, which must hold all its weights.
     *
     * @throws IllegalArgumentException if the tokenizer's vocabulary size differs from the model's
     * @throws IllegalStateException    if the pipeline lacks weights
     */
    public Generator(Pipeline pipeline, Tokenizer tokenizer) {
        this.pipeline = Objects.requireNonNull(pipeline, "pipeline");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        if (tokenizer.vocabSize() != pipeline.config().vocabSize()) {
            throw new IllegalArgumentException("tokenizer has " + tokenizer.vocabSize()
                    + " tokens but the model's vocab_size is " + pipeline.config().vocabSize());
        }
        if (!pipeline.isReady()) {
            throw new IllegalStateException("pipeline " + pipeline.layout() + " does not hold all its weights yet");
        }
    }

    /** The pipeline this generator runs on. */
    public Pipeline pipeline() {
        return pipeline;
    }

    /** The tokenizer. */
    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** Runs one request to the end. */
    public Output generate(Request request, Listener listener) {
        return generate(List.of(request), listener).get(0);
    }

    /**
     * Runs the requests together to the end (batched decode) and returns their outputs in request order.
     *
     * @throws IllegalArgumentException if the list is empty
     * @throws DeviceMemoryException    if the devices cannot hold the KV caches of all requests at once; no
     *                                  sequence is left open then
     */
    public List<Output> generate(List<Request> requests, Listener listener) {
        Objects.requireNonNull(requests, "requests");
        Objects.requireNonNull(listener, "listener");
        if (requests.isEmpty()) {
            throw new IllegalArgumentException("no requests to generate");
        }
        int seqLen = pipeline.config().seqLen();
        List<Generation> generations = new ArrayList<>(requests.size());
        for (Request r : requests) {
            int[] prompt = tokenizer.encode(r.prompt(), true, false);
            generations.add(new Generation(prompt, r.steps(), seqLen, r.sampling(), pipeline.config().stopToken()));
        }
        StringBuilder[] texts = new StringBuilder[generations.size()];
        for (int i = 0; i < texts.length; i++) {
            texts[i] = new StringBuilder();
        }
        run(generations, new Listener() {
            @Override
            public void onToken(int index, int token, String text) {
                texts[index].append(text);
                listener.onToken(index, token, text);
            }

            @Override
            public void onFinish(int index, String text) {
                texts[index].append(text);
                listener.onFinish(index, text);
            }
        });
        List<Output> out = new ArrayList<>(generations.size());
        for (int i = 0; i < generations.size(); i++) {
            Generation g = generations.get(i);
            out.add(new Output(g.promptTokens(), g.tokens(), g.stoppedOnBos(), texts[i].toString()));
        }
        return List.copyOf(out);
    }

    /**
     * Drives fresh generations to the end on this pipeline, batched, reporting each emitted token and each
     * finished sequence to {@code listener} (index = place in the list). The sequences' KV caches are opened
     * on the pipeline (ids not in use there) and closed again before returning, also on failure.
     *
     * @throws IllegalArgumentException if a generation was already advanced, is listed twice, or needs more
     *                                  positions than the model's {@code seq_len}
     * @throws DeviceMemoryException    if the KV caches do not fit; nothing is left open then
     */
    public void run(List<Generation> generations, Listener listener) {
        Objects.requireNonNull(generations, "generations");
        Objects.requireNonNull(listener, "listener");
        int n = generations.size();
        for (int i = 0; i < n; i++) {
            Generation g = Objects.requireNonNull(generations.get(i), "generation " + i);
            if (g.position() != 0) {
                throw new IllegalArgumentException("generation " + i + " was already advanced to position "
                        + g.position() + "; expected a fresh one");
            }
            if (g.steps() > pipeline.config().seqLen()) {
                throw new IllegalArgumentException("generation " + i + " needs " + g.steps()
                        + " positions but the model's seq_len is " + pipeline.config().seqLen());
            }
            for (int j = 0; j < i; j++) {
                if (generations.get(j) == g) {
                    throw new IllegalArgumentException("generation " + i + " is the same object as generation " + j);
                }
            }
        }
        long[] ids = new long[n];
        TokenStreamDecoder[] decoders = new TokenStreamDecoder[n];
        long next = pipeline.sequences().stream().mapToLong(Long::longValue).max().orElse(-1L) + 1;
        int opened = 0;
        try {
            for (int i = 0; i < n; i++) {
                Generation g = generations.get(i);
                ids[i] = next++;
                pipeline.openSequence(ids[i], g.steps());
                opened++;
                decoders[i] = tokenizer.streamDecoder(g.tokens()[0]);
            }
            loop(generations, ids, decoders, listener);
        } finally {
            for (int i = 0; i < opened; i++) {
                pipeline.closeSequence(ids[i]);
            }
        }
    }

    private void loop(List<Generation> generations, long[] ids, TokenStreamDecoder[] decoders, Listener listener) {
        int n = generations.size();
        int max = pipeline.maxBatch();
        int vocab = pipeline.config().vocabSize();
        long[] seqs = new long[max];
        int[] toks = new int[max];
        int[] pos = new int[max];
        int[] owner = new int[max];
        float[][] logits = new float[max][];
        float[][] buffers = new float[max][];
        boolean[] finished = new boolean[n];
        for (int i = 0; i < n; i++) {
            if (generations.get(i).isDone()) { // cannot happen with steps >= 1, kept for safety
                finished[i] = true;
                listener.onFinish(i, decoders[i].finish());
            }
        }
        while (true) {
            int count = 0;
            for (int i = 0; i < n && count < max; i++) {
                Generation g = generations.get(i);
                if (finished[i]) {
                    continue;
                }
                int[] inputs = g.nextInputs();
                int take = Math.min(inputs.length, max - count);
                for (int k = 0; k < take; k++) {
                    seqs[count] = ids[i];
                    toks[count] = inputs[k];
                    pos[count] = g.position() + k;
                    owner[count] = i;
                    // logits only where the next token is sampled: the block's last entry once the prompt is used up
                    boolean sampled = k == inputs.length - 1 && pos[count] >= g.promptLength() - 1;
                    if (sampled && buffers[count] == null) {
                        buffers[count] = new float[vocab];
                    }
                    logits[count] = sampled ? buffers[count] : null;
                    count++;
                }
            }
            if (count == 0) {
                return;
            }
            pipeline.forward(seqs, toks, pos, count, logits);
            for (int e = 0; e < count; e++) {
                int i = owner[e];
                if (finished[i]) {
                    continue; // a forced prompt token was BOS (a prompt containing BOS's piece): run.c stops there
                }
                Generation g = generations.get(i);
                int token = g.advance(logits[e]);
                if (token != g.stopToken()) {
                    listener.onToken(i, token, decoders[i].accept(token));
                }
                if (g.isDone()) {
                    finished[i] = true;
                    listener.onFinish(i, decoders[i].finish());
                }
            }
        }
    }
}
