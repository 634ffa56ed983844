//! SVG figures for the reproductions, drawn with plotters. Plain data in (series of points,
//! plans), an SVG string out, so the caller decides where files go and nothing is written
//! until every figure has rendered.

use migopt_models::{Error, Plan};
use plotters::prelude::*;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points (x, y), in x order.
    pub points: Vec<(f64, f64)>,
}

/// What a line chart shows.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// The lines.
    pub series: &'a [Series],
    /// A horizontal reference line (value, label), e.g. the SLA.
    pub hline: Option<(f64, &'a str)>,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Cap on the y axis (points above are clipped), e.g. a multiple of the SLA.
    pub y_max: Option<f64>,
}

const PALETTE: [RGBColor; 12] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 128, 0),
];

/// A colour for the i-th series or model, stable across figures.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn draw_err<E: std::fmt::Debug>(e: E) -> Error {
    Error::Invalid(format!("drawing failed: {e:?}"))
}

/// The axes' ranges (x0, x1, y0, y1): the finite points and the horizontal line, capped at
/// `y_max`, never empty.
fn ranges(c: &Chart<'_>) -> (f64, f64, f64, f64) {
    let pts = c.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if x.is_finite() && y.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if let Some((h, _)) = c.hline {
        y0 = y0.min(h);
        y1 = y1.max(h);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if let Some(m) = c.y_max {
        y1 = y1.min(m);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    (x0, x1, y0, y1)
}

/// Renders a line chart to SVG text.
pub fn line_chart(c: &Chart<'_>) -> Result<String, Error> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (x0, x1, y0, y1) = ranges(c);
        let mut b = ChartBuilder::on(&root);
        b.caption(c.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(70);
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(c.x_label)
                    .y_desc(c.y_label)
                    .light_line_style(RGBColor(235, 235, 235))
                    .draw()
                    .map_err(draw_err)?;
                for (i, s) in c.series.iter().enumerate() {
                    let col = colour(i);
                    let pts: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .copied()
                        .filter(|p| {
                            p.0.is_finite() && p.1.is_finite() && p.1 > 0.0
                                || !c.log_y && p.1.is_finite()
                        })
                        .map(|(x, y)| (x, y.min(y1)))
                        .collect();
                    chart
                        .draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
                        .map_err(draw_err)?
                        .label(s.label.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2))
                        });
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, col.filled())))
                        .map_err(draw_err)?;
                }
                if let Some((h, label)) = c.hline {
                    let red = RGBColor(200, 0, 0);
                    chart
                        .draw_series(LineSeries::new(vec![(x0, h), (x1, h)], red.stroke_width(1)))
                        .map_err(draw_err)?
                        .label(label.to_string())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red));
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperLeft)
                    .draw()
                    .map_err(draw_err)?;
            }};
        }
        if c.log_y {
            let lo = if y0 > 0.0 { y0 * 0.8 } else { 1e-3 };
            body!(b
                .build_cartesian_2d(x0..x1, (lo..y1 * 1.25).log_scale())
                .map_err(draw_err)?);
        } else {
            body!(b
                .build_cartesian_2d(x0..x1, 0f64.min(y0)..y1 * 1.05)
                .map_err(draw_err)?);
        }
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

const LEGEND_COLUMNS: usize = 5;

/// One instance of a plan drawing: a box in its model's colour, outlined, with its profile,
/// batch (and processes) and model.
fn draw_instance(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    a: &migopt_models::Assignment,
    colour: RGBColor,
    [(x, y), (x2, y2)]: [(i32, i32); 2],
) -> Result<(), Error> {
    root.draw(&Rectangle::new(
        [(x, y), (x2, y2)],
        colour.mix(0.75).filled(),
    ))
    .map_err(draw_err)?;
    root.draw(&Rectangle::new([(x, y), (x2, y2)], BLACK.stroke_width(1)))
        .map_err(draw_err)?;
    let label = if a.procs > 1 {
        format!("{} b{} x{}", a.profile, a.batch, a.procs)
    } else {
        format!("{} b{}", a.profile, a.batch)
    };
    root.draw(&Text::new(label, (x + 4, y + 5), ("sans-serif", 12)))
        .map_err(draw_err)?;
    root.draw(&Text::new(
        a.model.to_string(),
        (x + 4, y + 21),
        ("sans-serif", 12),
    ))
    .map_err(draw_err)
}

