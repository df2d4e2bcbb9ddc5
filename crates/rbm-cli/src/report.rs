//! The run's report: learning curves (SVG, drawn with plotters) and index.html.

use plotters::prelude::*;
use rbm::train::EpochRecord;

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
pub fn index_html(
    title: &str,
    config: &[(String, String)],
    history: &[EpochRecord],
    has_samples: bool,
    has_filters: bool,
) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut h = format!("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title>\n<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}img{{image-rendering:pixelated;margin:4px}}</style></head><body>\n<h1>{0}</h1>\n<h2>Configuration</h2>\n<table>\n", esc(title));
    for (k, v) in config {
        h += &format!("<tr><th>{}</th><td>{}</td></tr>\n", esc(k), esc(v));
    }
    h += "</table>\n<h2>Metrics</h2>\n<table>\n<tr><th>epoch</th><th>cost</th><th>seconds</th><th>validation log-likelihood</th><th>estimator</th><th>free-energy gap</th></tr>\n";
    for r in history {
        let ll = r.log_likelihood.map_or(String::new(), |l| format!("{l:.3}"));
        h += &format!(
            "<tr><td>{}</td><td>{:.4}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            r.epoch,
            r.cost,
            r.seconds,
            ll,
            esc(r.ll_estimator.as_deref().unwrap_or("")),
            r.free_energy_gap.map_or(String::new(), |g| format!("{g:.3}"))
        );
    }
    h += "</table>\n<h2>Learning curves</h2>\n<img src=\"learning_curve.svg\" alt=\"learning curves\">\n";
    if let Some(last) = history.last().filter(|_| has_filters) {
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
    fn the_run_page_and_curves_show_every_epoch() {
        let hist: Vec<EpochRecord> = (0..3)
            .map(|e| {
                let mut r = EpochRecord::new(e, -90.0 + e as f64, 1.0);
                r.log_likelihood = (e == 2).then_some(-120.5);
                r.ll_estimator = (e == 2).then(|| "exact".into());
                r
            })
            .collect();
        let svg = learning_curve_svg(&hist, "pseudo-likelihood");
        assert!(svg.starts_with("<svg") && svg.contains("validation log-likelihood"));
        let page = index_html("run <1>", &[("k".into(), "15".into())], &hist, true, true);
        assert!(
            page.contains("run &lt;1&gt;")
                && page.contains("-120.500")
                && page.contains("filters_at_epoch_2.png")
                && page.contains("samples.png")
        );
        assert_eq!(page.matches("<tr><td>").count(), 3);
    }
}
