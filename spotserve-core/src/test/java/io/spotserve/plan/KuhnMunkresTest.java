package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Kuhn-Munkres checked three ways: hand-solved matrices, brute force over every assignment for matrices up to
 * 8×8 (thousands of seeded random ones), and an optimality certificate (feasible dual potentials, tight
 * matched edges, primal = dual) taken from the real solver on matrices up to 1000×1000.
 */
class KuhnMunkresTest {

    // ---------------------------------------------------------------- hand-solved and degenerate cases

    @Test
    void handSolvedSquare() {
        double[][] costs = {
            {4, 1, 3},
            {2, 0, 5},
            {3, 2, 2},
        };
        Assignment a = KuhnMunkres.minimize(costs);
        // 1 + 2 + 2 = 5 is the unique optimum
        assertArrayEquals(new int[] {1, 0, 2}, a.rowToColumn());
        assertArrayEquals(new int[] {1, 0, 2}, a.columnToRow());
        assertEquals(5.0, a.total());

        Assignment b = KuhnMunkres.maximize(costs);
        // 4 + 5 + 2 = 11 is the unique optimum
        assertArrayEquals(new int[] {0, 2, 1}, b.rowToColumn());
        assertEquals(11.0, b.total());
    }

    @Test
    void rectangularBothOrientations() {
        double[][] wide = {
            {7, 1, 9, 2},
            {6, 8, 3, 1},
        };
        Assignment a = KuhnMunkres.maximize(wide);
        assertArrayEquals(new int[] {2, 1}, a.rowToColumn());
        assertArrayEquals(new int[] {-1, 1, 0, -1}, a.columnToRow());
        assertEquals(17.0, a.total());

        double[][] tall = transpose(wide);
        Assignment t = KuhnMunkres.maximize(tall);
        assertArrayEquals(new int[] {-1, 1, 0, -1}, t.rowToColumn());
        assertArrayEquals(new int[] {2, 1}, t.columnToRow());
        assertEquals(17.0, t.total());

        Assignment min = KuhnMunkres.minimize(wide);
        assertArrayEquals(new int[] {1, 3}, min.rowToColumn());
        assertEquals(2.0, min.total());
    }

    @Test
    void singleRowAndSingleColumnPickTheBestEntryLowestIndexOnTies() {
        double[][] row = {{3, -1, 5, -1, 5}};
        assertArrayEquals(new int[] {1}, KuhnMunkres.minimize(row).rowToColumn());
        assertArrayEquals(new int[] {2}, KuhnMunkres.maximize(row).rowToColumn());
        double[][] col = transpose(row);
        assertArrayEquals(new int[] {-1, 0, -1, -1, -1}, KuhnMunkres.minimize(col).rowToColumn());
        assertArrayEquals(new int[] {-1, -1, 0, -1, -1}, KuhnMunkres.maximize(col).rowToColumn());
        assertEquals(5.0, KuhnMunkres.maximize(col).total());
        Assignment one = KuhnMunkres.minimize(new double[][] {{-2.5}});
        assertArrayEquals(new int[] {0}, one.rowToColumn());
        assertEquals(-2.5, one.total());
    }

    @Test
    void equalEntriesGiveTheIdentityMatching() {
        for (int[] shape : new int[][] {{5, 5}, {3, 7}, {7, 3}, {1, 4}, {4, 1}}) {
            double[][] m = new double[shape[0]][shape[1]];
            for (double[] r : m) {
                Arrays.fill(r, 2.0);
            }
            Assignment a = KuhnMunkres.maximize(m);
            for (int i = 0; i < Math.min(shape[0], shape[1]); i++) {
                assertEquals(i, a.columnOf(i), "shape " + Arrays.toString(shape));
            }
            assertEquals(2.0 * Math.min(shape[0], shape[1]), a.total());
        }
    }

    @Test
    void negativeZeroIsTreatedAsZero() {
        double[][] neg = {{-0.0, -0.0, 1}, {-0.0, 2, -0.0}};
        double[][] pos = {{0.0, 0.0, 1}, {0.0, 2, 0.0}};
        assertEquals(KuhnMunkres.minimize(pos), KuhnMunkres.minimize(neg));
        assertEquals(KuhnMunkres.maximize(pos), KuhnMunkres.maximize(neg));
        Assignment zero = KuhnMunkres.minimize(new double[][] {{-0.0, -0.0}, {-0.0, -0.0}});
        assertEquals(0, Double.compare(0.0, zero.total()), "total must be +0.0, was " + zero.total());
    }

