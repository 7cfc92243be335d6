package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Naming a weight precision: the known names in any case, a clear error for anything else; bytes per weight. */
class WeightPrecisionTest {
    @Test
    void knownNamesParseInAnyCase() {
        assertEquals(WeightPrecision.FP16, WeightPrecision.parse("fp16"));
        assertEquals(WeightPrecision.FP32, WeightPrecision.parse(" FP32 "));
        assertEquals(2, WeightPrecision.FP16.bytes());
        assertEquals(WeightPrecision.FP16, new ExecutorOptions(1, false).withWeights(WeightPrecision.FP16).weights());
        assertEquals(WeightPrecision.FP32, new ExecutorOptions(1, false).weights());
        assertEquals(WeightPrecision.Q8_0, WeightPrecision.parse("q8_0"));
        assertEquals(WeightPrecision.Q8_0, WeightPrecision.parse("Q8"));
        assertEquals(1.0625, WeightPrecision.Q8_0.bytesPerWeight());
        assertEquals(2, WeightPrecision.Q8_0.bytes()); // rounded up for whole-byte callers
        assertEquals(4.0, WeightPrecision.FP32.bytesPerWeight());
    }

    @Test
    void unknownNamesAreRejectedWithWhatIsExpected() {
        for (String bad : new String[] {"fp8", "", null}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> WeightPrecision.parse(bad));
            assertTrue(e.getMessage().contains("'" + bad + "' unknown; expected fp32, fp16 or q8_0"), e.getMessage());
        }
        assertThrows(NullPointerException.class, () -> new ExecutorOptions(1, false, null));
    }
}
