#!/usr/bin/env bash
# Trains the four runs of this experiment one after the other (same pairs, steps and seed) and
# plots them with `s2s compare`. Run from the repository root:
#   cargo build --release && bash experiments/bert-vs-scratch/run.sh
# S2S_BIN overrides the binary; runs go to runs/bert-vs-scratch/<name>.
set -euo pipefail
bin=${S2S_BIN:-${CARGO_TARGET_DIR:-target}/release/s2s}
here=experiments/bert-vs-scratch
for run in scratch frozen finetuned staged; do
  if [ -f "runs/bert-vs-scratch/$run/report.json" ]; then
    echo "runs/bert-vs-scratch/$run is done; remove it to train it again"
    continue
  fi
  /usr/bin/time -v "$bin" train "$here/$run.toml" 2> "$here/.$run.stderr" || {
    tail -5 "$here/.$run.stderr"; exit 1; }
  grep -E "Maximum resident|Elapsed" "$here/.$run.stderr" || true
done
# The curves and the table: compare.svg, compare.png and compare.md here (`s2s compare`).
"$bin" compare runs/bert-vs-scratch/scratch runs/bert-vs-scratch/frozen \
  runs/bert-vs-scratch/finetuned runs/bert-vs-scratch/staged --out "$here" --smooth 50
