#!/usr/bin/env bash
# The Transformer quickstart and the RNN quickstart (same data, pairs, batches, steps, seed and
# parameter count) trained one after the other on flex, then compared: curves, test BLEU/chrF,
# training and decoding speed (with the PyTorch column) and attention maps of the same verses.
# Run from the repository root:
#   cargo build --release && bash experiments/rnn-vs-transformer/run.sh
# S2S_BIN overrides the binary; the runs are runs/quickstart and runs/rnn-quickstart (a finished
# run is kept). The bench's pytorch column needs scripts/setup-tch.sh (it is skipped otherwise).
set -euo pipefail
bin=${S2S_BIN:-${CARGO_TARGET_DIR:-target}/release/s2s}
here=experiments/rnn-vs-transformer
for name in quickstart rnn-quickstart; do
  if [ -f "runs/$name/report.json" ]; then
    echo "runs/$name is done; remove it to train it again"
  else
    /usr/bin/time -v "$bin" train "configs/$name.toml" --no-tui 2> "$here/.$name.stderr" || {
      tail -5 "$here/.$name.stderr"; exit 1; }
    grep -E "Maximum resident|Elapsed" "$here/.$name.stderr" || true
  fi
  # Test split (John), the run's generation settings (beam 4).
  "$bin" eval --run "runs/$name" --split test > "$here/test-$name.txt"
  # Training and decoding speed, flex against PyTorch on the same batches.
  if env="$(scripts/setup-tch.sh --env 2>/dev/null)" && [ -f "$env" ]; then
    # shellcheck disable=SC1090
    (source "$env" && "$bin" bench --config "configs/$name.toml" --backends flex,pytorch \
      --out "$here/bench-$name")
  else
    "$bin" bench --config "configs/$name.toml" --backends flex --out "$here/bench-$name"
  fi
  # Cross-attention of the same three verses of John (test split).
  mkdir -p "$here/attention-$name"
  head -3 "$here/verses.txt" | "$bin" generate --run "runs/$name" \
    --attention-out "$here/attention-$name" > "$here/attention-$name/translations.txt"
done
"$bin" compare runs/quickstart runs/rnn-quickstart --out "$here"
