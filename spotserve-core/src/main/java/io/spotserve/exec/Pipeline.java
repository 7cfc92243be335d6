package io.spotserve.exec;

import io.spotserve.model.ModelWeights;
import io.spotserve.model.LlamaConfig;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Set;

/**
 * One inference pipeline of a parallel configuration (SpotServe §2): P stages × M tensor shards placed on
 * devices, holding weight slices and the KV caches of the sequences it serves, and running the LLaMA forward
 * pass over a batch of sequence positions (iteration-level batching: sequences join and leave between steps).
 *
 * <p>Lifecycle: create empty ({@link Executor#createPipeline}), fill every position's weights (from a
 * checkpoint or by importing migrated slices), {@link #openSequence open} sequences (allocates their KV cache
 * on every position's device), call {@link #forward} per step, {@link #closeSequence close} finished ones.
 * Context migration is {@link #exportSlice} on the old pipeline and {@link #importSlice} on the new one, slice
 * by slice, in any layout-to-layout combination (use {@link ContextSlice#intersect} to find what to move); an engine
 * uses {@link #stageSlice} and {@link #importStaged} instead, so that pipelines in other processes can keep the
 * staged bytes where they are and send them to the target process directly.
 *
 * <p>Not thread-safe: one engine thread drives a pipeline (it parallelises internally).
 */
public interface Pipeline extends AutoCloseable {
    /** How the model is split. */
    ShardLayout layout();

    /**
     * How this pipeline keeps its weights ({@link ExecutorOptions#weights()} of the executor that made it):
     * with {@link WeightPrecision#FP16} every imported weight was rounded to fp16, and exported weight slices
     * carry those rounded values.
     */
    default WeightPrecision weightPrecision() {
        return WeightPrecision.FP32;
    }

    /** The model shape. */
    default LlamaConfig config() {
        return layout().config();
    }

    /** The most sequence positions one {@link #forward} call may carry. */
    int maxBatch();

    /** The device position (stage, shard) lives on. */
    Device device(int stage, int shard);

    /**
     * Copies every weight slice every position needs from {@code checkpoint} into the devices (the cold-start
     * path, and the fallback when every replica of a slice was lost).
     *
     * @throws IllegalArgumentException if the checkpoint's shape differs from the layout's
     * @throws DeviceMemoryException    if a device cannot hold its slices
     */
    void loadWeights(ModelWeights checkpoint);

    /** Whether position (stage, shard) holds every weight slice it needs (it may then compute). */
    boolean hasAllWeights(int stage, int shard);

    /** Whether every hosted position ({@link #hostedStages()} × {@link #hostedShards()}) holds all its weights. */
    default boolean isReady() {
        IndexRange stages = hostedStages();
        IndexRange shards = hostedShards();
        for (int s = stages.from(); s < stages.to(); s++) {
            for (int m = shards.from(); m < shards.to(); m++) {
                if (!hasAllWeights(s, m)) {
                    return false;
                }
            }
        }
        return true;
    }

    /**
     * Serialises a slice that position (stage, shard) holds, in {@link SliceFormat}.
     *
     * @throws IllegalArgumentException if the position does not hold all of it (for KV: positions
     *                                  {@code [0, length)} of an open sequence)
     */
    byte[] exportSlice(int stage, int shard, ContextSlice slice);

    /**
     * {@link #exportSlice}, written into {@code reuse} when that array has exactly the slice's encoded length (a caller
     * moving many slices of one size passes back an array it is done with), else into a new array; every byte of
     * the returned array is written. The default ignores {@code reuse}.
     *
     * @param reuse an array the caller no longer needs, or null
     * @throws IllegalArgumentException as {@link #exportSlice}
     */
    default byte[] exportSlice(int stage, int shard, ContextSlice slice, byte[] reuse) {
        return exportSlice(stage, shard, slice);
    }

