#!/usr/bin/env bash
# Training recipes on one budget (16 epochs of 3,000 bible-en-fr pairs, the quickstart model,
# flex, one thread per run, two runs at a time): fixed epochs against early stopping,
# the last checkpoint against the mean of the last five, sentence against token batches,
# per-tensor against global-norm clipping. Test BLEU/chrF (greedy, the first 1,000 test pairs),
# validation curves through `s2s compare`. Run from the repository root:
#   cargo build --release && bash experiments/training-recipes/run.sh
# S2S_BIN overrides the binary; a finished run in runs/ is kept.
set -euo pipefail
bin=${S2S_BIN:-${CARGO_TARGET_DIR:-target}/release/s2s}
here=experiments/training-recipes
config=$here/recipes.toml
"$bin" data prepare bible-en-fr > /dev/null
mkdir -p runs

# name and the --set overrides that make it (all on top of recipes.toml).
variants=(
  "recipes-fixed|"
  "recipes-early-stop|training.early_stopping={ metric = \"valid_loss\", patience = 2 }"
  "recipes-tokens|training.max_tokens=1700"
  "recipes-global-clip|training.grad_clip={ norm = 1.0, kind = \"global\" }"
)

train() {
  local name=$1 set=$2
  if [ -f "runs/$name/report.json" ]; then
    echo "runs/$name is done; remove it to train it again"
    return
  fi
  local args=(train "$config" --no-tui --set "name=$name")
  [ -n "$set" ] && args+=(--set "$set")
  [ -d "runs/$name/checkpoint" ] && args+=(--resume)
  "$bin" "${args[@]}" > "$here/train-$name.txt" 2> "runs/.$name.stderr" || {
    tail -5 "runs/.$name.stderr"; return 1; }
  echo "runs/$name: $(head -1 "$here/train-$name.txt")"
}

# Two at a time (2 cores, one thread each).
pids=()
for variant in "${variants[@]}"; do
  train "${variant%%|*}" "${variant#*|}" &
  pids+=($!)
  if [ ${#pids[@]} -eq 2 ]; then wait "${pids[@]}"; pids=(); fi
done
[ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"

# The mean of the fixed run's last five epoch checkpoints, as a run of its own.
[ -f runs/recipes-fixed-avg5/model.mpk ] || "$bin" average --run runs/recipes-fixed --last 5

: > "$here/test.md"
for name in recipes-fixed recipes-fixed-avg5 recipes-early-stop recipes-tokens recipes-global-clip; do
  echo "## $name" >> "$here/test.md"
  "$bin" eval --run "runs/$name" --split test --max-pairs 1000 >> "$here/test.md"
  echo >> "$here/test.md"
done
"$bin" compare runs/recipes-fixed runs/recipes-early-stop runs/recipes-tokens \
  runs/recipes-global-clip --out "$here"
cat "$here/test.md"
