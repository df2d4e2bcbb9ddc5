//! The run's report: learning curves (SVG, drawn with plotters) and index.html.

use plotters::prelude::*;
use rbm::train::EpochRecord;

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// A curve: its legend label, its points (epoch, value), its colour.
type Series = (String, Vec<(f64, f64)>, RGBColor);

/// One panel of curves against the epoch, each series with its legend label
/// (none drawn when the panel has no points).
fn panel(area: &Area, title: &str, series: &[Series]) {
    let pts: Vec<&(f64, f64)> = series.iter().flat_map(|s| s.1.iter()).collect();
    if pts.is_empty() {
        return;
    }
    let x_max = pts.iter().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let pad = ((hi - lo) * 0.1).max(1e-2);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..x_max, (lo - pad)..(hi + pad))
        .expect("chart into a string");
    chart.configure_mesh().x_desc("epoch").draw().expect("mesh");
    for (label, pts, color) in series {
        let c = *color;
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .expect("line")
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled()))).expect("points");
    }
    if series.len() > 1 {
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().expect("legend");
    }
}

/// The learning curves as SVG: the epoch cost (top) and, where evaluated,
/// the validation log-likelihood (bottom), against the epoch.
pub fn learning_curve_svg(history: &[EpochRecord], cost_name: &str) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 520)).into_drawing_area();
        root.fill(&WHITE).expect("drawing into a string");
        let (top, bottom) = root.split_vertically(260);
        let cost: Vec<(f64, f64)> = history.iter().map(|r| (r.epoch as f64, r.cost)).collect();
        panel(&top, &format!("training cost ({cost_name})"), &[("cost".into(), cost, BLUE)]);
        let ll: Vec<(f64, f64)> =
            history.iter().filter_map(|r| r.log_likelihood.map(|l| (r.epoch as f64, l))).collect();
        let est = history.iter().rev().find_map(|r| r.ll_estimator.clone()).unwrap_or_default();
        panel(
            &bottom,
            &format!("validation log-likelihood, nats per image ({est})"),
            &[("log-likelihood".into(), ll, RED)],
        );
        root.present().expect("drawing into a string");
    }
    svg
}

/// A DBN run's curves as SVG: each layer's pretraining cost (top, from
/// (layer, epoch, cost)), and the fine-tuning's validation and test error
/// in percent (bottom, from (epoch, valid, test when measured)).
pub fn dbn_curves_svg(pretrain: &[(usize, usize, f64)], tuning: &[(usize, f64, Option<f64>)]) -> String {
    const COLORS: [RGBColor; 6] = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 520)).into_drawing_area();
        root.fill(&WHITE).expect("drawing into a string");
        let (top, bottom) = root.split_vertically(260);
        let n_layers = pretrain.iter().map(|p| p.0 + 1).max().unwrap_or(0);
        let layers: Vec<Series> = (0..n_layers)
            .map(|l| {
                let pts = pretrain.iter().filter(|p| p.0 == l).map(|p| (p.1 as f64, p.2)).collect();
                (format!("layer {l}"), pts, COLORS[l % COLORS.len()])
            })
            .collect();
        panel(&top, "pretraining cost (reconstruction cross-entropy)", &layers);
        let valid = tuning.iter().map(|t| (t.0 as f64, 100.0 * t.1)).collect();
        let test = tuning.iter().filter_map(|t| t.2.map(|e| (t.0 as f64, 100.0 * e))).collect();
        let errors = [("validation".to_string(), valid, BLUE), ("test (at each new best)".to_string(), test, RED)];
        panel(&bottom, "fine-tuning error, %", &errors);
        root.present().expect("drawing into a string");
    }
    svg
}

/// A DBN run's page: its settings, its metrics (the rows of metrics.csv),
/// the curves, the first layer's filters and the misclassified test digits.
pub fn dbn_index_html(
    title: &str,
    config: &[(String, String)],
    csv: &str,
    has_filters: bool,
    has_misclassified: bool,
) -> String {
    let mut h = page_head(title, config);
    let mut lines = csv.lines();
    let header = lines.next().unwrap_or_default();
    h += "</table>\n<h2>Learning curves</h2>\n<img src=\"learning_curves.svg\" alt=\"learning curves\">\n";
    if has_filters {
        h += "<h2>First layer's filters</h2>\n<img src=\"filters_layer_0.png\" alt=\"filters\" width=\"578\">\n";
    }
    if has_misclassified {
        h += "<h2>Misclassified test digits</h2>\n<p>The best network's first 100 errors on the test set, in order.</p>\n<img src=\"misclassified.png\" alt=\"misclassified digits\" width=\"290\">\n";
    }
    h += "<h2>Metrics</h2>\n<table>\n<tr>";
    for col in header.split(',') {
        h += &format!("<th>{}</th>", esc(col));
    }
    h += "</tr>\n";
    for line in lines {
        h += "<tr>";
        for cell in line.split(',') {
            h += &format!("<td>{}</td>", esc(cell));
        }
        h += "</tr>\n";
    }
    h + "</table>\n</body></html>\n"
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The page's head, title and the start of its settings table (left open).
fn page_head(title: &str, config: &[(String, String)]) -> String {
    let mut h = format!("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title>\n<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}img{{image-rendering:pixelated;margin:4px}}</style></head><body>\n<h1>{0}</h1>\n<h2>Configuration</h2>\n<table>\n", esc(title));
    for (k, v) in config {
        h += &format!("<tr><th>{}</th><td>{}</td></tr>\n", esc(k), esc(v));
    }
    h
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
    let mut h = page_head(title, config);
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