    /**
     * {@link #exportSlice}'s bytes, byte for byte, written into a caller's buffer instead of an array: into
     * {@code reuse} from index 0 when its capacity suffices, else into a new buffer (direct when {@code reuse} is).
     * The returned buffer has position 0 and limit the slice's encoded length; its byte order is left as it was (the
     * bytes are little-endian whatever it says). A caller streaming many slices passes back a buffer it is done with,
     * e.g. a direct one a socket channel writes without another copy. The default copies {@link #exportSlice}'s
     * array; executors override it to write the floats straight from device storage into the buffer.
     *
     * @param reuse a buffer the caller no longer needs, or null
     * @throws IllegalArgumentException as {@link #exportSlice}
     */
    default ByteBuffer exportSlice(int stage, int shard, ContextSlice slice, ByteBuffer reuse) {
        byte[] bytes = exportSlice(stage, shard, slice);
        ByteBuffer out = reuse != null && reuse.capacity() >= bytes.length ? reuse.clear()
                : reuse != null && reuse.isDirect() ? ByteBuffer.allocateDirect(bytes.length)
                : ByteBuffer.allocate(bytes.length);
        out.put(bytes).flip();
        return out;
    }

    /**
     * The length of {@link #exportSlice}'s encoding of {@code slice} when {@link #exportPart} can write it piece by
     * piece, or -1 when this pipeline exports the slice only whole (the default; e.g. Q8_0 weight blocks, whose
     * encoding's length depends on the values).
     *
     * @throws IllegalArgumentException as {@link #exportSlice}
     */
    default long exportLength(int stage, int shard, ContextSlice slice) {
        return -1;
    }

    /**
     * Writes bytes {@code [offset, offset + dst.remaining())} of {@link #exportSlice}'s encoding of {@code slice} into
     * {@code dst} (its position advances to its limit), straight from the position's storage: a slice leaves in
     * cache-sized pieces, each written and sent while it is hot, with no copy of the whole slice anywhere. Any offsets
     * (aligned to floats or not); the pieces of one slice equal its whole export byte for byte.
     *
     * @throws IllegalArgumentException      as {@link #exportSlice}, or if the range runs outside the encoding
     * @throws UnsupportedOperationException if {@link #exportLength} is -1 for the slice (the default)
     */
    default void exportPart(int stage, int shard, ContextSlice slice, long offset, ByteBuffer dst) {
        throw new UnsupportedOperationException("this pipeline exports slices only whole");
    }

    /**
     * Starts importing {@code slice} piece by piece ({@link SliceImport}), its encoding being {@code length} bytes long:
     * checks that position (stage, shard) owns the slice and allocates its missing storage now. A KV slice goes into
     * its open sequence's cache and extends the sequence's filled length only when the import finishes. Returns null
     * (nothing changed) when this pipeline imports the slice only whole: the default, and for slices whose
     * all-or-nothing import needs the whole encoding first (a weight slice the position already holds, weights it
     * rounds to fp16 or Q8_0, an encoding other than fp32); the caller then collects the bytes and calls
     * {@link #importSlice(int, int, ByteBuffer)}.
     *
     * @throws IllegalArgumentException as {@link #importSlice(int, int, byte[])}
     * @throws DeviceMemoryException    if the device cannot hold the slice (nothing changed)
     */
    default SliceImport beginImport(int stage, int shard, ContextSlice slice, long length) {
        return null;
    }

    /**
     * {@link #importSlice(int, int, byte[])} of the bytes from {@code bytes}' position to its limit (exactly one
     * slice's SliceFormat encoding), with the same checks, refusals and all-or-nothing result. Leaves the buffer's
     * position, limit and order as they were and keeps no reference to it. The default copies the bytes into an array;
     * executors override it to write the floats straight from the buffer into device storage.
     *
     * @return the slice that was imported
     * @throws IllegalArgumentException as {@link #importSlice(int, int, byte[])}
     * @throws DeviceMemoryException    as {@link #importSlice(int, int, byte[])}
     */
    default ContextSlice importSlice(int stage, int shard, ByteBuffer bytes) {
        byte[] copy = new byte[bytes.remaining()];
        bytes.duplicate().get(copy);
        return importSlice(stage, shard, copy);
    }

    /**
     * Writes a slice exported by any pipeline (any layout, any executor) into position (stage, shard),
     * allocating its storage from the device on first use. KV slices need the sequence open here. Keeps no reference
     * to {@code bytes}: the caller may reuse the array once this returns.
     *
     * @return the slice that was imported
     * @throws IllegalArgumentException if the bytes are malformed, for another model, or not inside what
     *                                  the position owns; nothing changes then
     * @throws DeviceMemoryException    if the device cannot hold the storage; nothing changes then
     */
    ContextSlice importSlice(int stage, int shard, byte[] bytes);

