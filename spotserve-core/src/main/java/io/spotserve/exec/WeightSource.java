package io.spotserve.exec;

import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelWeights;
import java.util.Objects;

/**
 * Where weights come from when no surviving device holds them: the cold start of a pipeline and the fallback of a
 * context migration (SpotServe §3.3 reloads only what no replica keeps). A checkpoint file is the usual source
 * ({@link #of(LlamaCheckpoint)}); an executor that holds no floats (a timing-only executor for simulation) supplies
 * its own, so the engine can serve a model that exists only as a shape.
 */
public interface WeightSource {
    /** The model shape every slice belongs to. */
    LlamaConfig config();

    /**
     * Weight slice {@code slice} (not {@link ContextSlice.KvCache}) encoded for {@link Pipeline#importSlice} of the
     * pipelines this source feeds.
     *
     * @throws IllegalArgumentException if the slice does not fit the model or is a KV slice
     */
    byte[] encode(ContextSlice slice);

    /**
     * Reads slices out of {@code checkpoint}, in {@link SliceFormat} (importable by every executor; version 2, Q8_0
     * blocks, for a Q8_0 file).
     */
    static WeightSource of(LlamaCheckpoint checkpoint) {
        return of((ModelWeights) checkpoint);
    }

    /** Reads slices out of model weights in any format (llama2.c, GGUF, Hugging Face), in {@link SliceFormat}. */
    static WeightSource of(ModelWeights checkpoint) {
        Objects.requireNonNull(checkpoint, "checkpoint");
        return new CheckpointWeights(checkpoint);
    }

    /** The checkpoint-backed source; {@link Pipeline#loadWeights} uses its checkpoint directly on a cold start. */
    record CheckpointWeights(ModelWeights checkpoint) implements WeightSource {
        public CheckpointWeights {
            Objects.requireNonNull(checkpoint, "checkpoint");
        }

        @Override
        public LlamaConfig config() {
            return checkpoint.config();
        }

        @Override
        public byte[] encode(ContextSlice slice) {
            return SliceFormat.encodeWeights(checkpoint, slice); // a Q8_0 file's blocks travel as blocks
        }
    }
}
