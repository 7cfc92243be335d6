#!/usr/bin/env bash
# Regenerates the run.c reference outputs in this folder. See README.md.
# Needs two builds of Karpathy's run.c (NOT part of this repository):
#   RUNC      plain build:        gcc -O3 -o runc run.c -lm
#   RUNC_IDS  instrumented build: same source with token ids written to stderr (see README.md)
# Usage: RUNC=/tmp/runc/runc RUNC_IDS=/tmp/runc/runc_ids SHARED=../shared ./make-references.sh
set -euo pipefail
: "${RUNC:?path to run.c binary}" "${RUNC_IDS:?path to instrumented run.c binary}" "${SHARED:?path to shared/}"
cd "$(dirname "$0")"
MODEL="$SHARED/models/stories260K.bin"
TOK="$SHARED/models/tok512.bin"
CASES=cases.tsv   # name <TAB> run.c options after "-z tok512.bin" (bash words, eval'd)
while IFS=$'\t' read -r name opts; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  eval "args=($opts)"
  "$RUNC" "$MODEL" -z "$TOK" "${args[@]}" > "$name.stdout" 2>/dev/null
  "$RUNC_IDS" "$MODEL" -z "$TOK" "${args[@]}" 2> "$name.ids.tmp" > "$name.stdout.check"
  cmp "$name.stdout" "$name.stdout.check"   # instrumentation must not change stdout
  grep -E '^(PROMPT_IDS|IDS)' "$name.ids.tmp" > "$name.ids"
  rm "$name.ids.tmp" "$name.stdout.check"
done < "$CASES"

# index.json: one entry per case, for Java tests and the generate CLI
python3 - <<'PY'
import json, shlex
entries = []
for line in open("cases.tsv", encoding="utf-8"):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    name, opts = line.split("\t")
    a = shlex.split(opts)
    o = dict(zip(a[0::2], a[1::2]))
    ids = {l.split()[0]: [int(x) for x in l.split()[1:]] for l in open(name + ".ids")}
    steps = int(o.get("-n", "256"))
    entries.append({
        "name": name,
        "command": "run stories260K.bin -z tok512.bin " + opts,
        "prompt": o.get("-i"),
        "temperature": float(o.get("-t", "1.0")),
        "topp": float(o.get("-p", "0.9")),
        "seed": int(o["-s"]) if "-s" in o else None,
        "steps": steps,
        "effectiveSteps": 512 if steps <= 0 or steps > 512 else steps,
        "stdout": name + ".stdout",
        "promptTokens": ids["PROMPT_IDS"],
        "tokens": ids["IDS"],
        "stoppedOnBos": len(ids["IDS"]) > 1 and ids["IDS"][-1] == 1,
    })
with open("index.json", "w", encoding="utf-8") as f:
    f.write('{"model": "stories260K.bin", "tokenizer": "tok512.bin", "cases": [\n')
    f.write(",\n".join(json.dumps(e, ensure_ascii=False) for e in entries))
    f.write("\n]}\n")
PY
rm -f ./*.ids
