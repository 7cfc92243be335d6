package io.spotserve.plan;

/**
 * Optimal assignment on rectangular matrices (Kuhn-Munkres / Hungarian method), written for the device
 * mapper of SpotServe §3.3: devices are rows, new parallel positions are columns, and the weight of a pair is
 * the context (weights + KV cache) the device can keep if it takes that position. The hierarchical mapper
 * calls it many times on small matrices and once on the instance × slot matrix, so both ends matter.
 *
 * <p><b>Contract.</b> With {@code n} rows and {@code m} columns exactly {@code min(n, m)} pairs are matched
 * and their total is optimal. Either orientation is accepted (a tall matrix is solved transposed). Entries
 * must be finite with {@code |x| <= }{@link #MAX_ABS_ENTRY}; {@code -0.0} is treated as {@code 0.0}.
 *
 * <p><b>Complexity.</b> O(k²·l) time with k = min(n, m), l = max(n, m) (one shortest augmenting path of cost
 * O(k·l) per row at most), O(n·m) extra memory for a flat copy of the matrix.
 *
 * <p><b>Ties and determinism.</b> The result is a pure function of the matrix: no randomness, hashing,
 * threads or clock, and Java 17 floating point is strict, so every JVM returns the same assignment. When
 * several assignments are optimal, the one returned is fixed by these rules: rows are processed in index
 * order; a row's first choice among equally cheap columns is the lowest-index free one (so a matrix of equal
 * entries yields the identity matching); minimum searches keep the first (lowest-index) minimum they meet.
 *
 * <p><b>Accepted range.</b> All dual potentials stay within a few times the spread of the entries (see the
 * implementation notes), so with {@code |x| <= 1e300} no intermediate value can overflow. Results are optimal
 * up to floating-point rounding of the order of {@code ulp(max|x|)·min(n, m)}; entries that differ by less
 * than that cannot be told apart.
 */
public final class KuhnMunkres {
    /*
     * Implementation notes.
     *
     * The numeric core works on a flat row-major copy with n <= m (transposed if needed) and minimises; for
     * maximize the copy holds 0.0 - w. It keeps column prices v (v_j <= 0, v_j == 0 while column j is free) and
     * the invariant "every assigned row i sits on a column minimising a_ij - v_j"; the row potential is then
     * u_i = a_{i,x(i)} - v_{x(i)}, and (u, v) is a feasible dual of
     *     min sum a_ij x_ij  s.t. each row matched once, each column at most once,
     * i.e. u_i + v_j <= a_ij, v_j <= 0, with equality on matched pairs and v_j = 0 on unmatched columns.
     * Phases, as in Jonker & Volgenant [2]:
     *   1. greedy: each row takes its cheapest column if that column is free (lowest free index among ties);
     *      the same pass keeps, per row, its K = clamp(m/4, 2, 16) cheapest columns and the (K+1)-th
     *      smallest cost as a threshold;
     *   2. augmenting row reduction, repeated passes over the free rows: a free row takes its best column and
     *      lowers that column's price down to the row's second-best reduced cost, evicting the previous owner,
     *      which is re-processed. Prices only fall, so a_ij - v_j >= a_ij: when the second best among the K
     *      candidates is below the threshold no other column can compete and the O(K) scan is exact; else the
     *      row is scanned in full. Capped at 12·k·l entry visits so the phase stays O(k l). On dense random
     *      matrices this phase alone usually assigns every row;
     *   3. for each still-free row, Dijkstra on reduced costs a_ij - u_i - v_j >= 0 to the nearest free column
     *      (shortest augmenting path, [1]); each step scans one row and picks the next column in the same
     *      pass; prices of the columns settled before the final distance mu are lowered by mu - d_j (a lazy
     *      form of the Hungarian potential update), then the path is flipped. O(k l) per row.
     * Tie-heavy structured matrices (a_ij = i + j, i * j) are the slow case: every augmentation of phase 3
     * settles about half the columns, the O(k^2 l) worst case (n = 1024: seconds).
     * Range: while some column f is free (always the case before the last augmentation), for an assigned pair
     * (i, j) we have a_ij - v_j <= a_if - 0, so 0 <= -v_j <= spread R = max - min. The last augmentation moves
     * prices by at most its distance mu <= R, so |v| <= 2R and |u| <= max|a| + 2R; with |a| <= 1e300 every
     * intermediate value stays below 1e302, far from Double.MAX_VALUE (1.8e308).
     *
     * [1] H. W. Kuhn, The Hungarian method for the assignment problem, 1955; J. Munkres, 1957.
     * [2] R. Jonker, A. Volgenant, A shortest augmenting path algorithm for dense and sparse linear
     *     assignment problems, Computing 38, 1987.
     * [3] SpotServe (ASPLOS'24) §3.3, device mapping as maximum-weight bipartite matching.
     */

