package io.spotserve.bench.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.spotserve.plan.PaperModel;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code Evaluation --setup artifact}: which setup runs, and the artifact setup's options. */
class ArtifactSetupOptionsTest {
    @Test
    void setupSelectsTheProfileAndIsRemovedFromTheArguments() {
        String[] args = {"--out", "x", "--setup", "artifact", "--models", "GPT-20B"};
        assertEquals("artifact", Evaluation.setup(args));
        assertArrayEquals(new String[] {"--out", "x", "--models", "GPT-20B"}, Evaluation.withoutSetup(args));
        assertEquals("main", Evaluation.setup(new String[] {"--setup", "main"}));
        assertEquals("main", Evaluation.setup(new String[] {"--out", "x"}));
        assertEquals("all", Evaluation.setup(new String[] {"--robustness", "--setup", "all"}));
        assertArrayEquals(new String[] {"--robustness"}, Evaluation.withoutSetup(new String[] {"--robustness", "--setup",
                "all"}));
        assertEquals(0, Evaluation.withoutSetup(new String[] {"--setup", "main"}).length);
        assertThrows(IllegalArgumentException.class, () -> Evaluation.setup(new String[] {"--setup", "paper"}));
        assertThrows(IllegalArgumentException.class, () -> Evaluation.setup(new String[] {"--setup"}));
    }

    @Test
    void optionsDefaultToTheWholeGridAtFourReloadSpeeds() {
        ArtifactSetup.Options o = ArtifactSetup.parse(new String[] {"--no-report"});
        assertEquals(List.of(PaperModel.values()), o.models());
        assertEquals(List.of("A_S", "B_S", "A_S+O", "B_S+O"), o.traces());
        assertArrayEquals(new double[] {0.5, 1, 2, 4}, o.reloadGbps());
        assertEquals(5, o.startupSeconds());
        assertFalse(o.report());
        ArtifactSetup.Options p = ArtifactSetup.parse(new String[] {"--reload-gbps", "3", "--traces", "B_S+O",
                "--startup", "0"});
        assertArrayEquals(new double[] {3}, p.reloadGbps());
        assertEquals(List.of("B_S+O"), p.traces());
        assertEquals(0, p.startupSeconds());
        assertThrows(IllegalArgumentException.class, () -> ArtifactSetup.parse(new String[] {"--traces", "MAF"}));
        assertThrows(IllegalArgumentException.class, () -> ArtifactSetup.parse(new String[] {"--reload-gbps", "0"}));
        assertThrows(IllegalArgumentException.class, () -> ArtifactSetup.parse(new String[] {"--startup", "-1"}));
        assertThrows(IllegalArgumentException.class, () -> ArtifactSetup.parse(new String[] {"--robustness"}));
        assertEquals("0.5", ArtifactSetup.gbps(0.5));
        assertEquals("2", ArtifactSetup.gbps(2));
    }
}
