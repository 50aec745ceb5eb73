#!/usr/bin/env bash
# The bible-* results (README "Results", experiments/bible-systems/README.md), from the
# repository root on a 2-core machine, after `scripts/setup-tch.sh` and a release build with
# tch (`source "$(scripts/setup-tch.sh --env)"; cargo build --release --features tch`):
#   bash experiments/bible-systems/run.sh
# S2S_BIN overrides the binary; a finished run in runs/ is kept, a started one is resumed.
set -euo pipefail
bin=${S2S_BIN:-${CARGO_TARGET_DIR:-target}/release/s2s}
export S2S_BIN=$bin
here=experiments/bible-systems
config=configs/bible-transformer.toml
mkdir -p runs

# train NAME [--set …]: one run of the config; its log (stderr), config and report are kept in
# $here/NAME/ (not the weights).
train() {
  local name=$1
  shift
  if [ -f "runs/$name/report.json" ]; then
    echo "runs/$name is done; remove it to train it again"
    return
  fi
  local args=(train "$config" --no-tui --set "name=$name" "$@")
  [ -d "runs/$name/checkpoint" ] && args+=(--resume)
  mkdir -p "$here/$name"
  "$bin" "${args[@]}" > /dev/null 2> "$here/$name/train.log" || {
    tail -5 "$here/$name/train.log"; return 1; }
  cp "runs/$name/config.toml" "runs/$name/report.md" "runs/$name/report.json" "$here/$name/"
  echo "runs/$name: $(grep -m1 'valid BLEU' "runs/$name/report.md")"
}

# 1. The sweep that chose the peak learning rate and the batch size (4 × 1 epoch).
bash "$here/sweep.sh"

# 2. English → French on both cores: 10 epochs, about 58 minutes.
train bible-en-fr-transformer

# 3. English → German on one thread (in the recorded session beside builds and tests on the
#    other core), then English → Spanish on both cores; 3 epochs each.
train bible-en-de-transformer --set 'data.corpus="bible-en-de"' --set training.epochs=3 \
  --set training.keep_checkpoints=3 --set training.threads=1
train bible-en-es-transformer --set 'data.corpus="bible-en-es"' --set training.epochs=3 \
  --set training.keep_checkpoints=3

# 4. Every epoch's checkpoint on the test split (John, beam 4), then the curves and tables.
for pair in en-fr en-de en-es; do
  bash "$here/test-curve.sh" "runs/bible-$pair-transformer"
  cp -r "runs/bible-$pair-transformer/eval" "$here/bible-$pair-transformer/"
done
"$bin" compare runs/bible-en-fr-transformer runs/bible-en-de-transformer \
  runs/bible-en-es-transformer --out "$here"

# 5. The copy baseline and the Ostervald-against-Segond ceiling.
bash "$here/references.sh"
