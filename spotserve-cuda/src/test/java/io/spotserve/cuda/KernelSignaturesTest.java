package io.spotserve.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.cuda.KernelSignatures.Param;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Test;

/**
 * The launch check against the committed PTX: every kernel's parameters parse, a launch with a wrong argument
 * count or type is refused with the kernel named, and every {@code launch("kernel", cfg, ...)} call in this
 * module's sources (main and GPU tests) passes as many arguments as the PTX entry declares — the check that
 * would have caught a call site left behind when a kernel gained a parameter.
 */
class KernelSignaturesTest {
    private static final Path MODULE = Path.of(System.getProperty("user.dir"));
    private static final KernelSignatures SIGS = CudaContext.Signatures.ALL;

    @Test
    void everyKernelHasItsPtxParameters() {
        assertEquals(CudaContext.KERNELS.size(), SIGS.all().size());
        for (String k : CudaContext.KERNELS) {
            assertNotNull(SIGS.of(k), k);
            assertFalse(SIGS.of(k).isEmpty(), k);
        }
        assertEquals(List.of(Param.B64, Param.B32, Param.B32, Param.B64, Param.B32, Param.B32, Param.B64, Param.B32,
                Param.B32), SIGS.of("gemv_f16"));
        assertEquals(Param.F32, SIGS.of("attention").get(SIGS.of("attention").size() - 1));
        assertEquals(List.of(Param.B64, Param.B64, Param.B64), SIGS.of("f32_to_f16"));
    }

    @Test
    void badLaunchesAreRefusedWithTheKernelNamed() {
        CUdeviceptr p = new CUdeviceptr();
        SIGS.check("add_inplace", new Object[] {p, p, 3});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SIGS.check("add_inplace", new Object[] {p, p}));
        assertTrue(e.getMessage().contains("add_inplace takes 3 arguments"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SIGS.check("add_inplace", new Object[] {p, p, 3L}));
        assertTrue(e.getMessage().contains("argument 2 must be B32, got Long"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SIGS.check("softmax_rows", new Object[] {p, 3, 0.5}));
        assertTrue(e.getMessage().contains("argument 2 must be F32, got Double"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SIGS.check("nope", new Object[0]));
        assertTrue(e.getMessage().contains("nope is not in the PTX"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> KernelSignatures.parse(".visible .entry k(\n\t.param .f64 k_param_0\n)"));
    }

    @Test
    void everyLaunchCallSitePassesThePtxArgumentCount() throws IOException {
        List<Path> sources;
        try (Stream<Path> s = Stream.concat(Files.walk(MODULE.resolve("src/main/java")),
                Files.walk(MODULE.resolve("src/test/java")))) {
            sources = s.filter(f -> f.toString().endsWith(".java")).toList();
        }
        int sites = 0;
        for (Path f : sources) {
            String src = Files.readString(f);
            Matcher m = Pattern.compile("\\.launch\\(").matcher(src);
            while (m.find()) {
                List<String> args = arguments(src, m.end());
                Matcher names = Pattern.compile("\"(\\w+)\"").matcher(args.get(0));
                boolean any = false;
                while (names.find()) {
                    any = true;
                    String kernel = names.group(1);
                    assertNotNull(SIGS.of(kernel), f.getFileName() + ": kernel " + kernel + " not in the PTX");
                    assertEquals(SIGS.of(kernel).size(), args.size() - 2, f.getFileName() + ": launch of " + kernel
                            + " passes " + (args.size() - 2) + " arguments: " + args.subList(2, args.size()));
                    sites++;
                }
                assertTrue(any || f.getFileName().toString().equals("CudaContext.java"),
                        f.getFileName() + ": launch with a kernel name that is not a literal: " + args.get(0));
            }
        }
        assertTrue(sites >= 20, "found only " + sites + " launch sites");
    }

    /** The top-level comma-separated arguments of the call whose '(' ends just before {@code from}. */
    private static List<String> arguments(String src, int from) {
        List<String> out = new ArrayList<>();
        int depth = 0;
        StringBuilder cur = new StringBuilder();
        for (int i = from; i < src.length(); i++) {
            char ch = src.charAt(i);
            if (ch == '"') { // skip a string literal
                int j = src.indexOf('"', i + 1);
                cur.append(src, i, j + 1);
                i = j;
                continue;
            }
            if (ch == '(' || ch == '{' || ch == '[') {
                depth++;
            } else if (ch == ')' || ch == '}' || ch == ']') {
                if (depth == 0) {
                    out.add(cur.toString().trim());
                    return out;
                }
                depth--;
            } else if (ch == ',' && depth == 0) {
                out.add(cur.toString().trim());
                cur.setLength(0);
                continue;
            }
            cur.append(ch);
        }
        throw new IllegalStateException("unbalanced call at " + from);
    }
}
