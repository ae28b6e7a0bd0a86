//! SVG charts.
//!
//! - [`latency_svg`]: the latency distributions: round-trip time by
//!   percentile (x on a "nines" scale: 90 %, 99 %, 99.9 % ... equally spaced;
//!   y on a log scale), one line per case, each with its own colour and
//!   dash; PyDotCompute's percentiles as grey dotted or dashed lines with a
//!   marker each (theirs, not measured here); the legend in its own column
//!   beside the plot, never over the lines.
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

/// PyDotCompute's round-trip percentiles (µs), its own scripts on the
/// 2-vCPU class (see `reference`), as
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
    let series: Vec<Series> = results
        .iter()
        .map(|r| (r.name(), r.curve.iter().map(|p| (p.nines, p.ns as f64 / 1e3)).collect()))
        .collect();
    draw(path, &series).map_err(|e| format!("cannot draw {}: {e}", path.display()).into())
}

/// One latency line: its name and its (nines, µs) points.
type Series = (String, Vec<(f64, f64)>);

/// Redraws the latency chart of a saved `bench latency` or `bench all`
/// report (`--json`), as `dotcompute bench chart` does.
pub fn latency_svg_from_report(report: &Path, path: &Path) -> CliResult<()> {
    let text = std::fs::read_to_string(report).map_err(|e| format!("cannot read {}: {e}", report.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a JSON report: {e}", report.display()))?;
    let cases = json["results"]["latency"]
        .as_array()
        .or_else(|| json["results"].as_array())
        .ok_or_else(|| {
            format!(
                "{} has no latency results (a bench latency or bench all report)",
                report.display()
            )
        })?;
    let mut series = Vec::new();
    for c in cases {
        let host = match c["host"].as_str().unwrap_or("") {
            "multi_thread" => "tokio mt",
            "current_thread" => "tokio ct",
            _ => "thread",
        };
        let name = format!(
            "{} · {} · {}",
            c["tier"].as_str().unwrap_or("?"),
            host,
            c["method_label"].as_str().unwrap_or("?")
        );
        let points: Vec<(f64, f64)> = c["curve"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p["nines"].as_f64()?, p["ns"].as_f64()? / 1e3)))
            .collect();
        if points.is_empty() {
            return Err(format!("{}: case {name} has no curve", report.display()).into());
        }
        series.push((name, points));
    }
    draw(path, &series).map_err(|e| format!("cannot draw {}: {e}", path.display()).into())
}

/// Dash patterns `(dash, gap)` in pixels; `(0, 0)` is a solid line. Seven
/// of them against ten colours: the first 70 series all differ in colour,
/// and neighbours also in dash.
const DASHES: [(u32, u32); 7] = [(0, 0), (10, 4), (4, 4), (16, 5), (2, 3), (7, 3), (12, 8)];

/// How one line is drawn: its colour, dash, and (for reference lines) a
/// marker shape at each point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LineStyle {
    color: RGBColor,
    dash: (u32, u32),
    marker: Option<Marker>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Circle,
    Triangle,
    Cross,
}

/// The style of our `i`-th series: colour and dash both from `i`.
fn series_style(i: usize) -> LineStyle {
    LineStyle {
        color: COLORS[i % COLORS.len()],
        dash: DASHES[i % DASHES.len()],
        marker: None,
    }
}

/// The style of the `i`-th reference line (theirs): grey, dotted or dashed,
/// with its own marker, so reference lines never look like ours or alike.
fn reference_style(i: usize) -> LineStyle {
    const GREYS: [RGBColor; 3] = [RGBColor(60, 60, 60), RGBColor(110, 110, 110), RGBColor(160, 160, 160)];
    const REF_DASHES: [(u32, u32); 3] = [(3, 3), (9, 3), (1, 3)];
    const MARKERS: [Marker; 3] = [Marker::Circle, Marker::Triangle, Marker::Cross];
    LineStyle {
        color: GREYS[i % 3],
        dash: REF_DASHES[i % 3],
        marker: Some(MARKERS[i % 3]),
    }
}

/// Draws `points` (data coordinates) in `style` on `chart`.
fn draw_line<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::combinators::LogCoord<f64>>,
    >,
    points: Vec<(f64, f64)>,
    style: LineStyle,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let stroke = style.color.stroke_width(2);
    if style.dash == (0, 0) {
        chart.draw_series(LineSeries::new(points.clone(), stroke))?;
    } else {
        chart.draw_series(DashedLineSeries::new(
            points.clone(),
            style.dash.0,
            style.dash.1,
            stroke,
        ))?;
    }
    match style.marker {
        None => {}
        Some(Marker::Circle) => {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, style.color.filled())))?;
        }
        Some(Marker::Triangle) => {
            chart.draw_series(points.iter().map(|&p| TriangleMarker::new(p, 5, style.color.filled())))?;
        }
        Some(Marker::Cross) => {
            chart.draw_series(points.iter().map(|&p| Cross::new(p, 4, style.color.stroke_width(2))))?;
        }
    }
    Ok(())
}

