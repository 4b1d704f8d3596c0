//! PNG charts of the results against N, drawn with plotters' bitmap backend and a TrueType font
//! read from disk (Debian's fonts-dejavu-core, or `EVERYNODE_BENCH_FONT`): `time.png` (create until
//! all Ready, rolling update) and `memory.png` (peak RSS and CPU seconds of a whole turn).

use crate::error::Error;
use crate::results::Results;
use crate::scenario::TurnResult;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const MIB: f64 = 1024.0 * 1024.0;

/// Registers the font once as plotters' "sans-serif".
fn ensure_font() -> Result<(), Error> {
    static DONE: OnceLock<Result<(), PathBuf>> = OnceLock::new();
    DONE.get_or_init(|| {
        let path = std::env::var_os("EVERYNODE_BENCH_FONT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT));
        let bytes = std::fs::read(&path).map_err(|_| path.clone())?;
        // Registered fonts live for the whole process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| path)
    })
    .clone()
    .map_err(Error::Font)
}

/// One line of a chart.
struct Series {
    label: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

fn series_of(r: &Results, get: &dyn Fn(&TurnResult) -> Option<f64>) -> Vec<Series> {
    let mut out = Vec::new();
    for budget in r.budgets() {
        for controller in ["everynode", "upstream"] {
            let color = match (controller, budget.as_str()) {
                ("everynode", "default") => RGBColor(31, 119, 180),
                ("everynode", _) => RGBColor(120, 190, 240),
                (_, "default") => RGBColor(214, 39, 40),
                _ => RGBColor(250, 150, 120),
            };
            let points = r
                .node_counts()
                .into_iter()
                .filter_map(|n| {
                    r.turn(controller, &budget, n)
                        .and_then(get)
                        .map(|v| (n as f64, v))
                })
                .collect();
            out.push(Series {
                label: format!("{controller}, {budget} budget"),
                color,
                points,
            });
        }
    }
    out
}

fn limit_series(r: &Results) -> Vec<Series> {
    r.budgets()
        .into_iter()
        .map(|budget| Series {
            label: format!("physical limit (pods accepted), {budget} budget"),
            color: if budget == "default" {
                RGBColor(60, 60, 60)
            } else {
                RGBColor(160, 160, 160)
            },
            points: r
                .node_counts()
                .into_iter()
                .filter_map(|n| r.limit(&budget, n).map(|l| (n as f64, l.all_created_s)))
                .collect(),
        })
        .collect()
}

fn chart_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |message| Error::Chart {
        path: path.to_path_buf(),
        message,
    }
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let max_x = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let max_y = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let max_y = if max_y > 0.0 { max_y * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x * 1.05, 0.0..max_y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("N (nodes)")
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        let color = s.color;
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(s.points.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn draw_two(
    path: &Path,
    left: (&str, &str, Vec<Series>),
    right: (&str, &str, Vec<Series>),
) -> Result<(), Error> {
    let err = chart_err(path);
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let (a, b) = root.split_horizontally(700);
    panel(&a, left.0, left.1, &left.2).map_err(&err)?;
    panel(&b, right.0, right.1, &right.2).map_err(&err)?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Writes `time.png` and `memory.png` into `dir`; returns their paths.
pub fn draw(r: &Results, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    ensure_font()?;
    let time = dir.join("time.png");
    let mut create = series_of(r, &|t| t.create_all_ready_s);
    create.extend(limit_series(r));
    draw_two(
        &time,
        ("Create a DaemonSet: all N pods Ready", "seconds", create),
        (
            "Rolling update (maxUnavailable 10%)",
            "seconds",
            series_of(r, &|t| t.rollout_s),
        ),
    )?;
    let memory = dir.join("memory.png");
    draw_two(
        &memory,
        (
            "Controller peak RSS over a turn",
            "MiB",
            series_of(r, &|t| t.high_water_mark_bytes.map(|b| b as f64 / MIB)),
        ),
        (
            "Controller CPU over a turn",
            "CPU seconds",
            series_of(r, &|t| Some(t.phases.iter().map(|p| p.cpu_seconds).sum())),
        ),
    )?;
    Ok(vec![time, memory])
}
