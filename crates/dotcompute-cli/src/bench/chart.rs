//! SVG charts.
//!
//! - [`latency_svg`]: the latency distributions: round-trip time by
//!   percentile (x on a "nines" scale: 90 %, 99 %, 99.9 % ... equally spaced;
//!   y on a log scale), one line per case, with PyDotCompute's published
//!   percentiles as dashed reference lines (theirs, not measured here).
//! - [`bar_svg`]: the workload benchmarks: horizontal bars on a log scale,
//!   in groups (one per graph size or batch size), each bar labelled with
//!   what it measures and its value with its unit; reference figures
//!   (theirs) are grey with a dashed outline and say so in their label.
//!   Written directly as SVG (no plotting library), one `<rect class="bar">`
//!   per bar, so that a test can count them.

use std::fmt::Write as _;
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

/// What a bar chart's values are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BarUnit {
    /// Seconds (shown as ns/µs/ms/s).
    Seconds,
    /// Items per second, e.g. `"points/s"` (shown as 1.2M points/s).
    Rate(&'static str),
}

impl BarUnit {
    /// `v` with three significant digits and its unit (`212 ms`, `1.25 s`,
    /// `2.10M points/s`); `ticks` drops trailing zeros (`1 ms`, `10M points/s`).
    fn format(self, v: f64, ticks: bool) -> String {
        let (scaled, suffix) = match self {
            BarUnit::Seconds => {
                let (f, u) = if v >= 1.0 {
                    (1.0, " s")
                } else if v >= 1e-3 {
                    (1e3, " ms")
                } else if v >= 1e-6 {
                    (1e6, " µs")
                } else {
                    (1e9, " ns")
                };
                (v * f, u.to_string())
            }
            BarUnit::Rate(unit) => {
                let (f, u) = if v >= 1e9 {
                    (1e-9, "G")
                } else if v >= 1e6 {
                    (1e-6, "M")
                } else if v >= 1e3 {
                    (1e-3, "K")
                } else {
                    (1.0, "")
                };
                (v * f, format!("{u} {unit}"))
            }
        };
        let digits = if scaled >= 100.0 {
            0
        } else if scaled >= 10.0 {
            1
        } else {
            2
        };
        let mut text = format!("{scaled:.digits$}");
        if ticks && text.contains('.') {
            text = text.trim_end_matches('0').trim_end_matches('.').to_string();
        }
        format!("{text}{suffix}")
    }
}

/// One bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// What it measures (shown left of the bar).
    pub label: String,
    /// Its value, in the chart's unit; a value ≤ 0 or not finite is drawn as
    /// "not measured" without a bar.
    pub value: f64,
    /// Colour index (ours); ignored for reference bars.
    pub series: usize,
    /// A reference figure, not measured by this run.
    pub theirs: bool,
}

/// A group of bars under a heading.
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    /// The heading (e.g. "1,000,000 nodes · 5,000,000 edges").
    pub title: String,
    /// Its bars, top to bottom.
    pub bars: Vec<Bar>,
}

/// A horizontal bar chart on a log scale.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// The title.
    pub title: String,
    /// Lines under the title (machine, caveats).
    pub notes: Vec<String>,
    /// The values' unit.
    pub unit: BarUnit,
    /// The x axis' caption.
    pub axis: String,
    /// The groups, top to bottom.
    pub groups: Vec<BarGroup>,
}

/// Escapes text for SVG.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

const FONT: &str = "font-family=\"DejaVu Sans, Arial, sans-serif\"";

