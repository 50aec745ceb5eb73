#!/usr/bin/env bash
# Makes the two fonts that the PNG charts of `s2s bench` and `s2s compare` are drawn with
# (src/chart.rs, through plotters' ab_glyph, so no system font library is needed): DejaVu Sans
# and DejaVu Sans Bold 2.37 as Debian's fonts-dejavu-core 2.37-6 installs them (sha256
# abdc775b…82322 and 0d977336…c96), cut down to Latin-1, Latin Extended-A and the punctuation,
# arrows and math signs that run names and titles use: 33 KB and 28 KB instead of 760 KB and
# 709 KB. Needs fonttools (made with `pip install fonttools==4.68.0`). Run from this folder.
# Licence: LICENSE beside this file (Bitstream Vera and Arev; DejaVu changes are public domain).
set -euo pipefail
src=${DEJAVU_DIR:-/usr/share/fonts/truetype/dejavu}
unicodes="U+0020-007E,U+00A0-017F,U+2010-2027,U+2030-203A,U+2190-2193,U+2212,U+2248,U+2264,U+2265"
for face in DejaVuSans DejaVuSans-Bold; do
  pyftsubset "$src/$face.ttf" --unicodes="$unicodes" --layout-features=kern --no-hinting \
    --desubroutinize --drop-tables+=FFTM --output-file="$face-Latin.ttf"
done
