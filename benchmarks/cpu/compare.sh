#!/usr/bin/env bash
# Side-by-side CPU decode comparison: SpotServe-J (JMH steady state and the whole `generate` process, both as
# `java -jar` (re-launched child JVM) and through the ./spotserve launcher script (one JVM)) vs
# llama2.c run.c (-Ofast -march=native -fopenmp, BOS stop removed) vs llama.cpp (F32 GGUF of the same weights),
# in interleaved rounds, with the load average beside every number. Prints a table of medians.
#
#   benchmarks/cpu/compare.sh                 # 3 rounds, threads 1 and 2
#   ROUNDS=5 THREADS="2" benchmarks/cpu/compare.sh
#
# Needs: the jars (mvn -q -DskipTests package), and the anchors built as in benchmarks/README.md
# (TOOLS=/work/tools by default: $TOOLS/llama2.c/runfast, $TOOLS/llama.cpp/build/bin/llama-bench and
# llama-batched-bench). A missing anchor is reported and its column left empty; nothing else is skipped.
set -u
cd "$(dirname "$0")/../.."
TOOLS=${TOOLS:-/work/tools}
SHARED=${SHARED:-../shared}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-"1 2"}
STEPS=${STEPS:-256}
JMH_ARGS=${JMH_ARGS:-"-f 1 -wi 3 -i 3 -w 1 -r 1"}
PROMPT="Once upon a time"
RUNC=$TOOLS/llama2.c/runfast
LBENCH=$TOOLS/llama.cpp/build/bin/llama-bench
LBATCH=$TOOLS/llama.cpp/build/bin/llama-batched-bench
BJAR=benchmarks/target/benchmarks.jar
EJAR=spotserve-examples/target/spotserve-examples.jar
TOK=$SHARED/models/tok512.bin
S260=$SHARED/models/stories260K.bin
OUT=${OUT:-$(mktemp -d /tmp/spotserve-compare.XXXXXX)}
mkdir -p "$OUT" || exit 1
RAW=$OUT/raw.tsv

for f in "$BJAR" "$EJAR"; do
  [ -f "$f" ] || { echo "MISSING $f: build first with: mvn -q -DskipTests package" >&2; exit 1; }
done
for f in "$TOK" "$S260"; do
  [ -f "$f" ] || { echo "MISSING $f: set SHARED to the folder holding models/" >&2; exit 1; }
done
have_runc=1; have_llama=1
[ -x "$RUNC" ] || { have_runc=0; echo "MISSING run.c build at $RUNC (see benchmarks/README.md, 'Anchors'): run.c columns empty" >&2; }
[ -x "$LBENCH" ] && [ -x "$LBATCH" ] || { have_llama=0; echo "MISSING llama.cpp build at $TOOLS/llama.cpp/build/bin (see benchmarks/README.md, 'Anchors'): llama.cpp columns empty" >&2; }
command -v python3 >/dev/null || { echo "MISSING python3 (parses the outputs)" >&2; exit 1; }

M25=$(java -cp "$BJAR" io.spotserve.bench.BenchModel) || { echo "could not write the 25M benchmark model" >&2; exit 1; }
GGUF=$OUT/m25.gguf
if [ $have_llama = 1 ]; then
  python3 benchmarks/cpu/llama2c_to_gguf.py "$M25" "$TOK" "$GGUF" >/dev/null || { echo "GGUF conversion failed (numpy?)" >&2; have_llama=0; }
fi
# one untimed run first (it would write the class-data-sharing archive with SPOTSERVE_CDS=true)
./spotserve generate --model "$M25" --tokenizer "$TOK" --prompt "$PROMPT" --steps 16 --temperature 0 > /dev/null 2>&1 \
  || { echo "./spotserve generate failed" >&2; exit 1; }
load() { cut -d' ' -f1 /proc/loadavg; }
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$(load)" >> "$RAW"; }   # metric threads round value load
: > "$RAW"
echo "results in $OUT (raw.tsv: metric, threads, round, value, load average)"

