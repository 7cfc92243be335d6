package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.HalfFloats;
import io.spotserve.model.LlamaConfig;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Version 2 of the slice format: chunks of 32 floats that are exactly Q8_0 values travel as 34-byte blocks, the rest
 * as floats; decoding gives back the exact floats (bit for bit) whatever the mix, and malformed payloads are refused.
 */
class SliceFormatQ8Test {
    private static final LlamaConfig C = new LlamaConfig(64, 96, 2, 8, 4, 512, 128, true);

    /** 32 values d·q with an fp16 d and q in [-127, 127], written independently of the codec. */
    private static void q8Chunk(Random r, float[] a, int off) {
        float d = HalfFloats.round((float) (0.001 + r.nextDouble() * 0.01));
        for (int j = 0; j < 32; j++) {
            a[off + j] = d * (r.nextInt(255) - 127);
        }
        a[off + r.nextInt(32)] = d * 127; // the reference quantizer's scale is amax / 127
    }

    private static int[] bits(float[] a) {
        int[] b = new int[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = Float.floatToRawIntBits(a[i]);
        }
        return b;
    }

    @Test
    void mixedPayloadsRoundTripBitForBitAndQ8ChunksShrink() {
        Random r = new Random(11);
        ContextSlice layer = new ContextSlice.LayerWeights(1, IndexRange.of(0, 8), IndexRange.of(0, 96));
        int n = Math.toIntExact(layer.floats(C));
        float[] q8 = new float[n];
        for (int o = 0; o + 32 <= n; o += 32) {
            q8Chunk(r, q8, o);
        }
        byte[] small = SliceFormat.encodeQ8(C, layer, q8);
        byte[] plain = SliceFormat.encode(C, layer, q8);
        assertArrayEquals(bits(q8), bits(SliceFormat.decode(C, small).data()));
        int chunks = n / 32;
        assertEquals(SliceFormat.HEADER_BYTES + (chunks + 7) / 8 + chunks * 34 + 4 * (n % 32), small.length);
        assertTrue(small.length < plain.length * 0.27, small.length + " vs " + plain.length);

        // floats that are not Q8_0 values stay floats, exactly: gaussians, -0.0, NaN, infinities, subnormals
        float[] mixed = q8.clone();
        for (int i = 0; i < 64; i++) {
            mixed[i] = (float) r.nextGaussian();
        }
        mixed[100] = -0.0f;
        mixed[200] = Float.NaN;
        mixed[300] = Float.NEGATIVE_INFINITY;
        mixed[400] = Float.MIN_VALUE;
        byte[] m = SliceFormat.encodeQ8(C, layer, mixed);
        assertArrayEquals(bits(mixed), bits(SliceFormat.decode(C, m).data()));
        assertEquals(small.length + 6 * (128 - 34), m.length, "six chunks travel as floats");
        assertEquals(layer, SliceFormat.peek(C, m));

        // a slice whose length is not a multiple of 32: the tail travels as floats
        ContextSlice kv = new ContextSlice.KvCache(3, 0, IndexRange.of(0, 1), 3); // 2 × 3 × 8 = 48 floats
        float[] tail = new float[48];
        q8Chunk(r, tail, 0);
        Arrays.fill(tail, 32, 48, 0.25f);
        byte[] t = SliceFormat.encodeQ8(C, kv, tail);
        assertEquals(SliceFormat.HEADER_BYTES + 1 + 34 + 16 * 4, t.length);
        assertArrayEquals(bits(tail), bits(SliceFormat.decode(C, t).data()));
    }

    @Test
    void malformedVersion2PayloadsAreRefused() {
        Random r = new Random(12);
        ContextSlice norm = new ContextSlice.FinalNorm(); // 64 floats: two chunks
        float[] v = new float[64];
        q8Chunk(r, v, 0);
        q8Chunk(r, v, 32);
        byte[] ok = SliceFormat.encodeQ8(C, norm, v);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SliceFormat.decode(C, Arrays.copyOf(ok, ok.length - 1)));
        assertTrue(e.getMessage().contains("version 2"), e.getMessage());
        byte[] flipped = ok.clone();
        flipped[SliceFormat.HEADER_BYTES] ^= 1; // the bitmap now claims chunk 0 is 128 bytes of floats
        e = assertThrows(IllegalArgumentException.class, () -> SliceFormat.decode(C, flipped));
        assertTrue(e.getMessage().contains("declares 64 floats"), e.getMessage());
        byte[] cut = Arrays.copyOf(ok, SliceFormat.HEADER_BYTES);
        e = assertThrows(IllegalArgumentException.class, () -> SliceFormat.decode(C, cut));
        assertTrue(e.getMessage().contains("bitmap past the end"), e.getMessage());
        byte[] v3 = ok.clone();
        v3[4] = 3;
        e = assertThrows(IllegalArgumentException.class, () -> SliceFormat.decode(C, v3));
        assertTrue(e.getMessage().contains("version 3, expected 1 or 2"), e.getMessage());
    }
}
