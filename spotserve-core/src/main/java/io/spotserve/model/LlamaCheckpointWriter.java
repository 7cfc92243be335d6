package io.spotserve.model;

import io.spotserve.model.LlamaCheckpoint.Tensor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import java.util.Objects;
import java.util.Random;

/**
 * Writes llama2.c ("version 0", legacy layout) checkpoints, the format {@link LlamaCheckpoint} reads.
 *
 * <p>Why: the only real model we have is the 260K-parameter stories model, yet sharding tests need other
 * shapes (more layers, no grouped-query attention) and benchmarks need paper-ish sizes (tens of millions of
 * parameters). Random weights with a fixed seed give reproducible models of any shape, in the exact file
 * format, so every executor (CPU, CUDA) loads them through the same path as a real checkpoint.
 */
public final class LlamaCheckpointWriter {
    /** Standard deviation of the random matrices: small enough that activations stay sane over many layers. */
    public static final double RANDOM_STD = 0.02;

    private LlamaCheckpointWriter() {
    }

    /**
     * Writes a checkpoint with reproducible random weights: matrices ~ N(0, {@value #RANDOM_STD}), RMSNorm
     * weights ~ 1 + N(0, 0.1); the legacy RoPE tables are filled like llama2.c's export does.
     *
     * @return the file written
     */
    public static Path writeRandom(Path file, LlamaConfig config, long seed) throws IOException {
        Objects.requireNonNull(config, "config");
        Random random = new Random(seed);
        long[] lengths = LlamaCheckpoint.tensorLengths(config);
        Map<Tensor, float[]> tensors = new EnumMap<>(Tensor.class);
        for (Tensor t : Tensor.values()) {
            long len = lengths[t.ordinal()];
            if (len == 0 || t == Tensor.FREQ_CIS) {
                continue;
            }
            float[] data = new float[Math.toIntExact(len)];
            boolean norm = t == Tensor.RMS_ATT || t == Tensor.RMS_FFN || t == Tensor.RMS_FINAL;
            for (int i = 0; i < data.length; i++) {
                data[i] = norm ? (float) (1.0 + 0.1 * random.nextGaussian())
                        : (float) (RANDOM_STD * random.nextGaussian());
            }
            tensors.put(t, data);
        }
        return write(file, config, tensors);
    }

    /**
     * Writes the given tensors (each the full tensor over all layers, row-major, file order) as a checkpoint.
     * {@link Tensor#FREQ_CIS} may be omitted (it is then computed); {@link Tensor#CLASSIFIER} must be present
     * exactly when {@code config.sharedClassifier()} is false.
     *
     * @throws IllegalArgumentException if a tensor is missing, unexpected, or has the wrong length; nothing
     *                                  is written then
     */
    public static Path write(Path file, LlamaConfig config, Map<Tensor, float[]> tensors) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(tensors, "tensors");
        long[] lengths = LlamaCheckpoint.tensorLengths(config);
        Map<Tensor, float[]> all = new EnumMap<>(Tensor.class);
        for (Tensor t : Tensor.values()) {
            long expected = lengths[t.ordinal()];
            float[] data = tensors.get(t);
            if (t == Tensor.FREQ_CIS && data == null) {
                data = legacyRopeTables(config);
            }
            if (expected == 0) {
                if (data != null) {
                    throw new IllegalArgumentException("tensor " + t + " given but not expected: the config "
                            + "shares the classifier with the token embedding");
                }
                continue;
            }
            if (data == null) {
                throw new IllegalArgumentException("tensor " + t + " missing; expected " + expected + " floats");
            }
            if (data.length != expected) {
                throw new IllegalArgumentException("tensor " + t + " has " + data.length + " floats, expected "
                        + expected + " for " + config);
            }
            all.put(t, data);
        }
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        try (OutputStream out = Files.newOutputStream(file)) {
            ByteBuffer header = ByteBuffer.allocate(LlamaCheckpoint.HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            header.putInt(config.dim()).putInt(config.hiddenDim()).putInt(config.layers()).putInt(config.heads())
                    .putInt(config.kvHeads())
                    .putInt(config.sharedClassifier() ? config.vocabSize() : -config.vocabSize())
                    .putInt(config.seqLen());
            out.write(header.array());
            ByteBuffer chunk = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
            for (float[] data : all.values()) { // EnumMap iterates in file order
                for (float v : data) {
                    if (!chunk.hasRemaining()) {
                        out.write(chunk.array(), 0, chunk.position());
                        chunk.clear();
                    }
                    chunk.putFloat(v);
                }
            }
            out.write(chunk.array(), 0, chunk.position());
        }
        return file;
    }

    /** The cos then sin tables [seqLen][headSize/2] that llama2.c's legacy export writes (readers skip them). */
    static float[] legacyRopeTables(LlamaConfig config) {
        int half = config.headSize() / 2;
        int seqLen = config.seqLen();
        float[] out = new float[2 * seqLen * half];
        for (int t = 0; t < seqLen; t++) {
            for (int i = 0; i < half; i++) {
                double freq = 1.0 / Math.pow(10000.0, (2.0 * i) / config.headSize());
                out[t * half + i] = (float) Math.cos(t * freq);
                out[seqLen * half + t * half + i] = (float) Math.sin(t * freq);
            }
        }
        return out;
    }
}