    /**
     * Stages a slice that position (stage, shard) holds for a later {@link #importStaged} into any pipeline (the
     * first half of a migration move). The staged slice does not depend on this position or pipeline staying alive:
     * the caller may release the slice here or close this pipeline before importing. The default exports the bytes
     * into the caller's memory ({@link StagedSlice#held}); a pipeline whose positions live in other processes keeps
     * them in the process that holds the position, so they can move from there to the target directly.
     *
     * @throws IllegalArgumentException as {@link #exportSlice}
     * @throws IllegalStateException    if the source cannot stage more bytes now (a bounded staging area is full)
     */
    default StagedSlice stageSlice(int stage, int shard, ContextSlice slice) {
        return StagedSlice.held(slice, exportSlice(stage, shard, slice));
    }

    /**
     * Imports a {@link #stageSlice staged} slice into position (stage, shard), as {@link #importSlice} does with its
     * bytes. It does not release the staged slice (the caller does, imported or not). The default imports
     * {@link StagedSlice#data()}.
     *
     * @return the slice that was imported
     * @throws IllegalArgumentException as {@link #importSlice}
     * @throws DeviceMemoryException    as {@link #importSlice}
     * @throws DeviceLostException      if the process holding the staged bytes is gone (the caller reads the slice
     *                                  from elsewhere, or recomputes it)
     * @throws IllegalStateException    if the staged slice was released
     */
    default ContextSlice importStaged(int stage, int shard, StagedSlice staged) {
        return importSlice(stage, shard, staged.data());
    }

    /**
     * Frees the storage of one weight unit of position (stage, shard) — the sender's side of a move in the
     * memory-optimised migration plan (SpotServe §3.4). {@code slice} must be one of
     * {@code layout().weightSlices(stage, shard)} exactly; the position then lacks it until re-imported.
     *
     * @throws IllegalArgumentException if the slice is not such a unit
     */
    void releaseSlice(int stage, int shard, ContextSlice slice);

    /**
     * Reserves KV cache for {@code capacity} positions of a new sequence on every position's device.
     *
     * @throws IllegalArgumentException if the id is already open or the capacity is outside [1, seq_len]
     * @throws DeviceMemoryException    if a device is full; no device keeps a partial reservation then
     */
    void openSequence(long sequence, int capacity);

    /** Frees a sequence's KV cache everywhere. Unknown ids are ignored. */
    void closeSequence(long sequence);

    /** Ids of the open sequences. */
    Set<Long> sequences();

    /** Positions of the sequence whose KV cache is filled (computed or imported): the next position to run. */
    int length(long sequence);

    /**
     * One forward step over {@code count} entries: entry i feeds {@code tokens[i]} at {@code positions[i]} of
     * sequence {@code sequences[i]}. A sequence may appear several times with consecutive positions (a prompt
     * block), so prefill and decode mix in one call. Each entry's position must be at most the sequence's
     * filled length at that point (no gaps). When {@code logits[i]} is non-null it receives the vocab-size
     * logits of that entry; null entries skip the classifier.
     *
     * @throws IllegalArgumentException on unknown sequences, bad tokens, positions, or count &gt; maxBatch;
     *                                  nothing is computed then
     * @throws IllegalStateException    if some position lacks weights
     */
    void forward(long[] sequences, int[] tokens, int[] positions, int count, float[][] logits);

    /**
     * The stages whose positions this pipeline hosts: every stage for a pipeline from
     * {@link Executor#createPipeline}, a sub-range for one from {@link Executor#createStages}.
     */
    default IndexRange hostedStages() {
        return new IndexRange(0, layout().stages());
    }