/// Draws a plan's GPUs: one row per GPU, memory slots left to right, each instance a box
/// coloured by model and labelled with its profile; idle slots are left grey.
pub fn plan_drawing(plan: &Plan, title: &str, models: &[String]) -> Result<String, Error> {
    let gpu = plan.gpu_spec()?;
    let rows = plan.gpus.len().max(1);
    let (w, row_h, top, left) = (900i32, 46i32, 60i32, 70i32);
    // The legend wraps every LEGEND_COLUMNS models.
    let legend_rows = models.len().div_ceil(LEGEND_COLUMNS).max(1) as i32;
    let h = top + rows as i32 * row_h + 42 + 20 * legend_rows;
    let slot_w = (w - left - 20) / gpu.memory_slots as i32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w as u32, h as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        root.draw(&Text::new(
            title.to_string(),
            (left, 20),
            ("sans-serif", 20),
        ))
        .map_err(draw_err)?;
        for (r, g) in plan.gpus.iter().enumerate() {
            let y = top + r as i32 * row_h;
            root.draw(&Text::new(
                format!("GPU {}", g.index),
                (8, y + row_h / 2 - 7),
                ("sans-serif", 14),
            ))
            .map_err(draw_err)?;
            for s in 0..gpu.memory_slots as i32 {
                let x = left + s * slot_w;
                root.draw(&Rectangle::new(
                    [(x, y), (x + slot_w - 2, y + row_h - 6)],
                    RGBColor(230, 230, 230).filled(),
                ))
                .map_err(draw_err)?;
            }
            for a in &g.layout {
                let spec = gpu.profile(a.profile.as_str())?;
                let mi = models
                    .iter()
                    .position(|m| m == a.model.as_str())
                    .unwrap_or(models.len());
                let x = left + a.start as i32 * slot_w;
                let x2 = x + spec.slots as i32 * slot_w - 2;
                draw_instance(&root, a, colour(mi), [(x, y), (x2, y + row_h - 6)])?;
            }
        }
        let ly = top + rows as i32 * row_h + 14;
        for (i, m) in models.iter().enumerate() {
            let x = left + (i % LEGEND_COLUMNS) as i32 * 160;
            let ly = ly + (i / LEGEND_COLUMNS) as i32 * 20;
            root.draw(&Rectangle::new(
                [(x, ly), (x + 14, ly + 14)],
                colour(i).mix(0.75).filled(),
            ))
            .map_err(draw_err)?;
            root.draw(&Text::new(m.clone(), (x + 20, ly), ("sans-serif", 13)))
                .map_err(draw_err)?;
        }
        root.draw(&Text::new(
            "memory slots 0..7 left to right; grey = idle",
            (left, ly + 20 * legend_rows + 2),
            ("sans-serif", 12),
        ))
        .map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_chart_renders_series_and_sla_line() {
        let s = vec![
            Series {
                label: "ELSA".into(),
                points: vec![(100.0, 5.0), (200.0, 9.0), (300.0, 30.0)],
            },
            Series {
                label: "FIFS".into(),
                points: vec![(100.0, 6.0), (200.0, 14.0), (300.0, 80.0)],
            },
        ];
        let svg = line_chart(&Chart {
            title: "p99 vs load",
            x_label: "queries/s",
            y_label: "p99 ms",
            series: &s,
            hline: Some((40.0, "SLA")),
            log_y: true,
            y_max: None,
        })
        .unwrap();
        assert!(svg.starts_with("<svg"));
        for want in ["ELSA", "FIFS", "SLA", "p99 vs load"] {
            assert!(svg.contains(want), "{want}");
        }
    }
}
