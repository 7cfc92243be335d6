#!/usr/bin/env bash
# GPU check for spotserve-cuda (issue 6), in two steps:
#
#   1. on the build machine (JDK 17 + Maven):   spotserve-cuda/gpu-check.sh bundle
#      builds spotserve-cuda/target/gpu-bundle/: lib/ (classes, test classes, benchmark classes, spotserve-cuda's
#      test-scope jars: JCuda and its linux-x86_64 natives, JUnit; JMH and Gson for the benchmark steps), shared/models (stories260K for the contract suites) and rt/, a jlink'ed
#      Java 17 runtime for machines without a JDK (recipe and size: benchmarks/notes/cuda.md).
#   2. on the GPU machine, from the repository root:   spotserve-cuda/gpu-check.sh run [--allow-skips] [--bench-only]
#      one call runs every step, each under its own time limit, all within GPU_CHECK_BUDGET_S (555 s), a failing
#      step not stopping the later ones:
#        tests            every io.spotserve.cuda test (contract suites, random-model parity, per-kernel, PTX and
#                         layout tests) with GpuCheck; skipped GPU suites fail it unless --allow-skips; not run
#                         with --bench-only (SKIP_BENCH=1 runs this step only)
#        jmh-cuda-decode  the short CudaDecode JMH run (25M model, batch 1/8/32)  -> $OUT/cuda-decode.json
#        decode-1b        GpuDecodeBench: 1B random LLaMA, fp16 + fp32, batch 1 + 16, copy bandwidth
#                                                                                 -> $OUT/decode-1b.json
#        torch-decode     benchmarks/gpu/torch_decode.py (PyTorch eager, same shape) -> $OUT/torch-decode.json
#        compare          DecodeComparison: bound, ratios, goals PASS/FAIL          -> $OUT/gpu-decode.md
#      Java is `java` from PATH when it is 17+, else the bundle's rt/bin/java. Every step's output is appended
#      to $OUT/steps.log, one line per step (rc, seconds) to $OUT/summary.txt ($OUT defaults to
#      spotserve-cuda/target/gpu-out): 6 files. Exit status 1 when any step failed (a goal not met counts).
#
# With the device tool: carry ["spotserve-cuda/target/gpu-bundle"] (about 46 MB, under the 64 MiB limit) and
# run `bash spotserve-cuda/gpu-check.sh run` (recipe, shapes and expected numbers: benchmarks/notes/cuda.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
bundle="$here/target/gpu-bundle"