    @Test
    void hugeMagnitudesUpToTheLimitAreSolvedWithFinitePotentials() {
        double big = KuhnMunkres.MAX_ABS_ENTRY;
        double[][] m = {
            {big, -big, 0},
            {-big, big, 1},
            {big, big, -big},
        };
        Solution s = KuhnMunkres.solve(m, false);
        assertArrayEquals(new int[] {1, 0, 2}, s.assignment().rowToColumn());
        assertEquals(-3 * big, s.assignment().total(), 1e-12 * big);
        // best is r0->c0, r1->c2, r2->c1 = 2e300 + 1, which doubles cannot tell from 2e300 (r0->c2, r1->c1,
        // r2->c0): either is optimal to the stated precision
        Solution mx = KuhnMunkres.solve(m, true);
        assertEquals(2 * big, mx.assignment().total(), 1e-12 * big);
        assertCertificate(s, false);
        assertCertificate(mx, true);
        Random rnd = new Random(11);
        double[][] r = randomMatrix(rnd, 60, 90, () -> (rnd.nextDouble() * 2 - 1) * big);
        assertCertificate(KuhnMunkres.solve(r, false), false);
        assertCertificate(KuhnMunkres.solve(r, true), true);
        assertCertificate(KuhnMunkres.solve(transpose(r), true), true);
    }

    @Test
    void inputIsNotModifiedAndResultsAreRepeatable() {
        Random rnd = new Random(5);
        double[][] m = randomMatrix(rnd, 40, 55, () -> rnd.nextInt(4));
        double[][] copy = deepCopy(m);
        Assignment a = KuhnMunkres.maximize(m);
        Assignment b = KuhnMunkres.maximize(copy);
        assertEquals(a, b);
        assertTrue(Arrays.deepEquals(copy, m), "input matrix was modified");
        int[] r2c = a.rowToColumn();
        r2c[0] = 99;
        assertFalse(r2c[0] == a.rowToColumn()[0], "Assignment must not expose its arrays");
        assertNotSame(a.columnToRow(), a.columnToRow());
    }

    // ---------------------------------------------------------------- invalid input

    @Test
    void rejectsNullEmptyRaggedAndNonFiniteInputNamingThePlace() {
        assertMessage(() -> KuhnMunkres.maximize(null), "null");
        assertMessage(() -> KuhnMunkres.maximize(new double[0][]), "no rows");
        assertMessage(() -> KuhnMunkres.maximize(new double[][] {{}}), "row 0 has no columns");
        assertMessage(() -> KuhnMunkres.minimize(new double[][] {{1, 2}, null}), "row 1 is null");
        assertMessage(() -> KuhnMunkres.minimize(new double[][] {{1, 2}, {3, 4}, {5}}),
                "row 2 has 1 columns, expected 2");
        assertMessage(() -> KuhnMunkres.minimize(new double[][] {{1, 2}, {3, Double.NaN}}),
                "row 1, column 1 is NaN");
        assertMessage(() -> KuhnMunkres.maximize(new double[][] {{Double.POSITIVE_INFINITY, 2}}),
                "row 0, column 0 is Infinity");
        assertMessage(() -> KuhnMunkres.maximize(new double[][] {{1}, {Double.NEGATIVE_INFINITY}}),
                "row 1, column 0 is -Infinity");
        assertMessage(() -> KuhnMunkres.maximize(new double[][] {{1, 2, 3}, {4, 5, -1e301}}),
                "row 1, column 2 is -1.0E301; expected a finite number with |x| <= 1.0E300");
    }

    private static void assertMessage(Runnable call, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
        assertTrue(e.getMessage().contains(expected), "message '" + e.getMessage() + "' lacks '" + expected + "'");
    }

    // ---------------------------------------------------------------- brute force, n, m <= 8

