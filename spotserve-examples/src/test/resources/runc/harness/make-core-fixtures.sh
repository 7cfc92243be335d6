#!/usr/bin/env bash
# Regenerates the run.c fixtures of spotserve-core's tests (see ../README.md, "Related fixtures").
# Usage: RUNC_SRC=/tmp/runc/run.c SHARED=/path/to/shared ./make-core-fixtures.sh
# RUNC_SRC: Karpathy's run.c with main() under #ifndef TESTING (as upstream) plus the two hooks of
# ../README.md (-DIDS: ids to stderr; -DDUMP=N: the first N sampled logit rows to $DUMP_LOGITS).
set -euo pipefail
: "${RUNC_SRC:?run.c}" "${SHARED:?shared/}"
here="$(cd "$(dirname "$0")" && pwd)"
core="$here/../../../../../../spotserve-core/src/test/resources/io/spotserve"
work="$(mktemp -d)"
cp "$RUNC_SRC" "$work/run.c"; cp "$here"/*.c "$here/encode_cases.py" "$work/"
cd "$work"
gcc -O2 -o tok_oracle tok_oracle.c -lm
gcc -O2 -o rng_oracle rng_oracle.c -lm
gcc -O3 -DIDS=1 -DDUMP=24 -o runc_dump run.c -lm
python3 encode_cases.py "$here/../greedy-empty-256.stdout"
T="$SHARED/models/tok512.bin"; M="$SHARED/models/stories260K.bin"
{ printf '# hex(UTF-8 text)\trun.c encode(text, bos=1, eos=0)\trun.c encode(text, bos=0, eos=1)\n'; ./tok_oracle "$T" 512 cases.hex; } > "$core/model/tok512-encode-runc.tsv"
{ printf '# hex(bytes, invalid UTF-8)\trun.c encode(bytes, bos=1, eos=0)\trun.c encode(bytes, bos=0, eos=1)\n'; ./tok_oracle "$T" 512 cases_bytes.hex; } > "$core/model/tok512-encode-bytes-runc.tsv"
{ printf '# prev\ttoken\thex(run.c decode(prev, token))\thex(bytes run.c safe_printf writes)\n'; ./tok_oracle "$T" 512 decode; } > "$core/model/tok512-decode-runc.tsv"
{ echo '# random_u32 / state after, then random_f32 (%.9g, %a), from run.c'"'"'s xorshift64* (see exec tests)'
  for s in 133742 18446744073709551611 1; do echo "seed $s"; ./rng_oracle $s; done; } > "$core/exec/runc-rng.txt"
printf '# name\ttemperature\ttopp\tseed\tids sampled by run.c from the 24 logit rows in <name>.logits (float32 LE, 512 per row)\n' > "$core/exec/runc-sampler-cases.tsv"
while read -r name t p s n prompt; do
  args=(-t "$t" -p "$p" -n "$n"); [[ "$s" != 0 ]] && args+=(-s "$s"); [[ -n "$prompt" ]] && args+=(-i "$prompt")
  DUMP_LOGITS="$core/exec/$name.logits" ./runc_dump "$M" -z "$T" "${args[@]}" 2> ids.txt > /dev/null
  python3 - "$name" "$t" "$p" "$s" >> "$core/exec/runc-sampler-cases.tsv" <<'PY'
import sys
name, t, p, s = sys.argv[1:]
ids = {l.split()[0]: l.split()[1:] for l in open("ids.txt") if l.startswith(("PROMPT_IDS", "IDS"))}
k = len(ids["PROMPT_IDS"])
print("\t".join([name, t, p, s, " ".join(ids["IDS"][k:k + 24])]))
PY
done <<'CASES'
greedy-once-128 0 0.9 0 128 Once upon a time
topp-empty-s133742 1.0 0.9 133742 256
topp-t08-s7-128 0.8 0.5 7 128
mult-empty-s12345-128 1.0 1.0 12345 128
mult-t12-s99-96 1.2 0 99 96 Lily and Ben
CASES
rm -rf "$work"
