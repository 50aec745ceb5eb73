#!/usr/bin/env python3
"""Compare burn-train run directories: an SVG chart plus a Markdown table.

Usage:
    python3 plot_runs.py --out DIR LABEL=RUNDIR [LABEL=RUNDIR ...] [--smooth K] [--title T]

Example:
    python3 plot_runs.py --out /tmp/cmp scratch=runs/scratch bert=runs/bert --smooth 100

Reads RUN/train/epoch-N/Loss.log, RUN/valid/epoch-N/{Loss,BLEU}.log and the
optional RUN/report.json, then writes into DIR:
  curves.svg  three panels: training loss vs optimizer step (moving average of
              K batches, default 50), validation loss per epoch, validation
              BLEU per epoch (a note when no run logged BLEU);
  curves.md   one table row per run (the same table is printed to stdout).
Standard library only (no matplotlib). A missing run directory or a run with
no epoch logs is reported in one sentence on stderr with exit status 1.

Aggregation (each .log line is "value,count"):
  * train Loss.log has one line per batch; the step index is the cumulative
    batch count across epochs (epoch 1's batches first, then epoch 2's ...).
  * valid Loss.log: epoch value = count-weighted mean of the lines.  On
    runs/quickstart this gives 5.432 / 4.685 / 4.362, matching the
    "Loss epoch" values printed in experiment.log.
  * valid BLEU.log holds a *running corpus BLEU* (count = sentences scored so
    far), so the epoch value is the LAST line.  Verified on runs/quickstart:
    last line of epoch 3 = 7.73699 = report.json "valid_bleu" = "BLEU epoch
    7.74" in experiment.log (epochs 1/2: 1.07 / 4.80 also match the log); the
    count-weighted mean gives 7.651 (what burn's own summary table shows, which
    is therefore wrong for BLEU) and the plain mean 7.532.
"""
import argparse, json, math, os, re, sys
from xml.sax.saxutils import escape

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
          "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
DASHES = ["none", "7 4", "2 3", "10 3 2 3"]  # so that overlapping runs stay visible


class RunError(Exception):
    """A user-facing problem: reported as one sentence, exit status 1."""


def read_log(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.strip().split(",")
            if len(parts) >= 2 and parts[0]:
                try:
                    rows.append((float(parts[0]), float(parts[1])))
                except ValueError:
                    raise RunError(f"line {n} of '{path}' is not 'value,count'.") from None
    return rows


def epoch_dirs(root):
    """{epoch number: directory} for root/epoch-N."""
    names = os.listdir(root) if os.path.isdir(root) else []
    return {int(n[6:]): os.path.join(root, n) for n in names if re.fullmatch(r"epoch-\d+", n)}


def load_run(label, path):
    if not os.path.isdir(path):
        raise RunError(f"run directory '{path}' (label '{label}') does not exist.")
    train = {e: os.path.join(d, "Loss.log") for e, d in epoch_dirs(os.path.join(path, "train")).items()
             if os.path.isfile(os.path.join(d, "Loss.log"))}
    valid = epoch_dirs(os.path.join(path, "valid"))
    if not train and not any(os.path.isfile(os.path.join(d, "Loss.log")) for d in valid.values()):
        raise RunError(f"run directory '{path}' (label '{label}') has no train/ or valid/ epoch-N/Loss.log files.")
    run = {"label": label, "path": path, "train": [], "vloss": {}, "bleu": {}, "report": {}}
    for e in sorted(train):
        run["train"].extend(v for v, _ in read_log(train[e]))
    for e, d in sorted(valid.items()):
        lp, bp = os.path.join(d, "Loss.log"), os.path.join(d, "BLEU.log")
        if os.path.isfile(lp):
            rows = read_log(lp)
            total = sum(c for _, c in rows)
            if rows and total > 0:
                run["vloss"][e] = sum(v * c for v, c in rows) / total
        if os.path.isfile(bp):
            rows = read_log(bp)
            if rows:
                run["bleu"][e] = rows[-1][0]  # running corpus BLEU: last line
    run["epochs"] = max(list(train) + list(valid))
    try:  # report.json is optional
        with open(os.path.join(path, "report.json")) as f:
            report = json.load(f)
        run["report"] = report if isinstance(report, dict) else {}
    except (OSError, ValueError):
        pass
    return run


def moving_average(values, k):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= k:
            acc -= values[i - k]
        out.append(acc / min(i + 1, k))
    return out


def nice_ticks(lo, hi, n=5, integer=False):
    """Round tick values covering [lo, hi]; returns (axis_lo, axis_hi, ticks)."""
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * 0.999)
    if integer:
        step = max(1, round(step))
    a, b = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    ticks = [a + i * step for i in range(int(round((b - a) / step)) + 1)]
    return a, b, ticks, step


