//! Pictures: the tutorial's `tile_raster_images`, the filter and sample
//! images, and grey PNG output.

use crate::error::{RbmError, Result};
use crate::modelfile::write_atomic;
use crate::train::EpochRecord;
use crate::Rbm;
use plotters::prelude::*;
use std::path::Path;

/// A grey image, one byte per pixel, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Grey {
    pub width: usize,
    pub height: usize,
    /// `[height, width]`
    pub pixels: Vec<u8>,
}

/// The tutorial's `tile_raster_images`: rows of `x` (`[n, img_h * img_w]`)
/// as a grid of `tiles.0 x tiles.1` tiles with 1-pixel gaps (black), each tile
/// scaled to [0, 1] on its own ((x - min) / (max - min + 1e-8)) and then to 0..255.
/// The grid is filled row by row; missing rows leave black tiles.
pub fn tile_raster_images(x: &[f32], img: (usize, usize), tiles: (usize, usize)) -> Grey {
    let (ih, iw) = img;
    let d = ih * iw;
    let height = (ih + 1) * tiles.0 - 1;
    let width = (iw + 1) * tiles.1 - 1;
    let mut pixels = vec![0u8; height * width];
    let n = x.len() / d;
    for t in 0..(tiles.0 * tiles.1).min(n) {
        let tile = &x[t * d..(t + 1) * d];
        let lo = tile.iter().cloned().fold(f32::INFINITY, f32::min);
        let hi = tile.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let scale = 1.0 / (hi - lo + 1e-8);
        let (tr, tc) = (t / tiles.1, t % tiles.1);
        for r in 0..ih {
            for c in 0..iw {
                let v = ((tile[r * iw + c] - lo) * scale).clamp(0.0, 1.0);
                pixels[(tr * (ih + 1) + r) * width + tc * (iw + 1) + c] = (v * 255.0) as u8;
            }
        }
    }
    Grey { width, height, pixels }
}

/// The filters of the first 100 hidden units: column j of W as a 28 x 28 tile,
/// 10 x 10 tiles (289 x 289 for MNIST). `side` is the image side (sqrt n_visible).
pub fn filters_image(rbm: &Rbm, side: usize) -> Grey {
    let (nv, nh) = (rbm.n_visible, rbm.n_hidden);
    let k = nh.min(100);
    // W^T's first k rows: `[k, n_visible]`
    let mut wt = vec![0f32; k * nv];
    for j in 0..k {
        for i in 0..nv {
            wt[j * nv + i] = rbm.w[i * nh + j];
        }
    }
    tile_raster_images(&wt, (side, side), (10, 10))
}

/// The samples picture: `rows[r]` holds the mean-field visible activations
/// (`[n_chains, n_visible]`) of the r-th plotted step; each row of tiles
/// starts every 29 pixels (291 x 579 for 10 rows of 20 chains).
pub fn samples_image(rows: &[Vec<f32>], n_chains: usize, side: usize) -> Grey {
    let height = (side + 1) * rows.len() + 1;
    let width = (side + 1) * n_chains - 1;
    let mut pixels = vec![0u8; height * width];
    for (r, v) in rows.iter().enumerate() {
        let strip = tile_raster_images(v, (side, side), (1, n_chains));
        let at = (side + 1) * r * width;
        pixels[at..at + strip.pixels.len()].copy_from_slice(&strip.pixels);
    }
    Grey { width, height, pixels }
}

impl Grey {
    /// PNG bytes (8-bit grey).
    pub fn to_png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().expect("PNG header into memory");
            w.write_image_data(&self.pixels).expect("PNG data into memory");
        }
        out
    }

    /// Writes the PNG atomically.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_png())
    }
}

/// Decodes an 8-bit grey PNG (for tests and tools).
pub fn read_png(path: &Path) -> Result<Grey> {
    let f = std::fs::File::open(path).map_err(|e| RbmError::io(path, e))?;
    let dec = png::Decoder::new(std::io::BufReader::new(f));
    let mut reader = dec.read_info().map_err(|e| RbmError::data(path, e.to_string()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| RbmError::data(path, e.to_string()))?;
    buf.truncate(info.buffer_size());
    Ok(Grey { width: info.width as usize, height: info.height as usize, pixels: buf })
}

/// The learning curves as SVG: the epoch cost (top) and, where evaluated,
/// the validation log-likelihood (bottom), against the epoch.
pub fn learning_curve_svg(history: &[EpochRecord], cost_name: &str) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 520)).into_drawing_area();
        root.fill(&WHITE).expect("drawing into a string");
        let (top, bottom) = root.split_vertically(260);
        let panel = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
                     title: &str,
                     pts: Vec<(f64, f64)>,
                     color: RGBColor| {
            if pts.is_empty() {
                return;
            }
            let x_max = pts.iter().map(|p| p.0).fold(1.0, f64::max);
            let (lo, hi) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
            let pad = ((hi - lo) * 0.1).max(0.5);
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(56)
                .build_cartesian_2d(0f64..x_max, (lo - pad)..(hi + pad))
                .expect("chart into a string");
            chart.configure_mesh().x_desc("epoch").draw().expect("mesh");
            chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2))).expect("line");
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).expect("points");
        };
        let cost: Vec<(f64, f64)> = history.iter().map(|r| (r.epoch as f64, r.cost)).collect();
        panel(&top, &format!("training cost ({cost_name})"), cost, BLUE);
        let ll: Vec<(f64, f64)> =
            history.iter().filter_map(|r| r.log_likelihood.map(|l| (r.epoch as f64, l))).collect();
        let est = history.iter().rev().find_map(|r| r.ll_estimator.clone()).unwrap_or_default();
        panel(&bottom, &format!("validation log-likelihood, nats per image ({est})"), ll, RED);
        root.present().expect("drawing into a string");
    }
    svg
}

