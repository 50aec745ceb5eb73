//! Small self-contained SVG charts for `s2s bench` (bars) and `s2s compare` (lines): no plotting
//! dependency, readable in any browser and convertible with `rsvg-convert`.

use std::fmt::Write;

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
const DASHES: [&str; 4] = ["none", "7 4", "2 3", "10 3 2 3"];
const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 280.0;
const MARGIN_L: f64 = 70.0;
const TOP: f64 = 60.0;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A value with a few significant digits for axis ticks and bar labels.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        "0".into()
    } else if a >= 100.0 {
        format!("{:.0}", v)
    } else if a >= 10.0 {
        format!("{:.1}", v)
    } else if a >= 1.0 {
        format!("{:.2}", v)
    } else {
        format!("{:.3}", v)
    }
}

/// "Nice" tick values covering [lo, hi].
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut v = (lo / step).floor() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 {
        if v >= lo - step * 1e-9 {
            out.push(v);
        }
        v += step;
    }
    out
}

fn header(out: &mut String, width: f64, height: f64, title: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, Arial, Helvetica, \
         sans-serif\">\n<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"16\" \
         font-weight=\"bold\">{}</text>\n",
        width / 2.0,
        esc(title)
    );
}

/// Axes, grid and labels of one panel; returns the mapping from data to pixels.
struct Frame {
    x0: f64,
    y0: f64,
    xr: (f64, f64),
    yr: (f64, f64),
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        self.x0 + (x - self.xr.0) / (self.xr.1 - self.xr.0).max(1e-12) * PANEL_W
    }
    fn py(&self, y: f64) -> f64 {
        self.y0 + PANEL_H - (y - self.yr.0) / (self.yr.1 - self.yr.0).max(1e-12) * PANEL_H
    }
}

#[allow(clippy::too_many_arguments)]
fn frame(
    out: &mut String,
    index: usize,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    xr: (f64, f64),
    yr: (f64, f64),
    xticks: bool,
) -> Frame {
    let x0 = MARGIN_L + index as f64 * (PANEL_W + MARGIN_L);
    let f = Frame {
        x0,
        y0: TOP + 20.0,
        xr,
        yr,
    };
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\" \
         font-weight=\"bold\">{}</text>",
        x0 + PANEL_W / 2.0,
        f.y0 - 8.0,
        esc(title)
    );
    for t in ticks(yr.0, yr.1) {
        let y = f.py(t);
        let _ = writeln!(
            out,
            "<line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">{}</text>",
            x0 + PANEL_W,
            x0 - 6.0,
            y + 4.0,
            short(t)
        );
    }
    if xticks {
        for t in ticks(xr.0, xr.1) {
            let x = f.px(t);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#e5e5e5\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
                f.y0,
                f.y0 + PANEL_H,
                f.y0 + PANEL_H + 16.0,
                short(t)
            );
        }
    }
    let _ = writeln!(
        out,
        "<rect x=\"{x0}\" y=\"{}\" width=\"{PANEL_W}\" height=\"{PANEL_H}\" fill=\"none\" \
         stroke=\"#888\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" \
         font-size=\"12\">{}</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" \
         font-size=\"12\" transform=\"rotate(-90 {} {})\">{}</text>",
        f.y0,
        x0 + PANEL_W / 2.0,
        f.y0 + PANEL_H + 34.0,
        esc(xlabel),
        x0 - 50.0,
        f.y0 + PANEL_H / 2.0,
        x0 - 50.0,
        f.y0 + PANEL_H / 2.0,
        esc(ylabel)
    );
    f
}

/// One panel of bars: `(label, value)` per bar; a missing value is drawn as "n/a".
pub struct BarPanel {
    pub title: String,
    pub unit: String,
    pub bars: Vec<(String, Option<f64>)>,
}