    @Test
    void matchesBruteForceOnThousandsOfSmallRandomMatrices() {
        Random rnd = new Random(20240229L);
        int checked = 0;
        for (int t = 0; t < 4000; t++) {
            int n = 1 + rnd.nextInt(8);
            int m = 1 + rnd.nextInt(8);
            int kind = t % 5;
            DoubleSupplier gen = switch (kind) {
                case 0 -> () -> rnd.nextDouble() * 200 - 100;                     // negatives, no ties
                case 1 -> () -> rnd.nextInt(3);                                    // heavy ties and zeros
                case 2 -> () -> rnd.nextInt(5) == 0 ? rnd.nextInt(7) - 3 : 0.0;    // mostly zeros
                case 3 -> () -> rnd.nextInt(2001) - 1000;                          // integer costs, some ties
                default -> () -> rnd.nextBoolean() ? -0.0 : rnd.nextInt(4) * 0.25; // -0.0 and dyadic ties
            };
            double[][] mat = randomMatrix(rnd, n, m, gen);
            boolean exact = kind != 0;
            for (boolean maximize : new boolean[] {false, true}) {
                Assignment a = maximize ? KuhnMunkres.maximize(mat) : KuhnMunkres.minimize(mat);
                assertValidAssignment(mat, a);
                double best = bruteForce(mat, maximize);
                String what = (maximize ? "max " : "min ") + n + "x" + m + " case " + t;
                if (exact) {
                    assertEquals(best, a.total(), what);
                } else {
                    assertEquals(best, a.total(), 1e-9, what);
                }
                checked++;
            }
        }
        assertEquals(8000, checked);
    }

    /** Best total over every injective map of the shorter side into the longer one. */
    private static double bruteForce(double[][] mat, boolean maximize) {
        double[][] w = mat.length <= mat[0].length ? mat : transpose(mat);
        double[] best = {maximize ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY};
        enumerate(w, 0, new boolean[w[0].length], 0.0, maximize, best);
        return best[0];
    }

    private static void enumerate(double[][] w, int row, boolean[] used, double sum, boolean maximize,
                                  double[] best) {
        if (row == w.length) {
            best[0] = maximize ? Math.max(best[0], sum) : Math.min(best[0], sum);
            return;
        }
        for (int c = 0; c < used.length; c++) {
            if (!used[c]) {
                used[c] = true;
                enumerate(w, row + 1, used, sum + w[row][c], maximize, best);
                used[c] = false;
            }
        }
    }

    private static void assertValidAssignment(double[][] mat, Assignment a) {
        int n = mat.length;
        int m = mat[0].length;
        int[] r2c = a.rowToColumn();
        int[] c2r = a.columnToRow();
        assertEquals(n, r2c.length);
        assertEquals(m, c2r.length);
        int matched = 0;
        double total = 0.0;
        for (int r = 0; r < n; r++) {
            if (r2c[r] >= 0) {
                assertEquals(r, c2r[r2c[r]], "columnToRow disagrees with rowToColumn at row " + r);
                total += mat[r][r2c[r]];
                matched++;
            }
        }
        for (int c = 0; c < m; c++) {
            if (c2r[c] >= 0) {
                assertEquals(c, r2c[c2r[c]], "rowToColumn disagrees with columnToRow at column " + c);
            }
        }
        assertEquals(Math.min(n, m), matched, "matched pairs");
        assertEquals(total, a.total(), 0.0, "total is not the sum of the matched entries");
    }

    // ---------------------------------------------------------------- optimality certificate, up to 1000x1000

