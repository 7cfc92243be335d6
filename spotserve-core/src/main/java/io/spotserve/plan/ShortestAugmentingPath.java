package io.spotserve.plan;

import java.util.Arrays;

/**
 * The numeric core of {@link KuhnMunkres}: minimum-cost assignment of every row of a flat row-major n×m
 * matrix with n ≤ m, after Jonker and Volgenant (greedy start, augmenting row reduction, then shortest
 * augmenting paths with lazily updated column prices). See the implementation notes in {@link KuhnMunkres}.
 */
final class ShortestAugmentingPath {
    /**
     * Cap on phase-2 work, in full-row equivalents per row (a row scan over candidates costs its candidate
     * count, a full scan m); keeps that phase at O(n·m) whatever the input.
     */
    static final int ROW_REDUCTION_WORK = 12;
    /** Most candidate columns kept per row for phase 2. */
    static final int MAX_CANDIDATES = 16;

    private final double[] a;
    private final int n;
    private final int m;
    private final int[] x;      // column of each row, -1 = free
    private final int[] y;      // row of each column, -1 = free
    private final double[] v;   // column prices
    // phase-2 candidates: per row the K cheapest columns (by raw cost), sorted by column index, and the
    // (K+1)-th smallest raw cost as a threshold; prices only fall, so a_ij - v_j >= a_ij >= threshold outside
    private final int k;
    private final int[] cand;
    private final double[] threshold;
    private long budget;        // phase-2 entry visits left

    private ShortestAugmentingPath(double[] a, int n, int m, int[] x, double[] v) {
        this.a = a;
        this.n = n;
        this.m = m;
        this.x = x;
        this.y = new int[m];
        this.v = v;
        this.k = Math.min(m, Math.max(2, Math.min(MAX_CANDIDATES, m / 4)));
        this.cand = new int[n * k];
        this.threshold = new double[n];
        Arrays.fill(x, -1);
        Arrays.fill(y, -1);
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
        new ShortestAugmentingPath(a, n, m, columnOfRow, v).run(u);
    }

    private void run(double[] u) {
        int[] free = new int[n];
        int numFree = greedy(free);
        if (numFree > 0 && m > 1) {
            budget = (long) ROW_REDUCTION_WORK * n * m;
            while (numFree > 0 && budget > 0) {
                numFree = reduceRows(free, numFree);
            }
        }
        if (numFree > 0) {
            double[] d = new double[m];
            int[] cols = new int[m];
            int[] pred = new int[m];
            for (int t = 0; t < numFree; t++) {
                augment(free[t], d, cols, pred);
            }
        }
        for (int i = 0; i < n; i++) {
            u[i] = a[i * m + x[i]] - v[x[i]];
        }
    }

    /**
     * Phase 1, with all prices 0: each row takes the lowest-index free column among its cheapest ones, if
     * any; the same pass records the row's phase-2 candidates. Returns the number of rows left free, listed in
     * {@code free} in index order.
     */
    private int greedy(int[] free) {
        int len = k + 1;
        double[] bufVal = new double[len];
        int[] bufCol = new int[len];
        int numFree = 0;
        for (int i = 0; i < n; i++) {
            int base = i * m;
            int size = 0;
            for (int j = 0; j < m; j++) {
                double h = a[base + j];
                if (size < len || h < bufVal[len - 1]) {
                    // stable insertion: equal costs keep the lower column first
                    int p = size < len ? size++ : len - 1;
                    while (p > 0 && bufVal[p - 1] > h) {
                        bufVal[p] = bufVal[p - 1];
                        bufCol[p] = bufCol[p - 1];
                        p--;
                    }
                    bufVal[p] = h;
                    bufCol[p] = j;
                }
            }
            double min = bufVal[0];
            int pick = -1;
            if (size == m || bufVal[size - 1] > min) {
                // every column at the minimum is in the buffer, in column order
                for (int t = 0; t < size && bufVal[t] == min; t++) {
                    if (y[bufCol[t]] < 0) {
                        pick = bufCol[t];
                        break;
                    }
                }
            } else {
                for (int j = 0; j < m; j++) {
                    if (a[base + j] == min && y[j] < 0) {
                        pick = j;
                        break;
                    }
                }
            }
            if (pick >= 0) {
                x[i] = pick;
                y[pick] = i;
            } else {
                free[numFree++] = i;
            }
            threshold[i] = size > k ? bufVal[k] : Double.POSITIVE_INFINITY;
            int cb = i * k;
            for (int t = 0; t < k; t++) {
                int c = bufCol[t];
                int q = t;
                while (q > 0 && cand[cb + q - 1] > c) {
                    cand[cb + q] = cand[cb + q - 1];
                    q--;
                }
                cand[cb + q] = c;
            }
        }
        return numFree;
    }

    /**
     * Phase 2, one pass of augmenting row reduction over {@code free[0..numFree)}: a free row takes its best
     * column j1 (under current prices) and, if strictly better than its second best j2, lowers j1's price to
     * make the two equal and re-processes the row it evicted at once; on a tie it takes j2 instead when j1 is
     * owned. The two best columns come from the row's candidates when the second best is still below the
     * row's threshold (then no other column can compete), else from a full scan; both give the same answer,
     * the two smallest (cost, column) pairs. Rows left when the budget runs out stay free for phase 3.
     * Returns the rows still free, compacted to the front of {@code free}.
     */
    private int reduceRows(int[] free, int numFree) {
        int t = 0;
        int stillFree = 0;
        while (t < numFree) {
            int i = free[t++];
            if (budget <= 0) {
                free[stillFree++] = i;
                continue;
            }
            int base = i * m;
            double u1 = Double.POSITIVE_INFINITY;
            double u2 = Double.POSITIVE_INFINITY;
            int j1 = -1;
            int j2 = -1;
            int cb = i * k;
            for (int q = 0; q < k; q++) {
                int j = cand[cb + q];
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
            budget -= k;
            if (!(u2 < threshold[i])) {
                u1 = Double.POSITIVE_INFINITY;
                u2 = Double.POSITIVE_INFINITY;
                for (int j = 0; j < m; j++) {
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
                budget -= m;
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
                    free[--t] = i0;   // slot t held row i, already consumed; stillFree <= t
                } else {
                    free[stillFree++] = i0;
                }
            }
        }
        return stillFree;
    }

    /**
     * Phase 3: Dijkstra from free row {@code f} over reduced costs to the nearest free column, price update
     * of the settled columns, then the alternating path is flipped. Each step scans the row of the column
     * settled last and, in the same pass, finds the next column to settle, so a step costs one pass over the
     * unsettled columns. {@code cols} is a permutation of the columns: [0, open) unsettled, [open, m)
     * settled in reverse order. Among equally near columns a free one is preferred, then the first met.
     */
    private void augment(int f, double[] d, int[] cols, int[] pred) {
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