/// A page that shows a run at a glance: its configuration, metrics, curves,
/// last filters and samples (all files of the same directory).
pub fn index_html(title: &str, config: &[(String, String)], history: &[EpochRecord], has_samples: bool) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut h = format!("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title>\n<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}img{{image-rendering:pixelated;margin:4px}}</style></head><body>\n<h1>{0}</h1>\n<h2>Configuration</h2>\n<table>\n", esc(title));
    for (k, v) in config {
        h += &format!("<tr><th>{}</th><td>{}</td></tr>\n", esc(k), esc(v));
    }
    h += "</table>\n<h2>Metrics</h2>\n<table>\n<tr><th>epoch</th><th>cost</th><th>seconds</th><th>validation log-likelihood</th><th>estimator</th></tr>\n";
    for r in history {
        let ll = r.log_likelihood.map_or(String::new(), |l| format!("{l:.3}"));
        h += &format!(
            "<tr><td>{}</td><td>{:.4}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>\n",
            r.epoch,
            r.cost,
            r.seconds,
            ll,
            esc(r.ll_estimator.as_deref().unwrap_or(""))
        );
    }
    h += "</table>\n<h2>Learning curves</h2>\n<img src=\"learning_curve.svg\" alt=\"learning curves\">\n";
    if let Some(last) = history.last() {
        h += &format!(
            "<h2>Filters after epoch {0}</h2>\n<img src=\"filters_at_epoch_{0}.png\" alt=\"filters\" width=\"578\">\n",
            last.epoch
        );
    }
    if has_samples {
        h += "<h2>Samples</h2>\n<p>Persistent chains from test images; 1,000 Gibbs steps between rows (mean-field visible activations).</p>\n<img src=\"samples.png\" alt=\"samples\">\n";
    }
    h + "</body></html>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_scaled_each_on_its_own_with_one_pixel_gaps() {
        // two 2x2 tiles in a 1x2 grid: width 2*3-1 = 5, height 2
        let x = [0.0, 1.0, 2.0, 3.0, -5.0, -5.0, -5.0, 5.0];
        let g = tile_raster_images(&x, (2, 2), (1, 2));
        assert_eq!((g.width, g.height), (5, 2));
        assert_eq!(g.pixels, vec![0, 85, 0, 0, 0, 170, 255, 0, 0, 255]);
    }

    #[test]
    fn filter_and_sample_images_have_the_tutorials_sizes() {
        let rbm = Rbm::new(784, 500, &mut crate::Stream::new(1, 0)).unwrap();
        let f = filters_image(&rbm, 28);
        assert_eq!((f.width, f.height), (289, 289));
        let rows = vec![vec![0.5f32; 20 * 784]; 10];
        let s = samples_image(&rows, 20, 28);
        assert_eq!((s.width, s.height), (579, 291));
    }

    #[test]
    fn the_run_page_and_curves_show_every_epoch() {
        let hist: Vec<EpochRecord> = (0..3)
            .map(|e| EpochRecord {
                epoch: e,
                cost: -90.0 + e as f64,
                seconds: 1.0,
                log_likelihood: (e == 2).then_some(-120.5),
                ll_estimator: (e == 2).then(|| "exact".into()),
            })
            .collect();
        let svg = learning_curve_svg(&hist, "pseudo-likelihood");
        assert!(svg.starts_with("<svg") && svg.contains("validation log-likelihood"));
        let page = index_html("run <1>", &[("k".into(), "15".into())], &hist, true);
        assert!(
            page.contains("run &lt;1&gt;")
                && page.contains("-120.500")
                && page.contains("filters_at_epoch_2.png")
                && page.contains("samples.png")
        );
        assert_eq!(page.matches("<tr><td>").count(), 3);
    }
}