    /**
     * One forward step through one hosted stage only, with the same entries and checks as {@link #forward}: stage 0
     * embeds {@code tokens}; a later stage reads its input residual stream from {@code hidden} ({@code count × dim}
     * floats, entry-major). A stage before the last writes its output residual stream back into {@code hidden}; the
     * last stage fills the non-null {@code logits[i]}. Run the stages in order for each step; a sequence's filled
     * length advances with each stage step.
     *
     * @throws IllegalArgumentException      as {@link #forward}, or if the stage is not hosted or {@code hidden} is
     *                                       shorter than {@code count × dim}, or if this pipeline hosts only some of
     *                                       the stage's shards (it needs the overload with a {@link TensorReducer});
     *                                       nothing is computed then
     * @throws IllegalStateException         if a position of the stage lacks weights
     * @throws UnsupportedOperationException if this pipeline cannot run stages separately (the default)
     */
    default void forwardStage(int stage, long[] sequences, int[] tokens, int[] positions, int count, float[] hidden,
                              float[][] logits) {
        throw new UnsupportedOperationException(this + " cannot run stages separately");
    }

    /**
     * The tensor shards whose positions this pipeline hosts in each of its stages: all M, or a sub-range for a
     * tensor group split over several pipelines ({@link Executor#createShardGroup}).
     */
    default IndexRange hostedShards() {
        return new IndexRange(0, layout().shards());
    }

    /**
     * {@link #forwardStage(int, long[], int[], int[], int, float[], float[][])} for a pipeline hosting only some of the
     * stage's shards: at every reduce point it hands its shards' partial outputs to {@code reducer} and adds the sum
     * it returns (over all M shards, see {@link TensorReducer}). Every group of the stage runs the same step with the
     * same arguments, concurrently; each ends it with the same residual stream, written to {@code hidden} before the
     * last stage. On the last stage each group fills only its shards' vocabulary columns of the non-null
     * {@code logits[i]} ({@link ShardLayout#vocab}); the caller gathers the columns of all groups. A pipeline hosting
     * all M shards reduces in-process and never calls the reducer (it may be null then).
     *
     * <p>If the step fails (a refused argument, a reducer that throws or returns too few floats), no sequence's
     * filled length advances; the KV rows it wrote at the step's positions are overwritten when the step is run
     * again.
     *
     * @throws IllegalArgumentException      as the other {@code forwardStage}, if the reducer is null while the
     *                                       pipeline hosts a strict subset of the shards, or if it returns null or
     *                                       fewer than {@code count × dim} floats
     * @throws IllegalStateException         if a hosted position of the stage lacks weights
     * @throws UnsupportedOperationException if this pipeline cannot run a split tensor group (the default, unless it
     *                                       hosts all M shards)
     */
    default void forwardStage(int stage, long[] sequences, int[] tokens, int[] positions, int count, float[] hidden,
                              float[][] logits, TensorReducer reducer) {
        if (hostedShards().length() != layout().shards()) {
            throw new UnsupportedOperationException(this + " cannot run a split tensor group");
        }
        forwardStage(stage, sequences, tokens, positions, count, hidden, logits);
    }

    /** Batched decode: one new token per sequence; returns fresh logits arrays. */
    default float[][] decode(long[] sequences, int[] tokens, int[] positions) {
        float[][] out = new float[sequences.length][config().vocabSize()];
        forward(sequences, tokens, positions, sequences.length, out);
        return out;
    }

    /**
     * Runs a prompt block of {@code tokens} at positions {@code start, start+1, ...} of one sequence (in chunks
     * of at most {@link #maxBatch()}) and returns the logits after the last token.
     */
    default float[] prefill(long sequence, int[] tokens, int start) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("prefill needs at least one token, got none");
        }
        float[] last = new float[config().vocabSize()];
        int chunk = maxBatch();
        long[] seqs = new long[chunk];
        int[] toks = new int[chunk];
        int[] pos = new int[chunk];
        float[][] out = new float[chunk][];
        for (int done = 0; done < tokens.length; done += chunk) {
            int n = Math.min(chunk, tokens.length - done);
            Arrays.fill(out, null);
            for (int i = 0; i < n; i++) {
                seqs[i] = sequence;
                toks[i] = tokens[done + i];
                pos[i] = start + done + i;
            }
            if (done + n == tokens.length) {
                out[n - 1] = last;
            }
            forward(seqs, toks, pos, n, out);
        }
        return last;
    }

    /** Frees every weight and KV slice this pipeline holds on its devices. */
    @Override
    void close();
}
