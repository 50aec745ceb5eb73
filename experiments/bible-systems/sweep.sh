#!/usr/bin/env bash
# The small sweep that chose configs/bible-transformer.toml's peak learning rate and batch
# size: 2 × 2 points, each one epoch of the whole bible-en-fr training split (cosine decay to 0
# over that epoch, 100 warm-up steps) on tch with one thread, two at a time on 2 cores.
# Writes runs/bible-sweep/{sweep.md,sweep.json,compare/} and copies the table here (sweep/). S2S_BIN overrides the binary.
set -euo pipefail
bin=${S2S_BIN:-${CARGO_TARGET_DIR:-target}/release/s2s}
"$bin" sweep configs/bible-transformer.toml \
  --grid training.lr=1e-3,3e-3 --grid training.max_tokens=2048,6144 \
  --set training.epochs=1 --set training.warmup_steps=100 --set training.threads=1 \
  --set training.keep_checkpoints=1 --parallel 2 --out runs/bible-sweep
mkdir -p experiments/bible-systems/sweep
cp runs/bible-sweep/sweep.md runs/bible-sweep/sweep.json experiments/bible-systems/sweep/