for r in $(seq 1 "$ROUNDS"); do
  for t in $THREADS; do
    echo "round $r, $t thread(s), load $(load)"
    if [ $have_runc = 1 ]; then
      OMP_NUM_THREADS=$t /usr/bin/time -f "%e %M" -o "$OUT/time" "$RUNC" "$M25" -z "$TOK" -i "$PROMPT" -n "$STEPS" -t 0 \
        > "$OUT/runc-25M.txt" 2> "$OUT/runc.err"
      rec runc_25M_toks "$t" "$r" "$(sed -n 's/achieved tok\/s: //p' "$OUT/runc.err")"
      rec runc_25M_wall_s "$t" "$r" "$(cut -d' ' -f1 "$OUT/time")"
      rec runc_25M_rss_mb "$t" "$r" "$(awk '{printf "%.0f", $2/1024}' "$OUT/time")"
      OMP_NUM_THREADS=$t "$RUNC" "$S260" -z "$TOK" -n "$STEPS" -t 0 > /dev/null 2> "$OUT/runc.err"
      rec runc_260K_toks "$t" "$r" "$(sed -n 's/achieved tok\/s: //p' "$OUT/runc.err")"
    fi
    /usr/bin/time -f "%e %M" -o "$OUT/time" java -jar "$EJAR" generate --model "$M25" --tokenizer "$TOK" \
      --prompt "$PROMPT" --steps "$STEPS" --temperature 0 --threads "$t" > "$OUT/java-25M.txt" 2> "$OUT/java.err"
    rec java_25M_generate_toks "$t" "$r" "$(sed -n 's/.*achieved tok\/s: \([0-9.]*\).*/\1/p' "$OUT/java.err")"
    rec java_25M_wall_s "$t" "$r" "$(cut -d' ' -f1 "$OUT/time")"
    # %M is the largest RSS in the process tree, not the sum: the re-launched child JVM (the parent is ~45 MB)
    rec java_25M_rss_mb "$t" "$r" "$(awk '{printf "%.0f", $2/1024}' "$OUT/time")"
    if [ $have_runc = 1 ]; then
      if cmp -s "$OUT/java-25M.txt" "$OUT/runc-25M.txt"; then rec greedy_text_equal "$t" "$r" 1; else rec greedy_text_equal "$t" "$r" 0; fi
    fi
    # the same through the launcher script: one JVM, no re-launch (the README's commands)
    /usr/bin/time -f "%e %M" -o "$OUT/time" ./spotserve generate --model "$M25" --tokenizer "$TOK" \
      --prompt "$PROMPT" --steps "$STEPS" --temperature 0 --threads "$t" > "$OUT/script-25M.txt" 2> "$OUT/script.err"
    rec script_25M_generate_toks "$t" "$r" "$(sed -n 's/.*achieved tok\/s: \([0-9.]*\).*/\1/p' "$OUT/script.err")"
    rec script_25M_wall_s "$t" "$r" "$(cut -d' ' -f1 "$OUT/time")"
    rec script_25M_rss_mb "$t" "$r" "$(awk '{printf "%.0f", $2/1024}' "$OUT/time")"
    if [ $have_runc = 1 ]; then
      if cmp -s "$OUT/script-25M.txt" "$OUT/runc-25M.txt"; then rec script_text_equal "$t" "$r" 1; else rec script_text_equal "$t" "$r" 0; fi
    fi
    java -Djmh.ignoreLock=true -jar "$BJAR" CpuDecode $JMH_ARGS -p threads="$t" -p vector=true -p batch=1,8 -p model=25M,stories260K \
      -jvmArgsAppend "--add-modules jdk.incubator.vector -Xmx2g -Dspotserve.shared.dir=$SHARED" -rf csv -rff "$OUT/jmh.csv" > "$OUT/jmh.log" 2>&1
    if grep -q "Vector API module is not loaded" "$OUT/jmh.log"; then
      echo "JMH ran the scalar kernels (see $OUT/jmh.log): numbers not comparable" >&2
    fi
    python3 - "$OUT/jmh.csv" "$t" "$r" "$(load)" >> "$RAW" <<'PY'
