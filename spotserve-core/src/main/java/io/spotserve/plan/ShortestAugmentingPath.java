package io.spotserve.plan;

import java.util.Arrays;

/**
 * The numeric core of {@link KuhnMunkres}: minimum-cost assignment of every row of a flat row-major n×m
 * matrix with n ≤ m, after Jonker and Volgenant (greedy start, augmenting row reduction, then shortest
 * augmenting paths with lazily updated column prices). See the implementation notes in {@link KuhnMunkres}.
 */
final class ShortestAugmentingPath {
    /** Cap on phase-2 work, in row scans per row; keeps the worst case at O(n·m) for that phase. */
    static final int ROW_REDUCTION_SCANS_PER_ROW = 12;

    private ShortestAugmentingPath() {
    }

    /**
     * Solves and writes the result into the given arrays.
     *
     * @param a           row-major costs, finite
     * @param n           rows, 1 ≤ n ≤ m
     * @param m           columns
     * @param columnOfRow out: the column of each row
     * @param u           out: row potentials, u_i = a[i][x_i] - v[x_i]
     * @param v           out: column potentials (prices), ≤ 0 and 0 on unmatched columns; must be all 0 on entry
     */
    static void solve(double[] a, int n, int m, int[] columnOfRow, double[] u, double[] v) {
        int[] x = columnOfRow;
        int[] y = new int[m];   // row of each column, -1 = free
        Arrays.fill(x, -1);
        Arrays.fill(y, -1);
        int[] free = new int[n];
        int numFree = greedy(a, n, m, x, y, free);
        if (numFree > 0 && m > 1) {
            // passes until the budget is spent; 12 row scans per row was the sweet spot on dense uniform
            // random matrices (n = 1024: about 20 rows left for phase 3, instead of 90 with JV's 2 passes)
            int budget = ROW_REDUCTION_SCANS_PER_ROW * n;
            while (numFree > 0 && budget > 0) {
                int[] counts = reduceRows(a, m, x, y, v, free, numFree, budget);
                numFree = counts[0];
                budget = counts[1];
            }
        }
        if (numFree > 0) {
            double[] d = new double[m];
            int[] cols = new int[m];
            int[] pred = new int[m];
            for (int k = 0; k < numFree; k++) {
                augment(a, m, free[k], x, y, v, d, cols, pred);
            }
        }
        for (int i = 0; i < n; i++) {
            u[i] = a[i * m + x[i]] - v[x[i]];
        }
    }

    /**
     * Phase 1, with all prices 0: each row takes the lowest-index free column among its cheapest ones, if
     * any. Returns the number of rows left free, listed in {@code free} in index order.
     */
    private static int greedy(double[] a, int n, int m, int[] x, int[] y, int[] free) {
        int numFree = 0;
        for (int i = 0; i < n; i++) {
            int base = i * m;
            double min = a[base];
            int pick = y[0] < 0 ? 0 : -1;
            for (int j = 1; j < m; j++) {
                double h = a[base + j];
                if (h <= min) {
                    if (h < min) {
                        min = h;
                        pick = y[j] < 0 ? j : -1;
                    } else if (pick < 0 && y[j] < 0) {
                        pick = j;
                    }
                }
            }
            if (pick >= 0) {
                x[i] = pick;
                y[pick] = i;
            } else {
                free[numFree++] = i;
            }
        }
        return numFree;
    }

    /**
     * Phase 2, one pass of augmenting row reduction over {@code free[0..numFree)}: a free row takes its best
     * column j1 (under current prices) and, if strictly better than its second best j2, lowers j1's price to
     * make the two equal and re-processes the row it evicted at once; on a tie it takes j2 instead when j1 is
     * owned. Each row scan spends one unit of {@code budget}; rows left when it runs out stay free for phase 3.
     * Returns {rows still free, budget left}; the free rows are compacted to the front of {@code free}.
     */
    private static int[] reduceRows(double[] a, int m, int[] x, int[] y, double[] v, int[] free, int numFree,
                                    int budget) {
        int k = 0;
        int stillFree = 0;
        while (k < numFree) {
            int i = free[k++];
            if (budget <= 0) {
                free[stillFree++] = i;
                continue;
            }
            budget--;
            int base = i * m;
            double u1 = a[base] - v[0];
            double u2 = Double.POSITIVE_INFINITY;
            int j1 = 0;
            int j2 = -1;
            for (int j = 1; j < m; j++) {
                double h = a[base + j] - v[j];
                if (h < u2) {
                    if (h >= u1) {
                        u2 = h;
                        j2 = j;
                    } else {
                        u2 = u1;
                        j2 = j1;
                        u1 = h;
                        j1 = j;
                    }
                }
            }
            int i0 = y[j1];
            boolean strict = u1 < u2;
            if (strict) {
                v[j1] -= u2 - u1;
            } else if (i0 >= 0) {
                j1 = j2;
                i0 = y[j2];
            }
            x[i] = j1;
            y[j1] = i;
            if (i0 >= 0) {
                x[i0] = -1;
                if (strict) {
                    free[--k] = i0;   // slot k held row i, already consumed; stillFree <= k
                } else {
                    free[stillFree++] = i0;
                }
            }
        }
        return new int[] {stillFree, budget};
    }

    /**
     * Phase 3: Dijkstra from free row {@code f} over reduced costs to the nearest free column, price update
     * of the settled columns, then the alternating path is flipped. Each step scans the row of the column
     * settled last and, in the same pass, finds the next column to settle, so a step costs one pass over the
     * unsettled columns. {@code cols} is a permutation of the columns: [0, open) unsettled, [open, m)
     * settled in reverse order. Among equally near columns a free one is preferred, then the first met.
     */
    private static void augment(double[] a, int m, int f, int[] x, int[] y, double[] v, double[] d, int[] cols,
                                int[] pred) {
        for (int j = 0; j < m; j++) {
            cols[j] = j;
            d[j] = Double.POSITIVE_INFINITY;
        }
        int open = m;
        int i = f;
        double u1 = 0;          // a[i][x_i] - v[x_i] - dist(x_i): subtracting it turns a row entry into a distance
        double mu;
        int end;
        while (true) {
            int base = i * m;
            double lowest = Double.POSITIVE_INFINITY;
            int at = -1;
            boolean lowestFree = false;
            for (int k = 0; k < open; k++) {
                int j = cols[k];
                double h = a[base + j] - v[j] - u1;
                double dj = d[j];
                if (h < dj) {
                    d[j] = h;
                    pred[j] = i;
                    dj = h;
                }
                if (dj <= lowest) {
                    if (dj < lowest) {
                        lowest = dj;
                        at = k;
                        lowestFree = y[j] < 0;
                    } else if (!lowestFree && y[j] < 0) {
                        at = k;
                        lowestFree = true;
                    }
                }
            }
            int j1 = cols[at];
            cols[at] = cols[--open];
            cols[open] = j1;
            if (lowestFree) {
                mu = lowest;
                end = j1;
                break;
            }
            i = y[j1];
            u1 = a[i * m + j1] - v[j1] - lowest;
        }
        for (int k = open + 1; k < m; k++) {
            int j = cols[k];
            v[j] += d[j] - mu;
        }
        while (true) {
            int r = pred[end];
            y[end] = r;
            int next = x[r];
            x[r] = end;
            if (r == f) {
                break;
            }
            end = next;
        }
    }
}
