#!/usr/bin/env bash
# GPU check for spotserve-cuda (issue 6), in two steps:
#
#   1. on the build machine (JDK 17 + Maven):   spotserve-cuda/gpu-check.sh bundle
#      builds spotserve-cuda/target/gpu-bundle/: lib/ (classes, test classes, benchmark classes, every
#      test-scope jar: JCuda and its linux-x86_64 natives, JUnit, JMH), shared/models (stories260K for the contract suites) and rt/, a jlink'ed
#      Java 17 runtime for machines without a JDK (recipe and size: benchmarks/notes/cuda.md).
#   2. on the GPU machine, from the repository root:   spotserve-cuda/gpu-check.sh run [--allow-skips]
#      runs every io.spotserve.cuda test (contract suites, random-model parity, per-kernel tests, PTX and
#      layout tests) with `java` from PATH when it is 17+, else with the bundle's rt/bin/java; then (unless
#      SKIP_BENCH is set) a short CudaDecode JMH run whose JSON lands in $OUT. Exit status 1 on any failure
#      or (without --allow-skips) any skipped GPU suite.
#
# With the device tool: carry ["spotserve-cuda/target/gpu-bundle"] (about 45 MB, under the 64 MiB limit) and
# run `bash spotserve-cuda/gpu-check.sh run`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
bundle="$here/target/gpu-bundle"

case "${1:-}" in
bundle)
  cd "$root"
  mvn -q -o -pl spotserve-cuda,benchmarks -am -DskipTests package dependency:copy-dependencies \
      -DincludeScope=test -DoutputDirectory="$bundle/lib.tmp"
  rm -rf "$bundle/lib" "$bundle/rt" "$bundle/shared"
  mkdir -p "$bundle/lib" "$bundle/shared"
  cp "$bundle"/lib.tmp/*.jar "$bundle/lib/"
  rm -rf "$bundle/lib.tmp"
  # the reactor's fresh jars, not whatever another checkout installed into ~/.m2
  rm -f "$bundle"/lib/spotserve-*.jar
  cp spotserve-core/target/spotserve-core-*.jar spotserve-cuda/target/spotserve-cuda-*.jar "$bundle/lib/"
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
  [ -d "$bundle/lib" ] || { echo "no $bundle; run '$0 bundle' on the build machine and carry it" >&2; exit 2; }
  java_bin=""
  if command -v java >/dev/null && java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then
    java_bin="$(command -v java)"
  else
    java_bin="$bundle/rt/bin/java"
  fi
  echo "java: $java_bin"; "$java_bin" -version 2>&1 | head -1
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "(no nvidia-smi)"
  ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcublas\.so' || echo "(ldconfig lists no libcuda / libcublas)"
  cd "$here"   # PtxTest reads src/main/cuda relative to the module
  status=0
  "$java_bin" --add-modules jdk.incubator.vector -Xss4m -Dspotserve.shared.dir="$bundle/shared" \
      -cp "$bundle/lib/*" io.spotserve.cuda.GpuCheck "$@" || status=$?
  if [ "$status" = 0 ] && [ -z "${SKIP_BENCH:-}" ]; then   # JMH decode benchmark, same classpath
    "$java_bin" -cp "$bundle/lib/*" org.openjdk.jmh.Main CudaDecode -f 1 -wi 2 -i 3 -w 1 -r 1 \
        -jvm "$java_bin" -rf json -rff "${OUT:-/tmp}/cuda-decode.json" || status=1
  fi
  exit $status
  ;;
*)
  echo "usage: $0 bundle | run [--allow-skips]" >&2
  exit 2
  ;;
esac
