package io.spotserve.examples;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The one option syntax all sub-commands share: {@code --key value}, {@code --key=value} and bare
 * {@code --flag}s, each at most once. Every problem becomes a one-line {@link UsageException} prefixed with the
 * command's name, so {@link Main} can print it and exit with code 2.
 */
final class CommandLine {
    private CommandLine() {
    }

    /**
     * Parses {@code args} into option → value (flags map to the empty string).
     *
     * @param command the sub-command's name, the prefix of every message
     * @param valued  options that take a value
     * @param flags   options that take none
     * @param hint    what an unknown option's message suggests, e.g. "see generate --help"
     */
    static Map<String, String> parse(String command, String[] args, Set<String> valued, Set<String> flags,
                                     String hint) throws UsageException {
        Map<String, String> opts = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--")) {
                throw new UsageException(command + ": unexpected argument '" + a + "'; " + hint);
            }
            String key = a.substring(2);
            String value = null;
            int eq = key.indexOf('=');
            if (eq >= 0) {
                value = key.substring(eq + 1);
                key = key.substring(0, eq);
            }
            if (flags.contains(key)) {
                if (value != null) {
                    throw new UsageException(command + ": option --" + key + " takes no value, got '" + value + "'");
                }
                value = "";
            } else if (valued.contains(key)) {
                if (value == null) {
                    if (i + 1 >= args.length || isOption(args[i + 1], valued, flags)) {
                        throw new UsageException(command + ": option --" + key + " needs a value");
                    }
                    value = args[++i];
                }
            } else {
                throw new UsageException(command + ": unknown option --" + key + "; " + hint);
            }
            if (opts.put(key, value) != null) {
                throw new UsageException(command + ": option --" + key + " given twice");
            }
        }
        return opts;
    }

    private static boolean isOption(String arg, Set<String> valued, Set<String> flags) {
        if (!arg.startsWith("--")) {
            return false;
        }
        String key = arg.substring(2);
        int eq = key.indexOf('=');
        key = eq >= 0 ? key.substring(0, eq) : key;
        return valued.contains(key) || flags.contains(key);
    }

    /** An integer option in [min, max], or {@code dflt} when absent. */
    static int integer(String command, Map<String, String> opts, String key, int dflt, int min, int max)
            throws UsageException {
        String v = opts.get(key);
        if (v == null) {
            return dflt;
        }
        int n;
        try {
            n = Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(command + ": --" + key + " must be an integer, was '" + v + "'");
        }
        if (n < min || n > max) {
            throw new UsageException(command + ": --" + key + " must be " + (max == Integer.MAX_VALUE ? ">= " + min
                    : "in [" + min + ", " + max + "]") + ", was " + v);
        }
        return n;
    }

    /** A decimal option, or {@code dflt} when absent; range checks are the caller's. */
    static double number(String command, Map<String, String> opts, String key, double dflt) throws UsageException {
        String v = opts.get(key);
        if (v == null) {
            return dflt;
        }
        try {
            return Double.parseDouble(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(command + ": --" + key + " must be a number, was '" + v + "'");
        }
    }
}