    /** Largest accepted absolute value of an entry; larger magnitudes are rejected (see class notes). */
    public static final double MAX_ABS_ENTRY = 1e300;

    private KuhnMunkres() {
    }

    /**
     * Assignment of maximum total weight; every row (or every column, whichever side is shorter) is matched.
     *
     * @throws IllegalArgumentException for a null, empty or ragged matrix, or a NaN, infinite or too large
     *                                  entry (the message names its row and column)
     */
    public static Assignment maximize(double[][] weights) {
        return solve(weights, true).assignment();
    }

    /**
     * Assignment of minimum total cost; every row (or every column, whichever side is shorter) is matched.
     *
     * @throws IllegalArgumentException for a null, empty or ragged matrix, or a NaN, infinite or too large
     *                                  entry (the message names its row and column)
     */
    public static Assignment minimize(double[][] costs) {
        return solve(costs, false).assignment();
    }

    /** Solves and keeps the solver's internal view (costs and dual potentials), for certificates. */
    static Solution solve(double[][] matrix, boolean maximize) {
        int rows = checkShape(matrix);
        int cols = matrix[0].length;
        boolean transposed = rows > cols;
        int n = transposed ? cols : rows;
        int m = transposed ? rows : cols;
        double[] a = new double[n * m];
        for (int r = 0; r < rows; r++) {
            double[] row = matrix[r];
            if (row == null) {
                throw new IllegalArgumentException("row " + r + " is null; expected " + cols + " entries");
            }
            if (row.length != cols) {
                throw new IllegalArgumentException("row " + r + " has " + row.length + " columns, expected "
                        + cols + " like row 0 (ragged matrix)");
            }
            for (int c = 0; c < cols; c++) {
                double x = row[c];
                if (!(Math.abs(x) <= MAX_ABS_ENTRY)) { // also catches NaN
                    throw new IllegalArgumentException("entry at row " + r + ", column " + c + " is " + x
                            + "; expected a finite number with |x| <= " + MAX_ABS_ENTRY);
                }
                // 0.0 - x and x + 0.0 both turn -0.0 into +0.0
                a[transposed ? c * m + r : r * m + c] = maximize ? 0.0 - x : x + 0.0;
            }
        }
        int[] columnOfRow = new int[n];
        double[] u = new double[n];
        double[] v = new double[m];
        ShortestAugmentingPath.solve(a, n, m, columnOfRow, u, v);
        int[] rowToColumn = new int[rows];
        int[] columnToRow = new int[cols];
        java.util.Arrays.fill(rowToColumn, -1);
        java.util.Arrays.fill(columnToRow, -1);
        for (int i = 0; i < n; i++) {
            int j = columnOfRow[i];
            int r = transposed ? j : i;
            int c = transposed ? i : j;
            rowToColumn[r] = c;
            columnToRow[c] = r;
        }
        double total = 0.0;
        for (int r = 0; r < rows; r++) {
            if (rowToColumn[r] >= 0) {
                total += matrix[r][rowToColumn[r]];
            }
        }
        return new Solution(new Assignment(rowToColumn, columnToRow, total), a, n, m, transposed, columnOfRow, u, v);
    }

    private static int checkShape(double[][] matrix) {
        if (matrix == null) {
            throw new IllegalArgumentException("matrix is null; expected at least one row and one column");
        }
        if (matrix.length == 0) {
            throw new IllegalArgumentException("matrix has no rows; expected at least one row and one column");
        }
        if (matrix[0] == null || matrix[0].length == 0) {
            throw new IllegalArgumentException("row 0 " + (matrix[0] == null ? "is null" : "has no columns")
                    + "; expected at least one column");
        }
        long size = (long) matrix.length * matrix[0].length;
        if (size > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("matrix is " + matrix.length + " x " + matrix[0].length + " = "
                    + size + " entries; expected at most " + (Integer.MAX_VALUE - 16));
        }
        return matrix.length;
    }
}
