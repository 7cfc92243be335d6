package io.spotserve.plan;

import io.spotserve.testing.SharedData;

/** The artifact's real T4 profiles from ../shared/profiles/T4-4x, for tests. */
final class Profiles {
    private Profiles() {
    }

    static LatencyProfile load(String baseName) {
        return LatencyProfile.read(SharedData.file("profiles/T4-4x/" + baseName + ".json"));
    }

    static CostModel model(PaperModel m) {
        return CostModel.of(m, load(m.profileName()));
    }
}