    @ParameterizedTest(name = "{0}x{1} {2} seed {3}")
    @CsvSource({
        "1000, 1000, uniform, 1",
        "1000, 1000, integers, 2",
        "300, 1000, uniform, 3",
        "1000, 300, uniform, 4",
        "500, 500, negatives, 5",
        "700, 900, ties, 6",
        "1, 1000, uniform, 7",
        "1000, 1, integers, 8",
        "256, 256, rankone, 9",
        "200, 260, sum, 10",
        "260, 200, product, 11",
        "400, 400, huge, 12",
    })
    void randomLargeMatricesCarryAnOptimalityCertificate(int n, int m, String kind, long seed) {
        Random rnd = new Random(seed);
        DoubleSupplier gen = switch (kind) {
            case "uniform" -> rnd::nextDouble;
            case "integers" -> () -> rnd.nextInt(1000);
            case "negatives" -> () -> -1e6 * rnd.nextDouble();
            case "ties" -> () -> rnd.nextInt(4);
            case "huge" -> () -> (2 * rnd.nextDouble() - 1) * KuhnMunkres.MAX_ABS_ENTRY;
            default -> null;
        };
        double[][] mat;
        if (kind.equals("sum") || kind.equals("product")) {
            // structured, tie-heavy: every (sum) or many (product) assignments are optimal; this is what
            // drives the most rows into the Dijkstra phase
            mat = new double[n][m];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < m; j++) {
                    mat[i][j] = kind.equals("sum") ? i + j : (double) i * j;
                }
            }
        } else if (gen == null) { // a_ij = p_i * q_j: every assignment pattern of a sorted order ties often
            double[] p = new double[n];
            double[] q = new double[m];
            for (int i = 0; i < n; i++) {
                p[i] = rnd.nextInt(10);
            }
            for (int j = 0; j < m; j++) {
                q[j] = rnd.nextInt(10);
            }
            mat = new double[n][m];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < m; j++) {
                    mat[i][j] = p[i] * q[j];
                }
            }
        } else {
            mat = randomMatrix(rnd, n, m, gen);
        }
        for (boolean maximize : new boolean[] {false, true}) {
            Solution s = KuhnMunkres.solve(mat, maximize);
            assertValidAssignment(mat, s.assignment());
            assertCertificate(s, maximize);
        }
    }

    /**
     * Dual feasibility u_i + v_j <= c_ij everywhere, v_j <= 0 with v_j = 0 on unmatched columns, equality on
     * matched pairs, and primal total = dual objective, all up to rounding relative to the largest entry.
     */
    private static void assertCertificate(Solution s, boolean maximize) {
        int n = s.n();
        int m = s.m();
        double[] c = s.costs();
        double[] u = s.u();
        double[] v = s.v();
        double scale = 1.0;
        for (double x : c) {
            scale = Math.max(scale, Math.abs(x));
        }
        double tol = 1e-9 * scale;
        boolean[] matched = new boolean[m];
        double primal = 0.0;
        double dual = 0.0;
        for (int i = 0; i < n; i++) {
            assertTrue(Double.isFinite(u[i]), "u[" + i + "] = " + u[i]);
            int j = s.columnOfRow()[i];
            assertFalse(matched[j], "column " + j + " matched twice");
            matched[j] = true;
            primal += c[i * m + j];
            dual += u[i];
            assertEquals(c[i * m + j], u[i] + v[j], tol, "matched edge (" + i + "," + j + ") is not tight");
            for (int k = 0; k < m; k++) {
                double slack = c[i * m + k] - u[i] - v[k];
                if (slack < -tol) {
                    throw new AssertionError("dual infeasible at (" + i + "," + k + "): slack " + slack);
                }
            }
        }
        for (int j = 0; j < m; j++) {
            assertTrue(Double.isFinite(v[j]), "v[" + j + "] = " + v[j]);
            assertTrue(v[j] <= tol, "v[" + j + "] = " + v[j] + " > 0");
            if (!matched[j]) {
                assertEquals(0.0, v[j], 0.0, "unmatched column " + j + " has a nonzero potential");
            }
            dual += v[j];
        }
        assertEquals(primal, dual, tol * n, "primal != dual");
        // the public total is the same optimum in the caller's units
        double expected = 0.0;
        Assignment a = s.assignment();
        int[] r2c = a.rowToColumn();
        for (int r = 0; r < r2c.length; r++) {
            if (r2c[r] >= 0) {
                int i = s.transposed() ? r2c[r] : r;
                int j = s.transposed() ? r : r2c[r];
                assertEquals(s.columnOfRow()[i], j, "public assignment differs from the solver's");
                expected += c[i * m + j];
            }
        }
        assertEquals(expected, maximize ? -a.total() : a.total(), tol * n, "public total");
    }

    // ---------------------------------------------------------------- helpers

    private static double[][] randomMatrix(Random rnd, int n, int m, DoubleSupplier gen) {
        double[][] mat = new double[n][m];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                mat[i][j] = gen.getAsDouble();
            }
        }
        return mat;
    }

    private static double[][] transpose(double[][] mat) {
        double[][] t = new double[mat[0].length][mat.length];
        for (int i = 0; i < mat.length; i++) {
            for (int j = 0; j < mat[0].length; j++) {
                t[j][i] = mat[i][j];
            }
        }
        return t;
    }

    private static double[][] deepCopy(double[][] mat) {
        double[][] c = new double[mat.length][];
        for (int i = 0; i < mat.length; i++) {
            c[i] = mat[i].clone();
        }
        return c;
    }
}