/// A legend entry drawn at `(x, y)` of `area`: a 36-pixel sample of the
/// line (with its dash and marker) and the label.
fn legend_entry<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    (x, y): (i32, i32),
    style: LineStyle,
    label: &str,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let stroke = style.color.stroke_width(2);
    if style.dash == (0, 0) {
        area.draw(&PathElement::new(vec![(x, y), (x + 36, y)], stroke))?;
    } else {
        let (dash, gap) = (style.dash.0.max(1) as i32, style.dash.1 as i32);
        let mut at = x;
        while at < x + 36 {
            let end = (at + dash).min(x + 36);
            area.draw(&PathElement::new(vec![(at, y), (end, y)], stroke))?;
            at = end + gap;
        }
    }
    match style.marker {
        None => {}
        Some(Marker::Circle) => area.draw(&Circle::new((x + 18, y), 4, style.color.filled()))?,
        Some(Marker::Triangle) => area.draw(&TriangleMarker::new((x + 18, y), 5, style.color.filled()))?,
        Some(Marker::Cross) => area.draw(&Cross::new((x + 18, y), 4, style.color.stroke_width(2)))?,
    }
    area.draw(&Text::new(
        label.to_string(),
        (x + 44, y - 7),
        ("sans-serif", 13).into_font(),
    ))?;
    Ok(())
}

fn draw(path: &Path, results: &[Series]) -> Result<(), Box<dyn std::error::Error>> {
    let refs = reference_lines();
    let ours = results.iter().flat_map(|(_, pts)| pts.iter().copied());
    let theirs = refs.iter().flat_map(|(_, pts)| pts.iter().copied());
    let all: Vec<(f64, f64)> = ours.chain(theirs).collect();
    let max_x = all.iter().map(|p| p.0).fold(3.0, f64::max).ceil();
    let min_y = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).max(0.01);
    let max_y = all.iter().map(|p| p.1).fold(1.0, f64::max);
    let (min_y, max_y) = (min_y / 1.5, max_y * 1.5);

    // The legend has its own column to the right of the plot, so it never
    // covers a line.
    let entries = results.len() + refs.len();
    let height = (720u32).max(120 + 22 * entries as u32);
    let root = SVGBackend::new(path, (1500, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot, legend) = root.split_horizontally(1040);
    let mut chart = ChartBuilder::on(&plot)
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

    let mut legend_rows: Vec<(LineStyle, String)> = Vec::new();
    for (i, (name, pts)) in results.iter().enumerate() {
        let style = series_style(i);
        let points = pts.iter().map(|&(x, y)| (x, y.max(min_y))).collect();
        draw_line(&mut chart, points, style)?;
        legend_rows.push((style, name.clone()));
    }
    for (i, (label, points)) in refs.into_iter().enumerate() {
        let style = reference_style(i);
        draw_line(&mut chart, points, style)?;
        legend_rows.push((style, label.to_string()));
    }
    legend.draw(&Text::new(
        "ours (coloured)".to_string(),
        (10, 58),
        ("sans-serif", 14).into_font(),
    ))?;
    let mut y = 84;
    for (k, (style, label)) in legend_rows.iter().enumerate() {
        if k == results.len() {
            y += 12;
            legend.draw(&Text::new(
                "PyDotCompute (grey, markers; theirs, not measured here)".to_string(),
                (10, y - 8),
                ("sans-serif", 14).into_font(),
            ))?;
            y += 26;
        }
        legend_entry(&legend, (14, y), *style, label)?;
        y += 22;
    }
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

    #[test]
    fn every_latency_series_has_its_own_style_and_references_differ() {
        let ours: Vec<LineStyle> = (0..40).map(series_style).collect();
        for (i, a) in ours.iter().enumerate() {
            for b in &ours[i + 1..] {
                assert!(a != b, "two series drawn alike: {a:?}");
            }
        }
        // Neighbours differ in colour and in dash.
        for w in ours.windows(2) {
            assert!(w[0].color != w[1].color && w[0].dash != w[1].dash);
        }
        let theirs: Vec<LineStyle> = (0..3).map(reference_style).collect();
        for (i, a) in theirs.iter().enumerate() {
            assert!(a.marker.is_some() && !ours.contains(a));
            for b in &theirs[i + 1..] {
                assert!(a.color != b.color && a.dash != b.dash && a.marker != b.marker);
            }
        }
    }
}
