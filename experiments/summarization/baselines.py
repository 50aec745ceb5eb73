"""Extractive baselines for experiments/summarization (Python standard library only).

    python3 baselines.py SPLIT.tsv OUT_DIR [N ...]

SPLIT.tsv is a prepared debian-descriptions split (long description<TAB>synopsis). Writes into
OUT_DIR, one line per pair:

- `ref.txt`: the synopses (the references);
- `lead-N.txt` for each N given: the first N words of the description (the "lead" baseline
  of news summarization, counted in words);
- `first-sentence.txt`: the description up to its first sentence end (`.`, `!` or `?`
  followed by white space or the end, where the word before is not a one-letter initial or a
  common abbreviation), without that final punctuation, since synopses carry none (Debian
  Policy §3.4.1).

Scores come from `s2s eval --hyp OUT_DIR/X.txt --ref OUT_DIR/ref.txt --metrics rouge`.
"""

import re
import sys
from pathlib import Path

ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "incl.", "no.", "dr.", "mr."}
SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def first_sentence(text):
    for match in SENTENCE_END.finditer(text):
        word = text[: match.end()].split()[-1].lower()
        if word in ABBREVIATIONS or re.fullmatch(r"[a-z]\.", word):
            continue
        return text[: match.start()].strip()
    return text.strip()


def main():
    split, out = Path(sys.argv[1]), Path(sys.argv[2])
    lead = [int(n) for n in sys.argv[3:]]
    out.mkdir(parents=True, exist_ok=True)
    pairs = [line.rstrip("\n").split("\t") for line in split.open(encoding="utf-8")]
    write = lambda name, lines: (out / name).write_text(
        "".join(line + "\n" for line in lines), encoding="utf-8"
    )
    write("ref.txt", [target for _, target in pairs])
    for n in lead:
        write(f"lead-{n}.txt", [" ".join(source.split()[:n]) for source, _ in pairs])
    write("first-sentence.txt", [first_sentence(source) for source, _ in pairs])


if __name__ == "__main__":
    main()