def fmt_tick(v, step):
    if step >= 1000:
        return f"{v / 1000:g}k" if v else "0"
    dec = next(d for d in range(8) if abs(step * 10 ** d - round(step * 10 ** d)) < 1e-6)
    return f"{v:.{dec}f}"


def panel(svg, x0, w, y0, h, title, xlabel, ylabel, series, integer_x=False, note=None):
    """series: list of (color, [(x, y)], draw_points). Plot area is x0..x0+w, y0..y0+h."""
    T = lambda x, y, s, **kw: svg.append(
        f'<text x="{x:.1f}" y="{y:.1f}" ' + " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in kw.items())
        + f">{escape(s)}</text>")
    T(x0 + w / 2, y0 - 10, title, text_anchor="middle", font_size=13, font_weight="bold")
    svg.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    T(x0 + w / 2, y0 + h + 38, xlabel, text_anchor="middle", font_size=12)
    T(x0 - 46, y0 + h / 2, ylabel, text_anchor="middle", font_size=12,
      transform=f"rotate(-90 {x0 - 46:.1f} {y0 + h / 2:.1f})")
    pts = [p for _, ps, _ in series for p in ps]
    if not pts:
        T(x0 + w / 2, y0 + h / 2, note or "no data", text_anchor="middle", font_size=13, fill="#666")
        return
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if integer_x:
        _, _, xt, xstep = nice_ticks(min(xs), max(xs), 6, integer=True)
        xt = [t for t in xt if min(xs) <= t <= max(xs)]
        xa, xb = min(xs) - 0.25, max(xs) + 0.25
    else:
        xa, xb, xt, xstep = nice_ticks(0, max(xs), 5)
    ya, yb, yt, ystep = nice_ticks(min(ys), max(ys), 6)
    X = lambda x: x0 + (x - xa) / (xb - xa) * w
    Y = lambda y: y0 + h - (y - ya) / (yb - ya) * h
    for t in xt:
        svg.append(f'<line x1="{X(t):.1f}" y1="{y0}" x2="{X(t):.1f}" y2="{y0 + h + 5}" stroke="#e5e5e5"/>')
        svg.append(f'<line x1="{X(t):.1f}" y1="{y0 + h}" x2="{X(t):.1f}" y2="{y0 + h + 5}" stroke="#555"/>')
        T(X(t), y0 + h + 18, fmt_tick(t, xstep), text_anchor="middle", font_size=11)
    for t in yt:
        svg.append(f'<line x1="{x0 - 5}" y1="{Y(t):.1f}" x2="{x0 + w}" y2="{Y(t):.1f}" stroke="#e5e5e5"/>')
        svg.append(f'<line x1="{x0 - 5}" y1="{Y(t):.1f}" x2="{x0}" y2="{Y(t):.1f}" stroke="#555"/>')
        T(x0 - 8, Y(t) + 4, fmt_tick(t, ystep), text_anchor="end", font_size=11)
    for i, (color, ps, dots) in enumerate(series):
        if len(ps) > 1:
            coords = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in ps)
            svg.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.8" '
                       f'stroke-linejoin="round" stroke-dasharray="{DASHES[i % len(DASHES)]}"/>')
        if dots or len(ps) == 1:
            svg.extend(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3.5" fill="{color}"/>' for x, y in ps)


def write_svg(runs, k, title, path):
    W, H = 1100, 420
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="DejaVu Sans, Arial, Helvetica, sans-serif">', f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">{escape(title)}</text>']
    items = [(COLORS[i % len(COLORS)], r["label"]) for i, r in enumerate(runs)]  # legend, centred, wrapped
    rows, cur, width = [], [], 0
    for i, (c, lab) in enumerate(items):
        iw = 28 + 7 * len(lab) + 18
        if cur and width + iw > W - 80:
            rows.append((cur, width)); cur, width = [], 0
        cur.append((c, lab, iw, DASHES[i % len(DASHES)])); width += iw
    rows.append((cur, width))
    for ri, (row, width) in enumerate(rows):
        x, y = (W - width) / 2, 44 + 16 * ri
        for c, lab, iw, dash in row:
            svg.append(f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 22:.1f}" y2="{y - 4}" stroke="{c}" '
                       f'stroke-width="3" stroke-dasharray="{dash}"/>')
            svg.append(f'<text x="{x + 28:.1f}" y="{y}" font-size="12">{escape(lab)}</text>')
            x += iw
    top = 80 + 16 * (len(rows) - 1)
    h, pw = H - top - 60, 290
    train, vloss, bleu = [], [], []
    for (c, _), r in zip(items, runs):
        sm = moving_average(r["train"], k)
        stride = max(1, len(sm) // 1000)  # keep the SVG small on long runs
        idx = list(range(0, len(sm), stride)) + ([len(sm) - 1] if sm and (len(sm) - 1) % stride else [])
        train.append((c, [(i + 1, sm[i]) for i in idx], False))
        vloss.append((c, sorted(r["vloss"].items()), True))
        bleu.append((c, sorted(r["bleu"].items()), True))
    panel(svg, 75, pw, top, h, f"Training loss (moving avg, {k} batches)", "optimizer step", "loss", train)
    panel(svg, 440, pw, top, h, "Validation loss", "epoch", "loss", vloss, integer_x=True)
    panel(svg, 795, pw, top, h, "Validation BLEU", "epoch", "BLEU", bleu, integer_x=True, note="no BLEU logged")
    svg.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(svg) + "\n")


