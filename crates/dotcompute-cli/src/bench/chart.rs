//! SVG chart of the latency distributions: round-trip time by percentile
//! (x on a "nines" scale: 90 %, 99 %, 99.9 % ... equally spaced; y on a log
//! scale), one line per case, with PyDotCompute's published percentiles as
//! dashed reference lines (theirs, not measured here).

use std::path::Path;

use plotters::prelude::*;

use super::latency::LatencyResult;
use crate::CliResult;

/// Distinct line colours (Tableau 10).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(0, 0, 128),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// PyDotCompute's round-trip percentiles (µs) from the reference file, as
/// (label, [(nines, µs)]): p50 is 0.301 nines, p95 1.301, p99 2, and the
/// maximum of 1000 samples 3.
fn reference_lines() -> Vec<(&'static str, Vec<(f64, f64)>)> {
    let p50 = 0.5f64.log10().abs();
    let p95 = 0.05f64.log10().abs();
    vec![
        (
            "PyDotCompute asyncio actor (theirs)",
            vec![(p50, 33.0), (p95, 35.0), (2.0, 52.0), (3.0, 91.0)],
        ),
        (
            "PyDotCompute uvloop actor, run 1 (theirs)",
            vec![(p50, 23.0), (p95, 24.0), (2.0, 62.0)],
        ),
        (
            "PyDotCompute ThreadedRingKernel SPSC (theirs)",
            vec![(p50, 20.5), (2.0, 60.2)],
        ),
    ]
}

/// `99.9%` for 3 nines.
fn percentile_label(nines: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-nines));
    let digits = if nines <= 1.0 {
        0
    } else {
        (nines.ceil() as usize).saturating_sub(2)
    };
    let s = format!("{p:.digits$}");
    format!("{s}%")
}

/// Writes the chart of `results` to `path`.
pub fn latency_svg(path: &Path, results: &[LatencyResult]) -> CliResult<()> {
    draw(path, results).map_err(|e| format!("cannot draw {}: {e}", path.display()).into())
}

fn draw(path: &Path, results: &[LatencyResult]) -> Result<(), Box<dyn std::error::Error>> {
    let refs = reference_lines();
    let ours = results
        .iter()
        .flat_map(|r| r.curve.iter().map(|p| (p.nines, p.ns as f64 / 1e3)));
    let theirs = refs.iter().flat_map(|(_, pts)| pts.iter().copied());
    let all: Vec<(f64, f64)> = ours.chain(theirs).collect();
    let max_x = all.iter().map(|p| p.0).fold(3.0, f64::max).ceil();
    let min_y = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).max(0.01);
    let max_y = all.iter().map(|p| p.1).fold(1.0, f64::max);
    let (min_y, max_y) = (min_y / 1.5, max_y * 1.5);

    let root = SVGBackend::new(path, (1200, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "dotcompute {} · round trip host → echo kernel → host, by percentile",
                dotcompute::VERSION
            ),
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..max_x, (min_y..max_y).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("round trip (µs, log scale)")
        .x_labels(max_x as usize + 1)
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| {
            if *y >= 1.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.2}")
            }
        })
        .draw()?;

    for (i, r) in results.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                r.curve.iter().map(|p| (p.nines, (p.ns as f64 / 1e3).max(min_y))),
                style,
            ))?
            .label(r.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2)));
    }
    for (i, (label, points)) in refs.into_iter().enumerate() {
        let color = [RGBColor(90, 90, 90), RGBColor(150, 150, 150), RGBColor(60, 60, 60)][i % 3];
        chart
            .draw_series(DashedLineSeries::new(points, 8, 5, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percentile_label;

    #[test]
    fn nines_are_labelled_as_percentiles() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(4.0), "99.99%");
    }
}
