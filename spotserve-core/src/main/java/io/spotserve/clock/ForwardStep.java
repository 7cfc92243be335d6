package io.spotserve.clock;

/**
 * One forward step of one pipeline as the engine reports it to its {@link EngineClock}: the shape a step-time
 * model needs (a profiled cost model prices prompt and decode work of a P × M pipeline differently), so a
 * simulated clock can charge each pipeline its own time while the pipelines run side by side.
 *
 * @param stages          P of the pipeline
 * @param shards          M of the pipeline
 * @param promptSequences sequences that feed prompt (or recomputed) positions in this step
 * @param promptPositions prompt positions in this step, over all those sequences
 * @param decodeSequences sequences that decode one new token in this step
 */
public record ForwardStep(int stages, int shards, int promptSequences, int promptPositions, int decodeSequences) {
    public ForwardStep {
        if (stages < 1 || shards < 1) {
            throw new IllegalArgumentException("a step needs stages >= 1 and shards >= 1, was P=" + stages + ", M="
                    + shards);
        }
        if (promptSequences < 0 || promptPositions < promptSequences || decodeSequences < 0
                || (promptSequences == 0) != (promptPositions == 0) || promptPositions + decodeSequences == 0) {
            throw new IllegalArgumentException("a step needs promptPositions >= promptSequences >= 0 (both 0 or both"
                    + " positive), decodeSequences >= 0 and some work, was promptSequences=" + promptSequences
                    + ", promptPositions=" + promptPositions + ", decodeSequences=" + decodeSequences);
        }
    }

    /** Token positions the step carries. */
    public int positions() {
        return promptPositions + decodeSequences;
    }
}
