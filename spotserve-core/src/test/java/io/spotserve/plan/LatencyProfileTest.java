package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class LatencyProfileTest {

    @ParameterizedTest
    @ValueSource(strings = {"megatron_345M_profile", "megatron_6.7B_profile", "megatron_h2048_profile",
            "megatron_h2560_profile", "megatron_h6144_profile", "megatron_h7168_profile"})
    void realProfilesRoundTripThroughJson(String name, @TempDir Path dir) {
        LatencyProfile p = Profiles.load(name);
        assertEquals(name, p.name());
        assertEquals(512, p.promptTokens());
        assertEquals(p, LatencyProfile.parse(p.toJson()));
        Path out = dir.resolve("copy.json");
        p.write(out);
        assertEquals(p, LatencyProfile.read(out));
    }

    @Test
    void readsTheFieldsOfTheGpt20bProfile() {
        LatencyProfile p = Profiles.load("megatron_h6144_profile");
        assertEquals(44, p.layerNum());
        assertEquals(48, p.paddedLayerNum());
        assertEquals(1.1, p.finalFixFactor());
        assertEquals(7.0, p.ppInitCommMs());
        assertEquals(0.1, p.ppIncrCommMs());
        assertEquals(6144, p.hiddenSize());
        assertEquals(8, p.maxTensorParallel());
        assertEquals(1.079, p.embedMs().get(3));
        assertEquals(new LatencyProfile.LayerTimes(37.562, 1.968), p.times(4, 1));
        assertEquals(new LatencyProfile.LayerTimes(165.775, 2.149), p.times(8, 8));
        assertEquals(java.util.List.of(1, 2, 4, 8, 16), java.util.List.copyOf(p.layerTimes().keySet()));
    }

    @Test
    void missingMaxTpDefaultsToTheLargestProfiledDegree() {
        // megatron_h2048 has no max_tp field and tables up to tp-16
        assertEquals(16, Profiles.load("megatron_h2048_profile").maxTensorParallel());
        assertEquals(8, Profiles.load("megatron_h7168_profile").maxTensorParallel());
    }

    @Test
    void missingCellIsReportedWithWhatExists() {
        LatencyProfile p = Profiles.load("megatron_h7168_profile");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.times(16, 1));
        assertTrue(e.getMessage().contains("tp-16") && e.getMessage().contains("[1, 2, 4, 8]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> p.times(2, 16));
        assertTrue(e.getMessage().contains("bsz-16"), e.getMessage());
    }

    @Test
    void badFilesAreRejectedWithTheFieldNamed() throws Exception {
        String good = Files.readString(io.spotserve.testing.SharedData.file("profiles/T4-4x/megatron_6.7B_profile.json"));
        assertMessage(mutate(good, o -> o.remove("layer_num")), "layer_num");
        assertMessage(mutate(good, o -> o.addProperty("padded_layer_num", 30)), "padded_layer_num");
        assertMessage(mutate(good, o -> o.add("tp-3", o.get("tp-2"))), "tp-3");
        assertMessage(mutate(good, o -> o.getAsJsonObject("tp-2").getAsJsonObject("bsz-4").addProperty("incr", -1)),
                "tp-2/bsz-4");
        assertMessage(mutate(good, o -> o.getAsJsonObject("tp-1").getAsJsonObject("bsz-1").addProperty("init", "x")),
                "init");
        assertMessage(mutate(good, o -> o.add("embed", new JsonObject())), "embed");
        assertMessage(mutate(good, o -> o.add("name", new JsonObject())), "'name' must be a string");
        assertMessage("[1, 2]", "JSON object");
        assertMessage("{not json", "not valid JSON");
    }

    private static String mutate(String json, java.util.function.Consumer<JsonObject> change) {
        JsonObject o = JsonParser.parseString(json).getAsJsonObject();
        change.accept(o);
        return o.toString();
    }

    private static void assertMessage(String json, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LatencyProfile.parse(json));
        assertTrue(e.getMessage().contains(expected), "message '" + e.getMessage() + "' should name " + expected);
    }
}
