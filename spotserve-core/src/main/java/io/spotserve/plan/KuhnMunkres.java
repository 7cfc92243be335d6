package io.spotserve.plan;

/**
 * Optimal assignment on rectangular matrices (Kuhn-Munkres / Hungarian method), written for the device
 * mapper of SpotServe §3.3: devices are rows, new parallel positions are columns, and the weight of a pair is
 * the context (weights + KV cache) the device can keep if it takes that position.
 *
 * <p>Shortest-augmenting-path formulation with row and column potentials: one augmentation per row of the
 * shorter side, each O(n·m), so O(n²·m) with n ≤ m. Deterministic: ties resolve to the lowest column index
 * found first.
 */
public final class KuhnMunkres {
    private KuhnMunkres() {
    }

    /**
     * Assignment of maximum total weight; every row (or every column, whichever side is shorter) is matched.
     *
     * @throws IllegalArgumentException for an empty or ragged matrix or a NaN/infinite entry
     */
    public static Assignment maximize(double[][] weights) {
        return solve(weights, true);
    }

    /**
     * Assignment of minimum total cost; every row (or every column, whichever side is shorter) is matched.
     *
     * @throws IllegalArgumentException for an empty or ragged matrix or a NaN/infinite entry
     */
    public static Assignment minimize(double[][] costs) {
        return solve(costs, false);
    }

    private static Assignment solve(double[][] matrix, boolean maximize) {
        int rows = validate(matrix);
        int cols = matrix[0].length;
        boolean transpose = rows > cols;
        int n = transpose ? cols : rows;
        int m = transpose ? rows : cols;
        // a[i][j], 0-based, n <= m, minimisation
        double[] a = new double[n * m];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                double v = maximize ? -matrix[r][c] : matrix[r][c];
                if (transpose) {
                    a[c * m + r] = v;
                } else {
                    a[r * m + c] = v;
                }
            }
        }
        int[] rowOfCol = Hungarian.solve(a, n, m);
        int[] rowToColumn = new int[rows];
        int[] columnToRow = new int[cols];
        java.util.Arrays.fill(rowToColumn, -1);
        java.util.Arrays.fill(columnToRow, -1);
        double total = 0;
        for (int j = 0; j < m; j++) {
            int i = rowOfCol[j];
            if (i < 0) {
                continue;
            }
            int r = transpose ? j : i;
            int c = transpose ? i : j;
            rowToColumn[r] = c;
            columnToRow[c] = r;
            total += matrix[r][c];
        }
        return new Assignment(rowToColumn, columnToRow, total);
    }

    private static int validate(double[][] matrix) {
        if (matrix == null) {
            throw new IllegalArgumentException("matrix is null");
        }
        if (matrix.length == 0) {
            throw new IllegalArgumentException("matrix has no rows; expected at least one row and one column");
        }
        if (matrix[0] == null || matrix[0].length == 0) {
            throw new IllegalArgumentException("row 0 has no columns; expected at least one column");
        }
        int cols = matrix[0].length;
        for (int r = 0; r < matrix.length; r++) {
            double[] row = matrix[r];
            if (row == null) {
                throw new IllegalArgumentException("row " + r + " is null");
            }
            if (row.length != cols) {
                throw new IllegalArgumentException(
                        "row " + r + " has " + row.length + " columns, expected " + cols + " like row 0 (ragged matrix)");
            }
            for (int c = 0; c < cols; c++) {
                if (!Double.isFinite(row[c])) {
                    throw new IllegalArgumentException(
                            "entry at row " + r + ", column " + c + " is " + row[c] + "; expected a finite number");
                }
            }
        }
        return matrix.length;
    }

    /** The numeric core on a flat n×m cost matrix with n ≤ m. */
    static final class Hungarian {
        private Hungarian() {
        }

        /** Returns, for each column, its matched row or -1. */
        static int[] solve(double[] a, int n, int m) {
            double[] u = new double[n + 1];
            double[] v = new double[m + 1];
            int[] p = new int[m + 1];   // p[j] = 1-based row matched to column j, 0 = none
            int[] way = new int[m + 1];
            double[] minv = new double[m + 1];
            boolean[] used = new boolean[m + 1];
            for (int i = 1; i <= n; i++) {
                p[0] = i;
                int j0 = 0;
                java.util.Arrays.fill(minv, Double.POSITIVE_INFINITY);
                java.util.Arrays.fill(used, false);
                do {
                    used[j0] = true;
                    int i0 = p[j0];
                    double delta = Double.POSITIVE_INFINITY;
                    int j1 = -1;
                    int base = (i0 - 1) * m - 1;
                    double ui0 = u[i0];
                    for (int j = 1; j <= m; j++) {
                        if (!used[j]) {
                            double cur = a[base + j] - ui0 - v[j];
                            if (cur < minv[j]) {
                                minv[j] = cur;
                                way[j] = j0;
                            }
                            if (minv[j] < delta) {
                                delta = minv[j];
                                j1 = j;
                            }
                        }
                    }
                    for (int j = 0; j <= m; j++) {
                        if (used[j]) {
                            u[p[j]] += delta;
                            v[j] -= delta;
                        } else {
                            minv[j] -= delta;
                        }
                    }
                    j0 = j1;
                } while (p[j0] != 0);
                do {
                    int j1 = way[j0];
                    p[j0] = p[j1];
                    j0 = j1;
                } while (j0 != 0);
            }
            int[] rowOfCol = new int[m];
            for (int j = 1; j <= m; j++) {
                rowOfCol[j - 1] = p[j] - 1;
            }
            return rowOfCol;
        }
    }
}
