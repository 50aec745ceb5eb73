#!/usr/bin/env bash
# docs/img/serve-page.png: the page of `s2s serve` (GET /) after generating two verses of John
# with the quickstart run, in headless Chromium (scripts/setup-chromium.sh). Run from the
# repository root once runs/quickstart is trained:
#   cargo build --release && bash docs/img/serve-page.sh [RUN]
set -euo pipefail
bin=${S2S_BIN:-${CARGO_TARGET_DIR:-target}/release/s2s}
run=${1:-runs/quickstart}
chromium=$(scripts/setup-chromium.sh 2>/dev/null)
work=$(mktemp -d)
"$bin" serve --run "$run" --port 0 > "$work/stdout" 2> "$work/stderr" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 600); do
  grep -q '^listening on ' "$work/stdout" && break
  kill -0 "$server" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/stdout")
text=$(python3 -c 'import urllib.parse; print(urllib.parse.quote("In the beginning was the Word, and the Word was with God, and the Word was God.\nJesus wept."))')
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --hide-scrollbars --window-size=1000,1500 \
  --virtual-time-budget=60000 --screenshot="$PWD/docs/img/serve-page.png" \
  "$url/?text=$text&autorun=1" 2> "$work/chromium.log"
echo "wrote docs/img/serve-page.png"
