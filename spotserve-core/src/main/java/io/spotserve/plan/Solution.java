package io.spotserve.plan;

/**
 * What {@link KuhnMunkres} solved internally, kept so that tests can check an optimality certificate on the
 * real solver: the flat cost matrix it minimised ({@code n <= m}, negated for maximisation, transposed when
 * the input had more rows than columns) and the dual potentials it ended with.
 *
 * @param assignment  the public result, in the caller's orientation and units
 * @param costs       row-major n×m cost matrix the solver minimised
 * @param n           rows of {@code costs} (the shorter side)
 * @param m           columns of {@code costs}
 * @param transposed  whether row i of {@code costs} is column i of the caller's matrix
 * @param columnOfRow for each row of {@code costs}, its column
 * @param u           row potentials
 * @param v           column potentials (≤ 0, and 0 on unmatched columns)
 */
record Solution(Assignment assignment, double[] costs, int n, int m, boolean transposed, int[] columnOfRow,
                double[] u, double[] v) {
}
