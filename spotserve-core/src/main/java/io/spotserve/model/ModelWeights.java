package io.spotserve.model;

import io.spotserve.model.LlamaCheckpoint.Tensor;

/**
 * The weights of one LLaMA-architecture model, whatever file format holds them (a llama2.c checkpoint, a GGUF
 * file, a Hugging Face folder), read as floats in llama2.c's canonical layout: every matrix row-major
 * {@code [rows][cols]} as listed on {@link LlamaCheckpoint}, q and k rows in the interleaved rotary order
 * (pairs {@code (2i, 2i+1)} of a head rotate together, as in Meta's and llama.cpp's layout). A source that
 * stores fp16, bf16 or 8-bit blocks converts on read.
 *
 * <p>Executors copy the slices they own out of a source ({@code CheckpointSlices}, or row chunks straight into their
 * own layout: {@code PipelinePosition.load}); nothing reads a whole file onto the heap. The file formats read with
 * positional file reads rather than through their mappings, so a load leaves no file pages resident in the process.
 * Implementations are thread-safe for reads.
 */
public interface ModelWeights {
    /** The model's shape and settings. */
    LlamaConfig config();

    /** What this source is (a file name), for messages. */
    String description();

    /**
     * Copies {@code len} floats of {@code tensor} starting at element {@code offset} (counted row-major within one
     * layer for per-layer tensors, within the whole tensor otherwise) into {@code dst[dstOff..]}.
     * {@link Tensor#CLASSIFIER} reads the token embedding when the classifier is shared.
     *
     * @param layer the layer of a per-layer tensor; ignored (pass 0) for the others
     * @throws IndexOutOfBoundsException if the range lies outside the tensor
     * @throws IllegalArgumentException  for {@link Tensor#FREQ_CIS}, which no format but llama2.c's stores
     */
    void read(Tensor tensor, int layer, long offset, float[] dst, int dstOff, int len);

    /**
     * How {@code tensor} of {@code layer} is stored in the file ({@link TensorType#F32} unless the format says
     * otherwise), so an executor can keep a Q8_0 tensor's blocks as they are. Values read with {@link #read} are the
     * stored ones decoded to floats either way.
     */
    default TensorType storedType(Tensor tensor, int layer) {
        return TensorType.F32;
    }
}