/// The chart as SVG text.
pub fn bar_chart_svg(chart: &BarChart) -> String {
    let measured = |b: &Bar| b.value.is_finite() && b.value > 0.0;
    let values: Vec<f64> = chart
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().filter(|b| measured(b)).map(|b| b.value))
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0f64, f64::max);
    let (lo_exp, hi_exp) = if values.is_empty() {
        (0, 1)
    } else {
        // At least half a decade of bar for the smallest value.
        let lo_exp = (lo.log10() - 0.5).floor() as i32;
        let hi_exp = (hi.log10().ceil() as i32).max(lo_exp + 1);
        (lo_exp, hi_exp)
    };

    let label_chars = chart
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().map(|b| b.label.chars().count()))
        .max()
        .unwrap_or(10);
    let (width, bar_h, gap, group_gap) = (1200.0f64, 22.0f64, 6.0f64, 34.0f64);
    let label_w = (label_chars as f64 * 7.2 + 30.0).clamp(180.0, 560.0);
    let (left, right) = (label_w, width - 130.0);
    let top = 58.0 + 18.0 * chart.notes.len() as f64 + 16.0;
    let bars: usize = chart.groups.iter().map(|g| g.bars.len()).sum();
    let body = chart.groups.len() as f64 * group_gap + bars as f64 * (bar_h + gap);
    let height = top + body + 70.0;
    let span = f64::from(hi_exp - lo_exp);
    let x_of = |v: f64| left + (v.log10() - f64::from(lo_exp)) / span * (right - left);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="20" y="32" {FONT} font-size="20" font-weight="bold">{}</text>"#,
        xml_escape(&chart.title)
    );
    for (i, note) in chart.notes.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<text x="20" y="{}" {FONT} font-size="13" fill="#444">{}</text>"##,
            56.0 + 18.0 * i as f64,
            xml_escape(note)
        );
    }

    // Decade grid lines and labels, top and bottom.
    let axis_y = top + body;
    for e in lo_exp..=hi_exp {
        let v = 10f64.powi(e);
        let x = x_of(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{axis_y:.1}" stroke="#ccc" stroke-width="1"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" {FONT} font-size="12" text-anchor="middle">{}</text>"#,
            axis_y + 18.0,
            xml_escape(&chart.unit.format(v, true))
        );
    }
    let _ = writeln!(
        svg,
        r#"<line x1="{left:.1}" y1="{axis_y:.1}" x2="{right:.1}" y2="{axis_y:.1}" stroke="black" stroke-width="1"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" {FONT} font-size="13" text-anchor="middle">{}</text>"#,
        (left + right) / 2.0,
        axis_y + 42.0,
        xml_escape(&chart.axis)
    );

    let mut y = top;
    for group in &chart.groups {
        y += group_gap;
        let _ = writeln!(
            svg,
            r#"<text x="20" y="{:.1}" {FONT} font-size="14" font-weight="bold">{}</text>"#,
            y - 10.0,
            xml_escape(&group.title)
        );
        for bar in &group.bars {
            let mid = y + bar_h / 2.0 + 4.5;
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{mid:.1}" {FONT} font-size="13" text-anchor="end">{}</text>"#,
                left - 8.0,
                xml_escape(&bar.label)
            );
            if measured(bar) {
                let x1 = x_of(bar.value).max(left + 1.0);
                let w = x1 - left;
                let value = chart.unit.format(bar.value, false);
                let (fill, stroke) = if bar.theirs {
                    ("#bdbdbd".to_string(), r##" stroke="#555" stroke-dasharray="5,3""##)
                } else {
                    let c = COLORS[bar.series % COLORS.len()];
                    (format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2), "")
                };
                let _ = writeln!(
                    svg,
                    r#"<rect class="bar" data-theirs="{}" x="{left:.1}" y="{y:.1}" width="{w:.1}" height="{bar_h}" fill="{fill}"{stroke}><title>{}: {}</title></rect>"#,
                    bar.theirs,
                    xml_escape(&bar.label),
                    xml_escape(&value)
                );
                let _ = writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{mid:.1}" {FONT} font-size="12">{}</text>"#,
                    x1 + 6.0,
                    xml_escape(&value)
                );
            } else {
                let _ = writeln!(
                    svg,
                    r##"<text x="{:.1}" y="{mid:.1}" {FONT} font-size="12" fill="#a00">not measured</text>"##,
                    left + 6.0
                );
            }
            y += bar_h + gap;
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// Writes `chart` to `path` as SVG.
pub fn bar_svg(path: &Path, chart: &BarChart) -> CliResult<()> {
    std::fs::write(path, bar_chart_svg(chart)).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_bars(svg: &str) -> (usize, usize) {
        let doc = roxmltree::Document::parse(svg).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        let bars: Vec<_> = root
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("bar"))
            .collect();
        for b in &bars {
            let w: f64 = b.attribute("width").unwrap().parse().unwrap();
            assert!(w > 0.0 && w.is_finite());
        }
        let theirs = bars
            .iter()
            .filter(|b| b.attribute("data-theirs") == Some("true"))
            .count();
        (bars.len(), theirs)
    }

    #[test]
    fn bar_chart_is_well_formed_with_one_rect_per_measured_bar() {
        let bar = |label: &str, value: f64, theirs: bool| Bar {
            label: label.into(),
            value,
            series: 1,
            theirs,
        };
        let chart = BarChart {
            title: "load & solve <1M nodes>".into(),
            notes: vec!["a \"noisy\" run".into()],
            unit: BarUnit::Seconds,
            axis: "seconds (log scale)".into(),
            groups: vec![
                BarGroup {
                    title: "10K".into(),
                    bars: vec![bar("ours (L∞ < 1e-6)", 0.002, false), bar("theirs", 0.69, true)],
                },
                BarGroup {
                    title: "1M".into(),
                    bars: vec![
                        bar("ours", 0.2, false),
                        bar("igraph", f64::NAN, false),
                        bar("PyDotCompute", 25.4, true),
                    ],
                },
            ],
        };
        let svg = bar_chart_svg(&chart);
        // Five bars, one not measured (no rect), two of them theirs.
        assert_eq!(count_bars(&svg), (4, 2));
        assert!(svg.contains("load &amp; solve &lt;1M nodes&gt;"));
        assert!(svg.contains("not measured"));
        // Decades 1 ms .. 100 s on the axis; the longer value has the longer bar.
        for tick in ["1 ms", "10 ms", "100 ms", "1 s", "10 s", "100 s", "25.4 s", "2.00 ms"] {
            assert!(svg.contains(&format!(">{tick}<")), "missing tick {tick}");
        }
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let widths: Vec<f64> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("bar"))
            .map(|n| n.attribute("width").unwrap().parse().unwrap())
            .collect();
        // 2 ms < 200 ms < 0.69 s < 25.4 s.
        assert!(
            widths[0] < widths[2] && widths[2] < widths[1] && widths[1] < widths[3],
            "{widths:?}"
        );

        // Rates, and a chart with nothing measured, are still valid SVG.
        let empty = BarChart {
            unit: BarUnit::Rate("points/s"),
            groups: vec![BarGroup {
                title: "none".into(),
                bars: vec![bar("x", 0.0, false)],
            }],
            ..chart
        };
        assert_eq!(count_bars(&bar_chart_svg(&empty)), (0, 0));
    }

    #[test]
    fn bar_values_have_units() {
        assert_eq!(BarUnit::Seconds.format(0.2123, false), "212 ms");
        assert_eq!(BarUnit::Seconds.format(25.399, false), "25.4 s");
        assert_eq!(BarUnit::Seconds.format(1e-3, true), "1 ms");
        assert_eq!(BarUnit::Seconds.format(4.2e-6, false), "4.20 µs");
        assert_eq!(BarUnit::Rate("points/s").format(2.1e6, false), "2.10M points/s");
        assert_eq!(BarUnit::Rate("points/s").format(1e8, true), "100M points/s");
        assert_eq!(BarUnit::Rate("points/s").format(1e9, true), "1G points/s");
    }

    #[test]
    fn nines_are_labelled_as_percentiles() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(4.0), "99.99%");
    }
}