case "${1:-}" in
bundle)
  cd "$root"
  # build (and install, so the calls below find the sibling modules), then copy spotserve-cuda's test-scope jars and
  # of the benchmarks' only what the GPU steps load (JMH, Gson): with -am the copy took every module's test jars (the
  # server's OpenAI client alone is 76 MB, gRPC 11 MB) and the bundle outgrew the device tool's 64 MiB
  mvn -q -o -pl spotserve-cuda,benchmarks -am -DskipTests install
  dep=org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies
  mvn -q -o -pl spotserve-cuda "$dep" -DincludeScope=test -DoutputDirectory="$bundle/lib.tmp"
  mvn -q -o -pl benchmarks "$dep" -DincludeScope=runtime -DoutputDirectory="$bundle/lib.tmp" \
      -DincludeGroupIds=org.openjdk.jmh,net.sf.jopt-simple,org.apache.commons,com.google.code.gson
  rm -rf "$bundle/lib" "$bundle/rt" "$bundle/shared"
  mkdir -p "$bundle/lib" "$bundle/shared"
  cp "$bundle"/lib.tmp/*.jar "$bundle/lib/"
  rm -rf "$bundle/lib.tmp"
  # the reactor's fresh jars, not whatever another checkout installed into ~/.m2
  rm -f "$bundle"/lib/spotserve-*.jar
  for j in spotserve-core/target/spotserve-core-*.jar spotserve-cuda/target/spotserve-cuda-*.jar; do
    case $j in
      *-javadoc.jar|*-sources.jar) ;;
      *) cp "$j" "$bundle/lib/" ;;
    esac
  done
  jar --create --file "$bundle/lib/spotserve-cuda-test-classes.jar" -C spotserve-cuda/target/test-classes .
  jar --create --file "$bundle/lib/spotserve-benchmarks-classes.jar" -C benchmarks/target/classes .
  # only JCudaDriver (and JCublas2, optional) are loaded: drop the 24 MB PTX-compiler and NVRTC bindings
  zip -q -d "$bundle"/lib/jcuda-natives-*.jar 'lib/libJNvPTXCompiler*' 'lib/libJNvrtc*' 'lib/libJCudaRuntime*'
  cp -r "$root/../shared/models" "$bundle/shared/"
  jlink --add-modules java.base,java.logging,java.management,java.xml,jdk.incubator.vector,jdk.unsupported,jdk.zipfs \
      --strip-debug --no-header-files --no-man-pages --compress=2 --output "$bundle/rt"
  strip --strip-unneeded "$bundle/rt/lib/server/libjvm.so"   # Debian ships it with its symbol table
  "$bundle/rt/bin/java" -version 2>&1 | head -1
  du -sh "$bundle/rt" "$bundle/lib" "$bundle/shared"; du -sh "$bundle"
  ;;
run)
  shift
  allow_skips=""
  bench_only=""
  for a in "$@"; do
    case "$a" in
      --allow-skips) allow_skips="--allow-skips" ;;
      --bench-only) bench_only=1 ;;
      *) echo "unknown option $a; usage: $0 run [--allow-skips] [--bench-only]" >&2; exit 2 ;;
    esac
  done
  [ -d "$bundle/lib" ] || { echo "no $bundle; run '$0 bundle' on the build machine and carry it" >&2; exit 2; }
  out="${OUT:-$here/target/gpu-out}"
  mkdir -p "$out" && out="$(cd "$out" && pwd)"
  log="$out/steps.log"
  summary="$out/summary.txt"
  : > "$log"
  : > "$summary"
  rm -f "$out"/cuda-decode.json "$out"/decode-1b.json "$out"/torch-decode.json "$out"/gpu-decode.md   # no stale results
  java_bin=""
  if command -v java >/dev/null && java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then
    java_bin="$(command -v java)"
  else
    java_bin="$bundle/rt/bin/java"
  fi
  {
    echo "=== env"
    echo "java: $java_bin"; "$java_bin" -version 2>&1 | head -1
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv 2>/dev/null || echo "(no nvidia-smi)"
    ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcublas\.so' || echo "(ldconfig lists no libcuda / libcublas)"
    command -v python3 >/dev/null && python3 --version 2>&1 || echo "(no python3)"
    nproc; free -g 2>/dev/null | head -2
  } >> "$log" 2>&1
  cat "$log"
  # one device call: every step gets its own limit, all of them together at most $budget seconds (the device
  # tool allows 600 s a command); a failing or timed-out step does not stop the later ones
  budget="${GPU_CHECK_BUDGET_S:-555}"
  start=$SECONDS
  failures=0
  step() {   # step NAME LIMIT_S DIR COMMAND...: runs COMMAND in DIR, output appended to steps.log
    local name="$1" cap="$2" dir="$3"
    shift 3
    local left=$(( budget - (SECONDS - start) ))
    local limit=$(( cap < left ? cap : left ))
    if [ "$left" -lt 5 ]; then
      echo "$name: NOT RUN (the ${budget} s budget is spent)" | tee -a "$summary" | tee -a "$log"
      failures=$((failures + 1))
      return
    fi
    local part="$out/.step.log" t0=$SECONDS rc=0
    echo "=== $name (limit ${limit} s): $*" >> "$log"
    (cd "$dir" && timeout --kill-after=10 "$limit" "$@") > "$part" 2>&1 || rc=$?
    cat "$part" >> "$log"
    local line="$name: rc=$rc, $((SECONDS - t0)) s"
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then line="$line (timed out at $limit s)"; fi
    echo "=== $line" >> "$log"
    echo "--- $line; last lines:"; tail -n 6 "$part" | cut -c1-300
    if [ "$rc" != 0 ]; then   # the reason, when a step names it (no GPU, no torch)
      grep -m 1 -E 'needs a GPU|missing: ' "$part" | sed 's/^[^A-Za-z]*/    why: /' | cut -c1-300 || true
    fi
    echo "$line" >> "$summary"
    rm -f "$part"
    [ "$rc" = 0 ] || failures=$((failures + 1))
  }
  cp_all="$bundle/lib/*"
  jvm=(--add-modules jdk.incubator.vector -Dspotserve.shared.dir="$bundle/shared")
  if [ -z "$bench_only" ]; then
    # PtxTest reads src/main/cuda relative to the module, hence the directory
    step tests "${LIMIT_TESTS:-150}" "$here" "$java_bin" "${jvm[@]}" -Xss4m -cp "$cp_all" io.spotserve.cuda.GpuCheck \
      $allow_skips
  else
    echo "tests: not run (--bench-only)" >> "$summary"
  fi
  if [ -n "${SKIP_BENCH:-}" ]; then   # the old tests-only mode
    echo "benchmarks: not run (SKIP_BENCH)" >> "$summary"; cat "$summary"
    [ "$failures" = 0 ]; exit
  fi
  # the gemv kernels alone at the LLaMA-1B shapes (nvcc on the GPU machine; no JDK), both register budgets
  if command -v nvcc >/dev/null; then
    step gemv-bench "${LIMIT_GEMV:-45}" "$root" bash -c 'for mb in 5 8; do echo "== GEMV_MIN_BLOCKS=$mb";
      nvcc -O3 -std=c++17 -gencode arch=compute_75,code=compute_75 -DGEMV_MIN_BLOCKS=$mb \
        -Ispotserve-cuda/src/main/cuda spotserve-cuda/src/test/native/gemv_bench.cu -o /tmp/gemv_bench_$mb \
        && /tmp/gemv_bench_$mb || exit 1; done'
  else
    echo "gemv-bench: not run (no nvcc)" >> "$summary"
  fi
  # the short 25M-parameter JMH decode run (batch 1 / 8 / 32), JSON to $OUT/cuda-decode.json
  step jmh-cuda-decode "${LIMIT_JMH:-60}" "$root" "$java_bin" -cp "$cp_all" org.openjdk.jmh.Main CudaDecode \
      -f 1 -wi 2 -i 3 -w 1 -r 1 -foe true -jvm "$java_bin" -rf json -rff "$out/cuda-decode.json"
  # the 1B fp16 / fp32 decode at batch 1 and 16 with the copy bandwidth (benchmarks/notes/cuda.md)
  step decode-1b "${LIMIT_1B:-150}" "$root" "$java_bin" "${jvm[@]}" -Xmx"${BENCH_XMX:-24g}" -cp "$cp_all" \
      io.spotserve.bench.gpu.GpuDecodeBench --out "$out/decode-1b.json"
  # PyTorch/transformers eager on the same shape
  step torch-decode "${LIMIT_TORCH:-130}" "$root" python3 benchmarks/gpu/torch_decode.py --out "$out/torch-decode.json"
  # the comparison and the goals (exit 1 when a goal fails or was not measured)
  step compare "${LIMIT_COMPARE:-20}" "$root" "$java_bin" -cp "$cp_all" io.spotserve.bench.gpu.DecodeComparison \
      "$out/decode-1b.json" "$out/torch-decode.json" "$out/gpu-decode.md"
  echo
  [ -f "$out/gpu-decode.md" ] && cat "$out/gpu-decode.md"
  echo "total: $((SECONDS - start)) s, $failures step(s) failed" >> "$summary"
  echo; echo "=== summary ($out)"; cat "$summary"
  [ "$failures" = 0 ]
  ;;
*)
  echo "usage: $0 bundle | run [--allow-skips] [--bench-only]" >&2
  exit 2
  ;;
esac