/// Side-by-side bar panels.
pub fn bars(title: &str, panels: &[BarPanel]) -> String {
    let width = MARGIN_L + panels.len() as f64 * (PANEL_W + MARGIN_L);
    let height = TOP + PANEL_H + 80.0;
    let mut out = String::new();
    header(&mut out, width, height, title);
    for (i, panel) in panels.iter().enumerate() {
        let top = panel
            .bars
            .iter()
            .filter_map(|(_, v)| *v)
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.15;
        let n = panel.bars.len().max(1) as f64;
        let f = frame(
            &mut out,
            i,
            &panel.title,
            "",
            &panel.unit,
            (0.0, n),
            (0.0, top),
            false,
        );
        for (j, (label, value)) in panel.bars.iter().enumerate() {
            let left = f.px(j as f64 + 0.15);
            let w = f.px(j as f64 + 0.85) - left;
            let cx = f.px(j as f64 + 0.5);
            let _ = writeln!(
                out,
                "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}</text>",
                f.y0 + PANEL_H + 16.0,
                esc(label)
            );
            match value {
                Some(v) => {
                    let y = f.py(*v);
                    let _ = writeln!(
                        out,
                        "<rect x=\"{left:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" \
                         fill=\"{}\"/><text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
                         font-size=\"11\">{}</text>",
                        f.py(0.0) - y,
                        COLORS[j % COLORS.len()],
                        y - 4.0,
                        short(*v)
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\" \
                         fill=\"#888\">n/a</text>",
                        f.py(0.0) - 6.0
                    );
                }
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

/// One panel of lines: `(series label, points)`; series keep their color across panels.
pub struct LinePanel {
    pub title: String,
    pub xlabel: String,
    pub ylabel: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// Mark every point (few points, e.g. one per epoch).
    pub markers: bool,
}

/// Side-by-side line panels with one shared legend (series labels of the first panel).
pub fn lines(title: &str, panels: &[LinePanel]) -> String {
    let width = MARGIN_L + panels.len() as f64 * (PANEL_W + MARGIN_L);
    let height = TOP + PANEL_H + 80.0;
    let mut out = String::new();
    header(&mut out, width, height, title);
    let labels: Vec<&str> = panels
        .first()
        .map(|p| p.series.iter().map(|(l, _)| l.as_str()).collect())
        .unwrap_or_default();
    let mut x = width / 2.0
        - labels
            .iter()
            .map(|l| 40.0 + 7.0 * l.len() as f64)
            .sum::<f64>()
            / 2.0;
    for (i, label) in labels.iter().enumerate() {
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"40\" x2=\"{:.1}\" y2=\"40\" stroke=\"{}\" stroke-width=\"3\" \
             stroke-dasharray=\"{}\"/><text x=\"{:.1}\" y=\"44\" font-size=\"12\">{}</text>",
            x + 22.0,
            COLORS[i % COLORS.len()],
            DASHES[i % DASHES.len()],
            x + 28.0,
            esc(label)
        );
        x += 40.0 + 7.0 * label.len() as f64;
    }
    for (i, panel) in panels.iter().enumerate() {
        let points = panel.series.iter().flat_map(|(_, p)| p.iter());
        let (mut xr, mut yr) = ((f64::MAX, f64::MIN), (f64::MAX, f64::MIN));
        for &(px, py) in points {
            xr = (xr.0.min(px), xr.1.max(px));
            yr = (yr.0.min(py), yr.1.max(py));
        }
        if xr.0 > xr.1 {
            let f = frame(
                &mut out,
                i,
                &panel.title,
                &panel.xlabel,
                &panel.ylabel,
                (0.0, 1.0),
                (0.0, 1.0),
                false,
            );
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" \
                 fill=\"#888\">no data</text>",
                f.x0 + PANEL_W / 2.0,
                f.y0 + PANEL_H / 2.0
            );
            continue;
        }
        if xr.0 == xr.1 {
            xr = (xr.0 - 0.5, xr.1 + 0.5);
        }
        let pad = ((yr.1 - yr.0) * 0.08).max(1e-6);
        let yr = (yr.0 - pad, yr.1 + pad);
        let f = frame(
            &mut out,
            i,
            &panel.title,
            &panel.xlabel,
            &panel.ylabel,
            xr,
            yr,
            true,
        );
        for (j, (_, pts)) in panel.series.iter().enumerate() {
            if pts.is_empty() {
                continue;
            }
            let color = COLORS[j % COLORS.len()];
            let path: Vec<String> = pts
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", f.px(x), f.py(y)))
                .collect();
            let _ = writeln!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" \
                 stroke-dasharray=\"{}\"/>",
                path.join(" "),
                DASHES[j % DASHES.len()]
            );
            if panel.markers {
                for &(x, y) in pts {
                    let _ = writeln!(
                        out,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"/>",
                        f.px(x),
                        f.py(y)
                    );
                }
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range_with_round_steps() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(4.8, 5.8);
        assert!(
            t.first().copied().unwrap_or(0.0) >= 4.8 && t.len() >= 4,
            "{t:?}"
        );
    }

    #[test]
    fn bars_scale_to_the_largest_value_and_mark_missing_ones() {
        let svg = bars(
            "t",
            &[BarPanel {
                title: "train".into(),
                unit: "tokens/s".into(),
                bars: vec![
                    ("a".into(), Some(100.0)),
                    ("b".into(), None),
                    ("c".into(), Some(50.0)),
                ],
            }],
        );
        assert_eq!(
            svg.matches("<rect x=").count(),
            2 + 1,
            "two bars and the frame"
        );
        assert!(svg.contains(">n/a<"));
        // The 50 bar is half the height of the 100 bar.
        let bars: Vec<f64> = svg
            .split("<rect x=")
            .skip(1)
            .filter_map(|s| s.split("height=\"").nth(1)?.split('"').next()?.parse().ok())
            .filter(|&h: &f64| h != PANEL_H)
            .collect();
        assert_eq!(bars.len(), 2, "{bars:?}");
        assert!((bars[0] / bars[1] - 2.0).abs() < 0.02, "{bars:?}");
    }
}
