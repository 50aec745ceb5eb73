//! The charts of `s2s bench` (bars) and `s2s compare` (lines), drawn with plotters: one figure
//! of side-by-side panels, written as SVG (its text set by the viewer's fonts) and as PNG
//! (rasterised with the DejaVu Sans subset in `assets/fonts/`, so that no system font library
//! is needed).

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Series and bar colours, in order (matplotlib's "tab10").
const COLORS: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
];
/// Dash and gap lengths in pixels per series (`None`: solid), so that runs whose curves
/// overlap stay visible.
const DASHES: [Option<(u32, u32)>; 4] = [None, Some((7, 4)), Some((2, 3)), Some((12, 4))];
const GRID: RGBColor = RGBColor(0xe5, 0xe5, 0xe5);
const FRAME: RGBColor = RGBColor(0x88, 0x88, 0x88);
const MUTED: RGBColor = RGBColor(0x88, 0x88, 0x88);
/// Pixels: a panel is `MARGIN_L` (its y axis) + `PLOT_W` wide and `PANEL_H` high (its title,
/// plot and x axis, `X_AXIS_H` of it); the figure's title and legend take `TOP` above the panels,
/// and `MARGIN_L` stays free right of the last one.
const PLOT_W: u32 = 360;
const PANEL_H: u32 = 360;
const MARGIN_L: u32 = 70;
const TOP: u32 = 60;
const X_AXIS_H: u32 = 60;
/// Room between a panel's left edge and its rotated y-axis label.
const AXIS_DESC_GAP: u32 = 10;
/// The family plotters asks for; both faces of the bundled font are registered under it.
const FAMILY: &str = "sans-serif";

/// A value with a few significant digits for axis ticks and bar labels.
fn short(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else {
        // Learning rates: 8.0e-4, not 0.001.
        format!("{v:.1e}")
    }
}

/// One panel of bars: `(label, value)` per bar; a missing value is drawn as "n/a".
#[derive(Debug)]
pub struct BarPanel {
    pub title: String,
    pub unit: String,
    pub bars: Vec<(String, Option<f64>)>,
}

/// One panel of lines: `(series label, points)`; a series keeps its colour and dash across
/// panels.
#[derive(Debug)]
pub struct LinePanel {
    pub title: String,
    pub xlabel: String,
    pub ylabel: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// Mark every point (few points, e.g. one per epoch).
    pub markers: bool,
}

/// The panels of a figure, all of one kind.
#[derive(Debug)]
pub enum Panels {
    Bars(Vec<BarPanel>),
    /// With one legend above them: the series labels of the first panel.
    Lines(Vec<LinePanel>),
}

/// A titled row of panels.
#[derive(Debug)]
pub struct Figure {
    pub title: String,
    pub panels: Panels,
}

pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

pub fn font(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

pub fn bold(size: f64) -> TextStyle<'static> {
    (FAMILY, size, FontStyle::Bold).into_font().color(&BLACK)
}

/// Registers the bundled faces with plotters once; every text it lays out (SVG included: it
/// measures labels to place them) needs them.
fn register_fonts() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let regular = include_bytes!("../assets/fonts/DejaVuSans-Latin.ttf");
        let bold = include_bytes!("../assets/fonts/DejaVuSans-Bold-Latin.ttf");
        plotters::style::register_font(FAMILY, FontStyle::Normal, regular).is_ok()
            && plotters::style::register_font(FAMILY, FontStyle::Bold, bold).is_ok()
    });
    if !ok {
        bail!("the chart font in assets/fonts is not a valid font file");
    }
    Ok(())
}

