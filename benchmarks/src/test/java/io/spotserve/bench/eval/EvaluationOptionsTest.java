package io.spotserve.bench.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class EvaluationOptionsTest {
    @Test
    void theEngineSystemsJoinTheRobustnessRunOnlyWhenAsked() {
        assertEquals(0, Evaluation.parse(new String[] {"--robustness"}).robustnessEngineSeeds());
        assertEquals(10, Evaluation.parse(new String[] {"--robustness", "--robustness-engine"}).robustnessEngineSeeds());
        assertEquals(3, Evaluation.parse(new String[] {"--robustness-engine", "3", "--robustness", "5"})
                .robustnessEngineSeeds());
        assertEquals(5, Evaluation.parse(new String[] {"--robustness", "5", "--robustness-engine", "8"})
                .robustnessEngineSeeds(), "capped at the robustness seeds");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Evaluation.parse(new String[] {"--robustness-engine"}));
        assertTrue(e.getMessage().contains("give --robustness too"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Evaluation.parse(new String[] {"--robustness", "--robustness-engine", "0"}));
        assertTrue(e.getMessage().contains(">= 1 seed"), e.getMessage());
    }
}
