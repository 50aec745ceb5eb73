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

# 4. The other two systems on English → French, side by side with one thread each (about an
#    hour): the LSTM with attention, and the frozen MiniLM encoder with the Transformer's decoder.
config=configs/bible-rnn.toml train bible-en-fr-rnn --set training.threads=1 &
rnn=$!
config=configs/bible-minilm.toml train bible-en-fr-minilm --set training.threads=1 &
minilm=$!
status=0
wait "$rnn" || status=$?
wait "$minilm" || status=$?
[ "$status" -eq 0 ] || exit "$status"

# 5. French → English: the Transformer's config with the pair reversed, 3 epochs on one thread;
#    then the LSTM on English → German and → Spanish, 6 epochs each, side by side.
train bible-fr-en-transformer --set data.reverse=true --set training.epochs=3 \
  --set training.keep_checkpoints=3 --set training.threads=1
rnn6=(--set training.epochs=6 --set training.keep_checkpoints=6 --set training.threads=1)
config=configs/bible-rnn.toml train bible-en-de-rnn --set 'data.corpus="bible-en-de"' "${rnn6[@]}" &
rnn_de=$!
config=configs/bible-rnn.toml train bible-en-es-rnn --set 'data.corpus="bible-en-es"' "${rnn6[@]}" &
rnn_es=$!
wait "$rnn_de" || status=$?
wait "$rnn_es" || status=$?
[ "$status" -eq 0 ] || exit "$status"

# 6. Every epoch's checkpoint on the test split (John, beam 4), then the curves and tables
#    (the Transformer's en → fr curve is in compare.png, the other two systems' in systems/).
for run in bible-en-fr-transformer bible-en-de-transformer bible-en-es-transformer \
  bible-en-fr-rnn bible-en-fr-minilm bible-fr-en-transformer bible-en-de-rnn bible-en-es-rnn; do
  bash "$here/test-curve.sh" "runs/$run"
  cp -r "runs/$run/eval" "$here/$run/"
done
"$bin" compare runs/bible-en-fr-transformer runs/bible-en-de-transformer \
  runs/bible-en-es-transformer --out "$here"
"$bin" compare runs/bible-en-fr-rnn runs/bible-en-fr-minilm --out "$here/systems"
"$bin" compare runs/bible-fr-en-transformer --out "$here/bible-fr-en-transformer"
"$bin" compare runs/bible-en-de-rnn runs/bible-en-es-rnn --out "$here/rnn-pairs"

# 7. The copy baseline and the Ostervald-against-Segond ceiling.
bash "$here/references.sh"