import csv, sys
path, t, r, load = sys.argv[1:]
for row in csv.DictReader(open(path)):
    if row["Benchmark"].endswith("decodeStep"):
        b, m = int(row["Param: batch"]), row["Param: model"]
        print("java_jmh_%s_b%d_toks\t%s\t%s\t%.1f\t%s" % (m, b, t, r, float(row["Score"]) * b, load))
PY
    if [ $have_llama = 1 ]; then
      "$LBENCH" -m "$GGUF" -p 0 -n 128 -t "$t" -r 1 -o csv > "$OUT/lbench.csv" 2>/dev/null
      rec llama_25M_tg128_toks "$t" "$r" "$(python3 -c "import csv,sys; print([x['avg_ts'] for x in csv.DictReader(open('$OUT/lbench.csv'))][-1])" 2>/dev/null)"
      "$LBATCH" -m "$GGUF" -c 4096 -b 512 -ub 512 -npp 1 -ntg 128 -npl 1,8 -t "$t" > "$OUT/lbatch.txt" 2>/dev/null
      rec llama_25M_b8_toks "$t" "$r" "$(awk -F'|' '$4+0==8 && NF>9 {gsub(/ /,"",$9); print $9}' "$OUT/lbatch.txt" | tail -1)"
      rec llama_25M_b1_toks "$t" "$r" "$(awk -F'|' '$4+0==1 && NF>9 {gsub(/ /,"",$9); print $9}' "$OUT/lbatch.txt" | tail -1)"
    fi
  done
done

python3 - "$RAW" "$THREADS" <<'PY'
import statistics, sys, collections
raw, threads = sys.argv[1], sys.argv[2].split()
vals = collections.defaultdict(list); loads = collections.defaultdict(list)
for line in open(raw):
    m, t, r, v, l = line.rstrip("\n").split("\t")
    if v.strip():
        vals[(m, t)].append(float(v)); loads[(m, t)].append(float(l))
def med(m, t):
    v = vals.get((m, t))
    return statistics.median(v) if v else None
def fmt(x):
    return "-" if x is None else ("%.1f" % x if x < 1000 else "%.0f" % x)
metrics = sorted({m for m, _ in vals})
print("\nmedians over rounds (values per round in brackets; load = 1-min load average range)\n")
print("| metric | threads | median | rounds | load |")
print("|---|---|---|---|---|")
for m in metrics:
    for t in threads:
        if (m, t) in vals:
            ls = loads[(m, t)]
            print("| %s | %s | %s | %s | %.1f-%.1f |" % (m, t, fmt(med(m, t)), ", ".join(fmt(x) for x in vals[(m, t)]), min(ls), max(ls)))
print("\nratios (medians)\n")
def ratio(a, b, t, label):
    x, y = med(a, t), med(b, t)
    if x and y:
        print("- %s, %s thread(s): %.2fx" % (label, t, x / y))
for t in threads:
    ratio("java_jmh_stories260K_b1_toks", "runc_260K_toks", t, "stories260K batch 1, JMH vs run.c")
    ratio("java_jmh_25M_b1_toks", "runc_25M_toks", t, "25M batch 1, JMH vs run.c")
    ratio("java_jmh_25M_b1_toks", "llama_25M_tg128_toks", t, "25M batch 1, JMH vs llama-bench tg128")
    ratio("java_jmh_25M_b8_toks", "java_jmh_25M_b1_toks", t, "25M batch 8 aggregate / batch 1 (JMH)")
    ratio("java_jmh_25M_b8_toks", "llama_25M_b8_toks", t, "25M batch 8 aggregate, JMH vs llama-batched-bench npl 8")
    ratio("java_25M_wall_s", "runc_25M_wall_s", t, "whole-process wall time, java -jar generate vs run.c (lower is better)")
    ratio("script_25M_wall_s", "runc_25M_wall_s", t, "whole-process wall time, ./spotserve generate vs run.c (lower is better)")
    ratio("java_25M_rss_mb", "runc_25M_rss_mb", t, "peak RSS, java -jar generate (the child JVM) vs run.c")
    ratio("script_25M_rss_mb", "runc_25M_rss_mb", t, "peak RSS, ./spotserve generate vs run.c")
PY
