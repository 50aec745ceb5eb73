#!/usr/bin/env bash
# Summarization of Debian package descriptions: a Transformer trained from scratch
# (configs/summarize-debian.toml) and the pre-trained MiniLM encoder with a small decoder
# (configs/bert2transformer-summarize.toml), both on flex, against two extractive baselines
# (the first N words, N chosen on the validation split; the first sentence). ROUGE on the test
# split, learning curves and sample summaries. Run from the repository root:
#   cargo build --release && bash experiments/summarization/run.sh
# S2S_BIN overrides the binary; a finished run in runs/ is kept.
set -euo pipefail
bin=${S2S_BIN:-${CARGO_TARGET_DIR:-target}/release/s2s}
here=experiments/summarization
data=$("$bin" data prepare debian-descriptions | sed -n 's/^debian-descriptions is ready in //p')
work=$here/outputs
mkdir -p "$work"

# Baselines. Lead-N: N picked by ROUGE-L on the validation split, then scored on test.
python3 "$here/baselines.py" "$data/valid.tsv" "$work/valid" 4 5 6 7 8 9 10 12 15
best_n=0 best_l=-1
for n in 4 5 6 7 8 9 10 12 15; do
  # The line ends "= R1/R2/RL/RLsum (F1 of …)": ROUGE-L is the third number.
  rouge_l=$("$bin" eval --hyp "$work/valid/lead-$n.txt" --ref "$work/valid/ref.txt" \
    --metrics rouge | sed -n 's|.* = [0-9.]*/[0-9.]*/\([0-9.]*\)/.*|\1|p')
  echo "lead-$n on valid: ROUGE-L $rouge_l"
  if python3 -c "import sys; sys.exit(0 if $rouge_l > $best_l else 1)"; then
    best_n=$n best_l=$rouge_l
  fi
done
echo "lead-N: N = $best_n (valid ROUGE-L $best_l)" | tee "$here/lead-n.txt"
python3 "$here/baselines.py" "$data/test.tsv" "$work/test" "$best_n"
for system in "lead-$best_n" first-sentence; do
  "$bin" eval --hyp "$work/test/$system.txt" --ref "$work/test/ref.txt" --metrics rouge,bleu \
    > "$here/test-$system.txt"
done

for name in summarize-debian bert2transformer-summarize; do
  if [ -f "runs/$name/report.json" ]; then
    echo "runs/$name is done; remove it to train it again"
  else
    /usr/bin/time -v "$bin" train "configs/$name.toml" --no-tui 2> "$here/.$name.stderr" || {
      tail -5 "$here/.$name.stderr"; exit 1; }
    grep -E "Maximum resident|Elapsed" "$here/.$name.stderr" || true
  fi
  # Test split with the run's generation settings (beam 4, no repeated trigram).
  "$bin" eval --run "runs/$name" --split test --metrics rouge,bleu --output "$work/test/$name.txt" \
    > "$here/test-$name.txt"
done
"$bin" compare runs/summarize-debian runs/bert2transformer-summarize --out "$here"

# Sample summaries: the first 8 test descriptions, each system's synopsis beside the reference.
python3 - "$data/test.tsv" "$work/test" "lead-$best_n" > "$here/samples.md" <<'PY'
import sys
from pathlib import Path
pairs = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8")]
out = Path(sys.argv[2])
systems = [sys.argv[3], "first-sentence", "summarize-debian", "bert2transformer-summarize"]
lines = {s: (out / f"{s}.txt").read_text(encoding="utf-8").splitlines() for s in systems}
print("# Sample summaries (test split, first 8 pairs)\n")
for i, (source, reference) in enumerate(pairs[:8]):
    words = source.split()
    print(f"## {i + 1}\n\n> {' '.join(words[:60])}{' …' if len(words) > 60 else ''}\n")
    print(f"- reference: {reference}")
    for s in systems:
        print(f"- {s}: {lines[s][i]}")
    print()
PY
cat "$here"/test-*.txt
