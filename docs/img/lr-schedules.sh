#!/usr/bin/env bash
# docs/img/lr-schedules.png: the learning rate of every batch of four tiny runs that differ only
# in training.lr_schedule (noam with lr_factor = 0.025 peaks near the others' lr = 1e-3), as the
# training loop ran them (Learning_Rate.log), via s2s sweep and
# s2s compare. Seconds on a laptop. Run from the repository root:
#   cargo build --release && bash docs/img/lr-schedules.sh
set -euo pipefail
bin=${S2S_BIN:-${CARGO_TARGET_DIR:-target}/release/s2s}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/schedules.toml" <<TOML
[model]
max_positions = 64
dropout = 0.0
[model.encoder]
d_model = 16
n_heads = 2
n_layers = 1
d_ff = 32
[model.decoder]
d_model = 16
n_heads = 2
n_layers = 1
d_ff = 32
[data]
train = "$PWD/tests/fixtures/bible-en-fr-train.tsv"
valid = "$PWD/tests/fixtures/bible-en-fr-valid.tsv"
max_source_len = 64
max_target_len = 64
[data.tokenizer]
vocab_size = 300
[training]
epochs = 5
batch_size = 4
bucket_pool = 0
warmup_steps = 40
lr_factor = 0.025
lr = 1e-3
seed = 1
samples = 0
metric_pairs = 0
TOML
"$bin" sweep "$work/schedules.toml" --out "$work/sweep" \
  --grid training.lr_schedule=noam,inverse_sqrt,linear,cosine > /dev/null
cp "$work/sweep/compare/compare.png" docs/img/lr-schedules.png
echo "wrote docs/img/lr-schedules.png"
