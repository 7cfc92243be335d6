package io.spotserve.examples;

/** Range checks of option values, each failing with one {@link UsageException} line. */
final class Ranges {
    private Ranges() {
    }

    /** {@code value}, checked to lie in [min, max]. */
    static int within(String command, String option, int value, int min, int max) throws UsageException {
        if (value < min || value > max) {
            throw new UsageException(command + ": " + option + " must be " + (max == Integer.MAX_VALUE ? ">= " + min
                    : "in [" + min + ", " + max + "]") + ", was " + value);
        }
        return value;
    }

    /** {@code value}, checked to be at least {@code min}. */
    static int atLeast(String command, String option, int value, int min) throws UsageException {
        return within(command, option, value, min, Integer.MAX_VALUE);
    }

    /** {@code value}, checked to be a finite number in [min, max]. */
    static double within(String command, String option, double value, double min, double max)
            throws UsageException {
        if (!(value >= min && value <= max) || Double.isInfinite(value)) {
            throw new UsageException(command + ": " + option + " must be a finite number in [" + min + ", " + max
                    + "], was " + value);
        }
        return value;
    }

    /** Bytes in a human unit, e.g. {@code 5.3 GiB}. */
    static String bytes(double bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
        int u = 0;
        while (bytes >= 1024 && u < units.length - 1) {
            bytes /= 1024;
            u++;
        }
        return String.format(java.util.Locale.ROOT, "%.1f %s", bytes, units[u]);
    }

    /**
     * Checks that an estimate of the heap a command will allocate fits in half of the JVM's maximum heap, so an
     * out-of-memory error cannot cut the command short.
     */
    static void fitsInHeap(String command, String what, double bytes) throws UsageException {
        long max = Runtime.getRuntime().maxMemory();
        if (bytes > max / 2.0) {
            throw new UsageException(command + ": " + what + " needs about " + bytes(bytes) + " of heap, more than half "
                    + "of the JVM's maximum " + bytes(max) + "; use smaller values or a larger -Xmx");
        }
    }
}
