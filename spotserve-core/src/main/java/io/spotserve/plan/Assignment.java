package io.spotserve.plan;

import java.util.Arrays;

/**
 * An optimal assignment of rows to columns of a rectangular weight matrix, as returned by
 * {@link KuhnMunkres}. With {@code n} rows and {@code m} columns exactly {@code min(n, m)} pairs are
 * matched; the rest map to {@code -1}.
 *
 * @param rowToColumn for each row, its column or -1 when unmatched
 * @param columnToRow for each column, its row or -1 when unmatched
 * @param total       sum of the matched entries of the input matrix
 */
public record Assignment(int[] rowToColumn, int[] columnToRow, double total) {

    public Assignment {
        rowToColumn = rowToColumn.clone();
        columnToRow = columnToRow.clone();
    }

    @Override
    public int[] rowToColumn() {
        return rowToColumn.clone();
    }

    @Override
    public int[] columnToRow() {
        return columnToRow.clone();
    }

    /** Column assigned to {@code row}, or -1. */
    public int columnOf(int row) {
        return rowToColumn[row];
    }

    /** Row assigned to {@code column}, or -1. */
    public int rowOf(int column) {
        return columnToRow[column];
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Assignment a && Arrays.equals(rowToColumn, a.rowToColumn)
                && Arrays.equals(columnToRow, a.columnToRow) && Double.compare(total, a.total) == 0;
    }

    @Override
    public int hashCode() {
        return 31 * (31 * Arrays.hashCode(rowToColumn) + Arrays.hashCode(columnToRow)) + Double.hashCode(total);
    }

    @Override
    public String toString() {
        return "Assignment[rowToColumn=" + Arrays.toString(rowToColumn) + ", total=" + total + "]";
    }
}
