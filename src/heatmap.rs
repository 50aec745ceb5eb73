//! Cross-attention heat-maps for `s2s generate --attention-out`: source tokens across, produced
//! tokens down, one cell per weight in matplotlib's viridis (dark = 0, yellow = 1), drawn with
//! plotters like every other chart (SVG and PNG through [`Drawable`]).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::chart::{bold, font, DrawResult, Drawable};

/// Pixels of one cell of the single map, and of the per-head grid.
const CELL: u32 = 26;
const SMALL_CELL: u32 = 9;
/// Room for the labels: produced tokens left of the map, source tokens (rotated) above it.
const LABELS: u32 = 130;
const TITLE: u32 = 34;
const GAP: u32 = 24;
/// Width of the colour bar and its labels.
const LEGEND: u32 = 80;

/// One map with its tokens on the axes.
#[derive(Debug)]
pub struct Heatmap<'a> {
    pub title: String,
    /// Labels across (columns).
    pub source_tokens: &'a [String],
    /// Labels down (rows).
    pub target_tokens: &'a [String],
    /// `[row][column]`, in [0, 1].
    pub weights: &'a [Vec<f32>],
}

/// Every layer's heads side by side, one small map each, without token labels.
#[derive(Debug)]
pub struct HeadGrid<'a> {
    pub title: String,
    /// `[layer][head][row][column]`.
    pub layers: &'a [Vec<Vec<Vec<f32>>>],
}

fn cell_color(weight: f32) -> RGBColor {
    ViridisRGB::get_color(weight.clamp(0.0, 1.0))
}

/// Draws `weights` with its top-left corner at `(x, y)`, `cell` pixels per weight.
fn draw_cells<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    weights: &[Vec<f32>],
    (x, y): (i32, i32),
    cell: u32,
) -> DrawResult<DB> {
    let cell = cell as i32;
    for (r, row) in weights.iter().enumerate() {
        for (c, &w) in row.iter().enumerate() {
            let (x0, y0) = (x + c as i32 * cell, y + r as i32 * cell);
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell, y0 + cell)],
                cell_color(w).filled(),
            ))?;
        }
    }
    Ok(())
}

/// White background and the title centred on top.
fn draw_background<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (width, _) = root.dim_in_pixel();
    root.draw(&Text::new(
        title,
        (width as i32 / 2, TITLE as i32 / 2),
        bold(16.0).pos(Pos::new(HPos::Center, VPos::Center)),
    ))
}

impl Heatmap<'_> {
    fn columns(&self) -> u32 {
        self.source_tokens.len() as u32
    }

    fn rows(&self) -> u32 {
        self.target_tokens.len() as u32
    }
}

impl Drawable for Heatmap<'_> {
    fn size(&self) -> (u32, u32) {
        (
            LABELS + self.columns().max(1) * CELL + GAP + LEGEND,
            TITLE + LABELS + self.rows().max(1) * CELL + GAP,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        draw_background(root, &self.title)?;
        let (x, y) = (LABELS as i32, (TITLE + LABELS) as i32);
        let cell = CELL as i32;
        draw_cells(root, self.weights, (x, y), CELL)?;
        let down = font(13.0).pos(Pos::new(HPos::Right, VPos::Center));
        for (r, token) in self.target_tokens.iter().enumerate() {
            root.draw(&Text::new(
                token.as_str(),
                (x - 6, y + r as i32 * cell + cell / 2),
                down.clone(),
            ))?;
        }
        let across = font(13.0)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (c, token) in self.source_tokens.iter().enumerate() {
            root.draw(&Text::new(
                token.as_str(),
                (x + c as i32 * cell + cell / 2, y - 6),
                across.clone(),
            ))?;
        }
        // Colour bar: 0 at the bottom, 1 at the top, as tall as the map (at least 5 cells).
        let bar_x = x + self.columns() as i32 * cell + GAP as i32;
        let height = (self.rows().max(5) * CELL) as i32;
        let steps = 50;
        for i in 0..steps {
            let top = y + height * i / steps;
            let bottom = y + height * (i + 1) / steps;
            let value = 1.0 - (i as f32 + 0.5) / steps as f32;
            root.draw(&Rectangle::new(
                [(bar_x, top), (bar_x + 14, bottom)],
                cell_color(value).filled(),
            ))?;
        }
        let legend = font(12.0).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new("1", (bar_x + 20, y), legend.clone()))?;
        root.draw(&Text::new("0", (bar_x + 20, y + height), legend))?;
        Ok(())
    }
}

impl HeadGrid<'_> {
    /// Rows and columns of the widest map.
    fn map_size(&self) -> (u32, u32) {
        let first = self.layers.iter().flatten().next();
        let rows = first.map_or(0, |m| m.len()) as u32;
        let columns = first.and_then(|m| m.first()).map_or(0, |r| r.len()) as u32;
        (rows.max(1), columns.max(1))
    }

    fn heads(&self) -> u32 {
        self.layers.iter().map(|l| l.len()).max().unwrap_or(1) as u32
    }
}

impl Drawable for HeadGrid<'_> {
    fn size(&self) -> (u32, u32) {
        let (rows, columns) = self.map_size();
        let (map_w, map_h) = (columns * SMALL_CELL + GAP, rows * SMALL_CELL + GAP + 16);
        (
            GAP + self.heads() * map_w,
            TITLE + self.layers.len() as u32 * map_h,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        draw_background(root, &self.title)?;
        let (rows, columns) = self.map_size();
        let (map_w, map_h) = (columns * SMALL_CELL + GAP, rows * SMALL_CELL + GAP + 16);
        let label = font(11.0).pos(Pos::new(HPos::Left, VPos::Bottom));
        for (l, heads) in self.layers.iter().enumerate() {
            for (h, weights) in heads.iter().enumerate() {
                let x = (GAP + h as u32 * map_w) as i32;
                let y = (TITLE + l as u32 * map_h + 16) as i32;
                root.draw(&Text::new(
                    format!("layer {} head {}", l + 1, h + 1),
                    (x, y - 3),
                    label.clone(),
                ))?;
                draw_cells(root, weights, (x, y), SMALL_CELL)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_has_one_cell_per_weight_and_its_labels() {
        let source = ["Au".to_string(), "commencement".into(), "</s>".into()];
        let target = ["In".to_string(), "the".into(), "</s>".into()];
        let weights = vec![
            vec![0.9, 0.1, 0.0],
            vec![0.2, 0.7, 0.1],
            vec![0.0, 0.0, 1.0],
        ];
        let map = Heatmap {
            title: "attention".into(),
            source_tokens: &source,
            target_tokens: &target,
            weights: &weights,
        };
        let svg = map.svg().unwrap();
        for token in ["Au", "commencement", "In", "the"] {
            // plotters writes a text element's content on its own line.
            assert!(
                svg.contains(&format!("\n{token}\n</text>")),
                "{token} missing"
            );
        }
        // 9 cells + 50 colour-bar steps, each a filled rectangle.
        assert_eq!(
            svg.matches("<rect").count(),
            1 + 9 + 50,
            "background + cells + bar"
        );
        let (w, h) = map.size();
        let png = map.png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(w > 3 * CELL && h > 3 * CELL);
        // The weight-1 cell is viridis' yellow, the weight-0 one its dark violet.
        assert!(svg.contains("fill=\"#FEE825\""), "no yellow cell");
        assert!(svg.contains("fill=\"#440154\""), "no dark cell");
    }
}