def markdown(runs, k):
    has_bleu = any(r["bleu"] for r in runs)
    has_secs = any("seconds" in r["report"] for r in runs)
    has_par = any("parameters" in r["report"] for r in runs)
    head = ["run", "epochs", f"final train loss (last {k})", "valid loss / epoch", "best valid loss"]
    head += ["valid BLEU / epoch"] * has_bleu + ["wall time (s)"] * has_secs + ["parameters"] * has_par
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        tail = r["train"][-k:]
        best = min(r["vloss"].items(), key=lambda kv: kv[1]) if r["vloss"] else None
        row = [r["label"], str(r["epochs"]), f"{sum(tail) / len(tail):.3f}" if tail else "n/a",
               ", ".join(f"{v:.3f}" for _, v in sorted(r["vloss"].items())) or "n/a",
               f"{best[1]:.3f} (epoch {best[0]})" if best else "n/a"]
        if has_bleu:
            row.append(", ".join(f"{v:.2f}" for _, v in sorted(r["bleu"].items())) or "n/a")
        if has_secs:
            s = r["report"].get("seconds")
            row.append(f"{s:.0f}" if isinstance(s, (int, float)) else "n/a")
        if has_par:
            p = r["report"].get("parameters")
            row.append(f"{p:,}" if isinstance(p, int) else "n/a")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description="Compare burn-train runs (SVG chart + Markdown table).")
    ap.add_argument("runs", nargs="+", metavar="LABEL=RUNDIR")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--smooth", type=int, default=50, help="moving-average window in batches (default 50)")
    ap.add_argument("--title", default="Training runs", help="chart title")
    a = ap.parse_args()
    try:
        if a.smooth < 1:
            raise RunError("--smooth must be at least 1.")
        runs = []
        for spec in a.runs:
            label, sep, path = spec.partition("=")
            if not sep or not label or not path:
                raise RunError(f"argument '{spec}' is not of the form LABEL=RUNDIR.")
            runs.append(load_run(label, path))
        os.makedirs(a.out, exist_ok=True)
        write_svg(runs, a.smooth, a.title, os.path.join(a.out, "curves.svg"))
        table = markdown(runs, a.smooth)
        with open(os.path.join(a.out, "curves.md"), "w") as f:
            f.write(table)
    except (RunError, OSError, ValueError) as e:
        print(f"plot_runs.py: error: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
