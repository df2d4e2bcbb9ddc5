//! Pictures: the tutorial's `tile_raster_images`, the filter and sample
//! images, and grey PNG output.

use crate::error::{RbmError, Result};
use crate::modelfile::write_atomic;
use crate::Rbm;
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
    filters_image_shaped(rbm, (side, side))
}

/// [`filters_image`] for images of `shape` = (height, width), height x width = n_visible.
pub fn filters_image_shaped(rbm: &Rbm, shape: (usize, usize)) -> Grey {
    let (nv, nh) = (rbm.n_visible, rbm.n_hidden);
    assert_eq!(shape.0 * shape.1, nv, "the image shape must hold n_visible pixels");
    let k = nh.min(100);
    // W^T's first k rows: `[k, n_visible]`
    let mut wt = vec![0f32; k * nv];
    for j in 0..k {
        for i in 0..nv {
            wt[j * nv + i] = rbm.w[i * nh + j];
        }
    }
    tile_raster_images(&wt, shape, (10, 10))
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
}