/// A picture plotters can draw on any backend: written as SVG and PNG by the same code.
pub trait Drawable {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);

    /// Draws the picture on `root`.
    ///
    /// # Errors
    /// Whatever the drawing backend reports.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;

    /// The picture as an SVG document.
    ///
    /// # Errors
    /// If plotters cannot lay out the picture.
    fn svg(&self) -> anyhow::Result<String> {
        register_fonts()?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.size()).into_drawing_area();
            self.draw(&root)
                .and_then(|()| root.present())
                .map_err(|e| anyhow!("cannot draw the chart: {e}"))?;
        }
        Ok(svg)
    }

    /// The picture as a PNG image (8-bit RGB).
    ///
    /// # Errors
    /// If plotters cannot draw the picture or the PNG encoder fails.
    fn png(&self) -> anyhow::Result<Vec<u8>> {
        register_fonts()?;
        let (width, height) = self.size();
        let mut pixels = vec![0u8; width as usize * height as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
            self.draw(&root)
                .and_then(|()| root.present())
                .map_err(|e| anyhow!("cannot draw the chart: {e}"))?;
        }
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .context("cannot encode the chart as PNG")?;
        writer
            .write_image_data(&pixels)
            .context("cannot encode the chart as PNG")?;
        writer.finish().context("cannot encode the chart as PNG")?;
        Ok(png)
    }

    /// Writes `dir/<stem>.svg` and `dir/<stem>.png`.
    ///
    /// # Errors
    /// If the picture cannot be drawn or a file cannot be written.
    fn write(&self, dir: &Path, stem: &str) -> anyhow::Result<()> {
        for (path, bytes) in [
            (dir.join(format!("{stem}.svg")), self.svg()?.into_bytes()),
            (dir.join(format!("{stem}.png")), self.png()?),
        ] {
            s2s_data::write_atomic(&path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// Panels per row, at most: more make rows of equal length (5 → 3 + 2, 11 → 4 + 4 + 3).
const MAX_COLUMNS: u32 = 4;

impl Figure {
    /// (rows, columns) of the panel grid.
    fn grid(&self) -> (u32, u32) {
        let n = match &self.panels {
            Panels::Bars(p) => p.len(),
            Panels::Lines(p) => p.len(),
        } as u32;
        let rows = n.div_ceil(MAX_COLUMNS).max(1);
        (rows, n.div_ceil(rows).max(1))
    }
}

impl Drawable for Figure {
    fn size(&self) -> (u32, u32) {
        let (rows, cols) = self.grid();
        (MARGIN_L + cols * (MARGIN_L + PLOT_W), TOP + rows * PANEL_H)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let (width, _) = root.dim_in_pixel();
        let centre = Pos::new(HPos::Center, VPos::Center);
        root.draw(&Text::new(
            self.title.as_str(),
            (width as i32 / 2, 18),
            bold(20.0).pos(centre),
        ))?;
        let (_, cols) = self.grid();
        let panel = |i: usize| {
            let (row, col) = (i as u32 / cols, i as u32 % cols);
            let (x, y) = (col * (MARGIN_L + PLOT_W), TOP + row * PANEL_H);
            root.clone().shrink((x, y), (MARGIN_L + PLOT_W, PANEL_H))
        };
        match &self.panels {
            Panels::Bars(panels) => {
                for (i, p) in panels.iter().enumerate() {
                    draw_bars(&panel(i), p)?;
                }
            }
            Panels::Lines(panels) => {
                if let Some(first) = panels.first() {
                    let labels: Vec<&str> = first.series.iter().map(|(l, _)| l.as_str()).collect();
                    draw_legend(root, &labels)?;
                }
                for (i, p) in panels.iter().enumerate() {
                    draw_lines(&panel(i), p)?;
                }
            }
        }
        Ok(())
    }
}

fn dash_style(i: usize) -> (ShapeStyle, Option<(u32, u32)>) {
    (
        COLORS[i % COLORS.len()].stroke_width(2),
        DASHES[i % DASHES.len()],
    )
}

/// One row of `line label` items, centred under the title.
fn draw_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: &[&str],
) -> DrawResult<DB> {
    let text = font(15.0);
    let widths = labels
        .iter()
        .map(|l| {
            root.estimate_text_size(l, &text)
                .map(|(w, _)| w as i32 + 46)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (width, _) = root.dim_in_pixel();
    let mut x = width as i32 / 2 - widths.iter().sum::<i32>() / 2;
    let y = 44;
    for (i, (label, w)) in labels.iter().zip(widths).enumerate() {
        let (style, dash) = dash_style(i);
        let style = style.stroke_width(3);
        let line = [(x, y), (x + 22, y)];
        match dash {
            None => root.draw(&PathElement::new(line, style))?,
            Some((on, off)) => root.draw(&DashedPathElement::new(line, on, off, style))?,
        }
        root.draw(&Text::new(
            *label,
            (x + 28, y),
            text.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += w;
    }
    Ok(())
}

/// The frame around a panel's plotting area (plotters draws only the two axes).
fn draw_frame<DB: DrawingBackend>(
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
) -> DrawResult<DB> {
    let (x, y) = (chart.x_range(), chart.y_range());
    chart.plotting_area().draw(&Rectangle::new(
        [(x.start, y.start), (x.end, y.end)],
        FRAME.stroke_width(1),
    ))
}

fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &LinePanel,
) -> DrawResult<DB> {
    let points = panel.series.iter().flat_map(|(_, p)| p.iter());
    let (mut xr, mut yr) = ((f64::MAX, f64::MIN), (f64::MAX, f64::MIN));
    for &(x, y) in points {
        xr = (xr.0.min(x), xr.1.max(x));
        yr = (yr.0.min(y), yr.1.max(y));
    }
    let empty = xr.0 > xr.1;
    // Epochs and optimizer steps: ticks on whole numbers only (at most six of them).
    let whole_x = panel
        .series
        .iter()
        .flat_map(|(_, p)| p.iter())
        .all(|(x, _)| x.fract() == 0.0);
    let x_ticks = if whole_x {
        ((xr.1 - xr.0).max(0.0) as usize + 1).min(6)
    } else {
        6
    };
    let x_format = move |v: &f64| {
        if whole_x {
            format!("{v:.0}")
        } else {
            short(*v)
        }
    };
    if empty {
        (xr, yr) = ((0.0, 1.0), (0.0, 1.0));
    } else {
        if xr.0 == xr.1 {
            xr = (xr.0 - 0.5, xr.1 + 0.5);
        }
        let pad = ((yr.1 - yr.0) * 0.08).max(1e-6);
        yr = (yr.0 - pad, yr.1 + pad);
    }
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, bold(16.0))
        .margin_left(AXIS_DESC_GAP)
        .y_label_area_size(MARGIN_L - AXIS_DESC_GAP)
        .x_label_area_size(X_AXIS_H)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .axis_style(FRAME)
        .x_labels(x_ticks)
        .y_labels(6)
        .x_label_formatter(&x_format)
        .y_label_formatter(&|v| short(*v))
        .label_style(font(13.5))
        .axis_desc_style(font(15.0))
        .x_desc(&panel.xlabel)
        .y_desc(&panel.ylabel);
    if empty {
        mesh.disable_mesh().x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    draw_frame(&chart)?;
    if empty {
        return chart.plotting_area().draw(&Text::new(
            "no data",
            (0.5, 0.5),
            font(15.0)
                .color(&MUTED)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ));
    }
    for (i, (_, pts)) in panel.series.iter().enumerate() {
        let (style, dash) = dash_style(i);
        match dash {
            None => {
                chart.draw_series(LineSeries::new(pts.iter().copied(), style))?;
            }
            Some((on, off)) => {
                chart.draw_series(DashedLineSeries::new(pts.iter().copied(), on, off, style))?;
            }
        }
        if panel.markers {
            let fill = COLORS[i % COLORS.len()].filled();
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, fill)))?;
        }
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &BarPanel,
) -> DrawResult<DB> {
    let n = panel.bars.len().max(1);
    let top = panel
        .bars
        .iter()
        .filter_map(|(_, v)| *v)
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, bold(16.0))
        .margin_left(AXIS_DESC_GAP)
        .y_label_area_size(MARGIN_L - AXIS_DESC_GAP)
        .x_label_area_size(X_AXIS_H)
        .build_cartesian_2d(0.0..n as f64, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .axis_style(FRAME)
        .y_labels(6)
        .y_label_formatter(&|v| short(*v))
        .label_style(font(13.5))
        .axis_desc_style(font(15.0))
        .y_desc(&panel.unit)
        .draw()?;
    draw_frame(&chart)?;
    let below = Pos::new(HPos::Center, VPos::Top);
    let above = Pos::new(HPos::Center, VPos::Bottom);
    for (j, (label, value)) in panel.bars.iter().enumerate() {
        let (left, centre) = (j as f64, j as f64 + 0.5);
        chart.plotting_area().draw(
            &(EmptyElement::at((centre, 0.0))
                + Text::new(label.clone(), (0, 8), font(15.0).pos(below))),
        )?;
        match value {
            Some(v) => {
                let fill = COLORS[j % COLORS.len()].filled();
                chart.plotting_area().draw(&Rectangle::new(
                    [(left + 0.15, 0.0), (left + 0.85, *v)],
                    fill,
                ))?;
                chart.plotting_area().draw(
                    &(EmptyElement::at((centre, *v))
                        + Text::new(short(*v), (0, -4), font(13.5).pos(above))),
                )?;
            }
            None => chart.plotting_area().draw(
                &(EmptyElement::at((centre, 0.0))
                    + Text::new("n/a", (0, -6), font(13.5).color(&MUTED).pos(above))),
            )?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The `height` of every filled `<rect>` of the given colour.
    fn rect_heights(svg: &str, color: RGBColor) -> Vec<f64> {
        let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
        svg.lines()
            .filter(|l| l.trim_start().starts_with("<rect") && l.contains(&fill))
            .filter_map(|l| l.split("height=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect()
    }

    fn bar_figure() -> Figure {
        Figure {
            title: "t".into(),
            panels: Panels::Bars(vec![BarPanel {
                title: "train".into(),
                unit: "tokens/s".into(),
                bars: vec![
                    ("a".into(), Some(100.0)),
                    ("b".into(), None),
                    ("c".into(), Some(50.0)),
                ],
            }]),
        }
    }

    #[test]
    fn bars_scale_to_the_largest_value_and_mark_missing_ones() {
        let svg = bar_figure().svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let (a, b, c) = (
            rect_heights(&svg, COLORS[0]),
            rect_heights(&svg, COLORS[1]),
            rect_heights(&svg, COLORS[2]),
        );
        assert_eq!((a.len(), b.len(), c.len()), (1, 0, 1), "{svg}");
        // The 50 bar is half the height of the 100 bar.
        assert!((a[0] / c[0] - 2.0).abs() < 0.02, "{a:?} {c:?}");
        for text in ["n/a", "tokens/s", "train", "100", "50.0"] {
            assert!(
                svg.contains(&format!(">\n{text}\n</text>")),
                "{text}: {svg}"
            );
        }
    }

    #[test]
    fn lines_draw_every_series_with_one_legend() {
        let panel = |title: &str, markers| LinePanel {
            title: title.into(),
            xlabel: "epoch".into(),
            ylabel: "loss".into(),
            series: vec![
                ("run-a".into(), vec![(1.0, 5.0), (2.0, 4.0)]),
                ("run-b".into(), vec![(1.0, 5.5), (2.0, 4.5)]),
            ],
            markers,
        };
        let mut empty = panel("validation BLEU", true);
        for (_, points) in &mut empty.series {
            points.clear();
        }
        let figure = Figure {
            title: "s2s compare".into(),
            panels: Panels::Lines(vec![
                panel("training loss", false),
                panel("validation loss", true),
                empty,
            ]),
        };
        let svg = figure.svg().unwrap();
        // Each label once, in the legend.
        for label in ["run-a", "run-b"] {
            assert_eq!(
                svg.matches(&format!(">\n{label}\n</text>")).count(),
                1,
                "{svg}"
            );
        }
        for title in [
            "s2s compare",
            "training loss",
            "validation loss",
            "validation BLEU",
            "no data",
        ] {
            assert!(svg.contains(&format!(">\n{title}\n</text>")), "{title}");
        }
        // run-a solid, run-b dashed (many short polylines), both in two panels.
        let color = |c: RGBColor| format!("stroke=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        let polylines = |c| {
            svg.lines()
                .filter(|l| l.contains("<polyline") && l.contains(&color(c)))
                .count()
        };
        assert_eq!(polylines(COLORS[0]), 1 + 2, "legend and two panels");
        assert!(polylines(COLORS[1]) > 3, "dashed");
        assert_eq!(
            svg.matches("<circle").count(),
            4,
            "markers on the validation panel only"
        );
    }

    #[test]
    fn the_png_is_the_same_figure_with_its_text_drawn() {
        let figure = bar_figure();
        let png = figure.png().unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), figure.size());
        // The title "t" is text, which only the bundled font can draw: dark pixels in the band
        // above the panels.
        let row = info.width as usize * 3;
        let dark = pixels[..row * TOP as usize]
            .chunks(3)
            .filter(|p| p.iter().all(|&c| c < 100))
            .count();
        assert!(dark > 10, "{dark} dark pixels in the title band");
    }
}
