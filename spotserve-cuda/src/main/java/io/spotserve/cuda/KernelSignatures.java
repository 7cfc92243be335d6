package io.spotserve.cuda;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The parameter lists of the kernels, read from the PTX itself, so every launch is checked before it reaches
 * the driver: {@code cuLaunchKernel} copies as many parameter bytes as the kernel declares, so a missing or
 * mistyped argument would not fail there but compute garbage. With this check it fails with the kernel, the
 * argument and what was expected.
 */
final class KernelSignatures {
    /** A kernel parameter as Java passes it. */
    enum Param {
        /** a 64-bit value: a device pointer ({@code CUdeviceptr}) or a {@code long long} (Long) */
        B64,
        /** a 32-bit integer (Integer) */
        B32,
        /** a float (Float) */
        F32;

        boolean accepts(Object arg) {
            return switch (this) {
                case B64 -> arg instanceof jcuda.driver.CUdeviceptr || arg instanceof Long;
                case B32 -> arg instanceof Integer;
                case F32 -> arg instanceof Float;
            };
        }
    }

    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+(\\w+)\\s*\\(([^)]*)\\)");
    private static final Pattern PARAM = Pattern.compile("\\.param\\s+\\.(\\w+)(?:\\s+\\.ptr)?(?:\\s+\\.\\w+)*(?:\\s+\\.align\\s+\\d+)?\\s+\\w+");

    private final Map<String, List<Param>> params;

    private KernelSignatures(Map<String, List<Param>> params) {
        this.params = params;
    }

    /**
     * The signatures of every {@code .entry} of {@code ptx}.
     *
     * @throws IllegalArgumentException on a parameter type the launcher cannot pass
     */
    static KernelSignatures parse(String ptx) {
        Map<String, List<Param>> all = new LinkedHashMap<>();
        Matcher e = ENTRY.matcher(ptx);
        while (e.find()) {
            List<Param> ps = new ArrayList<>();
            Matcher p = PARAM.matcher(e.group(2));
            while (p.find()) {
                String t = p.group(1);
                ps.add(switch (t) {
                    case "u64", "s64", "b64" -> Param.B64;
                    case "u32", "s32", "b32" -> Param.B32;
                    case "f32" -> Param.F32;
                    default -> throw new IllegalArgumentException("kernel " + e.group(1) + " has a ." + t
                            + " parameter; the launcher passes only 64-bit, 32-bit integer and f32 parameters");
                });
            }
            all.put(e.group(1), Collections.unmodifiableList(ps));
        }
        return new KernelSignatures(Collections.unmodifiableMap(all));
    }

    /** The parameters of {@code kernel}, or null when the PTX has no such entry. */
    List<Param> of(String kernel) {
        return params.get(kernel);
    }

    /** Every kernel's parameters, in PTX order. */
    Map<String, List<Param>> all() {
        return params;
    }

    /**
     * Checks a launch's arguments against the kernel's parameters.
     *
     * @throws IllegalArgumentException naming the kernel, the argument and the expected type
     */
    void check(String kernel, Object[] args) {
        List<Param> ps = params.get(kernel);
        if (ps == null) {
            throw new IllegalArgumentException("kernel " + kernel + " is not in the PTX; its entries are "
                    + params.keySet());
        }
        if (ps.size() != args.length) {
            throw new IllegalArgumentException("kernel " + kernel + " takes " + ps.size() + " arguments " + ps + ", got "
                    + args.length);
        }
        for (int i = 0; i < args.length; i++) {
            if (!ps.get(i).accepts(args[i])) {
                throw new IllegalArgumentException("kernel " + kernel + " argument " + i + " must be " + ps.get(i)
                        + ", got " + (args[i] == null ? "null" : args[i].getClass().getSimpleName()));
            }
        }
    }
}
