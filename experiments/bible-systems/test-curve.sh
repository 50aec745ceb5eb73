#!/usr/bin/env bash
# Scores every kept epoch checkpoint of a run on the test split (John) with the run's
# [generation] settings (beam 4): `s2s eval --run RUN --epoch N` writes
# RUN/eval/test-epoch-N.json, which `s2s compare` draws against training minutes and tokens.
# Usage: bash experiments/bible-systems/test-curve.sh RUN [EXTRA eval FLAGS…]
# S2S_BIN overrides the binary. An epoch already scored is skipped.
set -euo pipefail
bin=${S2S_BIN:-${CARGO_TARGET_DIR:-target}/release/s2s}
run=$1
shift
for model in "$run"/checkpoint/model-*.mpk; do
  epoch=${model##*/model-}
  epoch=${epoch%.mpk}
  [ -f "$run/eval/test-epoch-$epoch.json" ] && continue
  # Assigned first, so that a failing eval stops the script (set -e ignores a failure inside
  # an argument of echo).
  scores=$("$bin" eval --run "$run" --epoch "$epoch" "$@")
  echo "epoch $epoch: $(cut -c1-80 <<< "$scores" | tr '\n' ' ')"
done
