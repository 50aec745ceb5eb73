#!/usr/bin/env bash
# Trains the four runs of this experiment one after the other (same pairs, steps and seed) and
# plots them. Run from the repository root:
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
python3 "$here/plot_runs.py" --out "$here" --title "bible-en-fr: pre-trained BERT vs from scratch" \
  scratch=runs/bert-vs-scratch/scratch frozen=runs/bert-vs-scratch/frozen \
  fine-tuned=runs/bert-vs-scratch/finetuned staged=runs/bert-vs-scratch/staged
# A PNG copy for viewers without SVG support (librsvg2-bin).
if command -v rsvg-convert > /dev/null; then
  rsvg-convert -o "$here/curves.png" "$here/curves.svg"
fi
