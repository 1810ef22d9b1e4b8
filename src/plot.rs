//! Plots of a training run, each written as a PNG and an SVG file of
//! [`WIDTH`] x [`HEIGHT`] pixels:
//!
//! - [`write_loss_plot`]: the loss at every logged epoch on a log-scale axis,
//!   with the validation loss when there is one (`loss.png`, `loss.svg`);
//! - [`write_fit_plot`]: predicted against actual target values with their
//!   least-squares line, like seaborn's `regplot` (`fit.png`, `fit.svg`).
//!
//! Text is drawn with DejaVu Sans, which `assets/fonts/` ships and the
//! binary embeds, so plotting needs no system fonts. The SVG files name the
//! font family `sans-serif` and leave the choice of font to the viewer.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use thiserror::Error;

use crate::report::{self, FileError};
use crate::train::{Halt, LogEntry, Metrics};

/// Width of every plot, in pixels.
pub const WIDTH: u32 = 960;
/// Height of every plot, in pixels.
pub const HEIGHT: u32 = 600;
/// Background colour of every plot.
pub const BACKGROUND: RGBColor = WHITE;

/// Largest number of points a scatter plot draws. Larger data sets are
/// thinned to every k-th row, which keeps the SVG file small; the
/// least-squares line still uses every row.
pub const MAX_SCATTER_POINTS: usize = 5000;

/// The family name under which the embedded font is registered with plotters.
const FONT: &str = "sans-serif";
static FONT_FILE: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Matplotlib's default first two colours ("tab:blue", "tab:orange").
const BLUE_SERIES: RGBColor = RGBColor(31, 119, 180);
const ORANGE_SERIES: RGBColor = RGBColor(255, 127, 14);
const RED_LINE: RGBColor = RGBColor(214, 39, 40);
const GREY_LINE: RGBColor = RGBColor(127, 127, 127);

/// Curves with at most this many logged epochs also mark each point.
const MAX_MARKED_POINTS: usize = 100;

/// Errors while drawing or writing a plot.
#[derive(Debug, Error)]
pub enum PlotError {
    #[error("cannot create the plot directory {path}: {cause}")]
    CreateDirectory { path: PathBuf, cause: std::io::Error },
    #[error("cannot draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("the number of predicted values ({predicted}) differs from the number of actual values ({actual})")]
    LengthMismatch { actual: usize, predicted: usize },
    #[error(transparent)]
    Write(#[from] FileError),
}

/// The loss history of one run, for [`write_loss_plot`].
pub struct LossCurve<'a> {
    /// Caption, such as `2 -> 5 (relu) -> 1, mse, adam lr 1`.
    pub title: &'a str,
    /// Name of the loss function for the axis label, such as `mse`, if known.
    pub loss_name: Option<&'a str>,
    /// Metrics at each logged epoch, in epoch order.
    pub history: &'a [LogEntry],
}

/// Predicted and actual values of one target, for [`write_fit_plot`].
pub struct FitScatter<'a> {
    /// Start of the caption, such as the model's description.
    pub title: &'a str,
    /// Name of the target column, for the axis labels.
    pub target: &'a str,
    /// Description of the rows for the caption and legend, such as `training rows`.
    pub rows_label: &'a str,
    /// Actual target values, in the data's units.
    pub actual: &'a [f32],
    /// Predicted values of the same rows, in the data's units.
    pub predicted: &'a [f32],
}

/// A straight line `y = slope * x + intercept`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    pub slope: f64,
    pub intercept: f64,
}

/// Fits `y = slope * x + intercept` by ordinary least squares. Returns None
/// for fewer than two points or when every `x` is the same.
pub fn least_squares(points: &[(f64, f64)]) -> Option<Line> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let covariance: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let variance: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let is_usable = variance > 0.0 && variance.is_finite() && covariance.is_finite();
    if !is_usable {
        return None;
    }
    let slope = covariance / variance;
    Some(Line {
        slope,
        intercept: mean_y - slope * mean_x,
    })
}

/// Returns `history` with the metrics of the final parameters appended at
/// `epochs_done`, the epoch after the last update, so the curve reaches the
/// end of the run. The history stays as it is when it already ends at
/// `epochs_done`, and after early stopping, whose final parameters are those
/// of an earlier logged epoch.
pub fn with_final_point(
    history: &[LogEntry],
    halt: Option<Halt>,
    epochs_done: u64,
    train: Metrics,
    validation: Option<Metrics>,
    seconds: f64,
) -> Vec<LogEntry> {
    let mut points = history.to_vec();
    let early_stopped = matches!(halt, Some(Halt::EarlyStopped { .. }));
    if !early_stopped && history.last().is_none_or(|last| last.epoch < epochs_done) {
        points.push(LogEntry {
            epoch: epochs_done,
            train,
            validation,
            elapsed: seconds,
        });
    }
    points
}

/// Draws the loss curve into `directory/loss.png` and `directory/loss.svg`,
/// creating the directory if it is missing. Returns the paths written.
///
/// Losses that are not finite or not positive cannot be drawn on a log scale
/// and are left out. A history without any other value gives an empty chart
/// with a note.
pub fn write_loss_plot(directory: &Path, curve: &LossCurve<'_>) -> Result<[PathBuf; 2], PlotError> {
    let [png, svg] = plot_paths(directory, "loss")?;
    write_png(&png, |area| draw_loss(area, curve))?;
    write_svg(&svg, |area| draw_loss(area, curve))?;
    Ok([png, svg])
}

/// Draws predicted against actual values into `directory/fit.png` and
/// `directory/fit.svg`, creating the directory if it is missing. Returns the
/// paths written.
///
/// Rows where either value is not finite are left out of the plot and of
/// the least-squares line.
pub fn write_fit_plot(directory: &Path, scatter: &FitScatter<'_>) -> Result<[PathBuf; 2], PlotError> {
    if scatter.actual.len() != scatter.predicted.len() {
        return Err(PlotError::LengthMismatch {
            actual: scatter.actual.len(),
            predicted: scatter.predicted.len(),
        });
    }
    let [png, svg] = plot_paths(directory, "fit")?;
    write_png(&png, |area| draw_fit(area, scatter))?;
    write_svg(&svg, |area| draw_fit(area, scatter))?;
    Ok([png, svg])
}

/// Creates `directory` if needed and returns the PNG and SVG paths of `stem`.
fn plot_paths(directory: &Path, stem: &str) -> Result<[PathBuf; 2], PlotError> {
    std::fs::create_dir_all(directory).map_err(|cause| PlotError::CreateDirectory {
        path: directory.to_path_buf(),
        cause,
    })?;
    Ok([
        directory.join(format!("{stem}.png")),
        directory.join(format!("{stem}.svg")),
    ])
}

/// A drawing error, as text because its type depends on the backend.
struct DrawError(String);

impl<E: Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        Self(error.to_string())
    }
}

/// Registers the embedded font with plotters, once per process.
fn register_font(path: &Path) -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered =
        *REGISTERED.get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_FILE).is_ok());
    if registered {
        Ok(())
    } else {
        Err(PlotError::Draw {
            path: path.to_path_buf(),
            message: "the embedded font assets/fonts/DejaVuSans.ttf is not a valid font file".into(),
        })
    }
}

/// Draws into an RGB buffer and writes it as a PNG file, atomically.
fn write_png(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), DrawError>,
) -> Result<(), PlotError> {
    register_font(path)?;
    let mut pixels = vec![0_u8; WIDTH as usize * HEIGHT as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&area)
            .and_then(|()| area.present().map_err(DrawError::from))
            .map_err(|DrawError(message)| PlotError::Draw {
                path: path.to_path_buf(),
                message,
            })?;
    }
    report::write_atomically(path, |writer| {
        let mut encoder = png::Encoder::new(writer, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // Plots are mostly flat colour: with adaptive filters and the best
        // compression, the textbook run's plots take a quarter to a third of
        // the bytes of the default settings, for a few milliseconds more.
        encoder.set_compression(png::Compression::Best);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut png_writer = encoder.write_header().map_err(std::io::Error::other)?;
        png_writer.write_image_data(&pixels).map_err(std::io::Error::other)?;
        png_writer.finish().map_err(std::io::Error::other)
    })?;
    Ok(())
}

/// Draws into an SVG document and writes it, atomically.
fn write_svg(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), DrawError>,
) -> Result<(), PlotError> {
    register_font(path)?;
    let mut document = String::new();
    {
        let area = SVGBackend::with_string(&mut document, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&area)
            .and_then(|()| area.present().map_err(DrawError::from))
            .map_err(|DrawError(message)| PlotError::Draw {
                path: path.to_path_buf(),
                message,
            })?;
    }
    report::write_atomically(path, |writer| writer.write_all(document.as_bytes()))?;
    Ok(())
}

fn draw_loss<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, curve: &LossCurve<'_>) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    area.fill(&BACKGROUND)?;
    let drawable = |epoch: u64, loss: f64| (loss.is_finite() && loss > 0.0).then_some((epoch, loss));
    let train: Vec<(u64, f64)> = curve
        .history
        .iter()
        .filter_map(|entry| drawable(entry.epoch, entry.train.loss))
        .collect();
    let validation: Vec<(u64, f64)> = curve
        .history
        .iter()
        .filter_map(|entry| entry.validation.and_then(|metrics| drawable(entry.epoch, metrics.loss)))
        .collect();

    let last_epoch = curve.history.iter().map(|entry| entry.epoch).max().unwrap_or(0).max(1);
    let (low, high) = log_axis_range(train.iter().chain(&validation).map(|point| point.1));
    let mut chart = ChartBuilder::on(area)
        .caption(curve.title, (FONT, 24))
        .margin(16)
        .margin_right(40)
        .x_label_area_size(56)
        .y_label_area_size(88)
        .build_cartesian_2d(
            0..last_epoch,
            (low..high).log_scale().with_key_points(log_axis_ticks(low, high)),
        )?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(match curve.loss_name {
            Some(name) => format!("{name} loss (log scale)"),
            None => "loss (log scale)".to_string(),
        })
        .y_label_formatter(&|loss| format_number(*loss))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 18))
        .light_line_style(BACKGROUND.mix(0.0))
        .draw()?;

    let series = [
        ("training loss", &train, BLUE_SERIES),
        ("validation loss", &validation, ORANGE_SERIES),
    ];
    for (label, points, color) in series {
        if points.is_empty() {
            continue;
        }
        let marker_size = if points.len() <= MAX_MARKED_POINTS { 3 } else { 0 };
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)).point_size(marker_size))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2)));
    }
    if train.is_empty() && validation.is_empty() {
        let message = if curve.history.is_empty() {
            "no logged epochs"
        } else {
            "no finite, positive loss to draw on a log scale"
        };
        draw_centered_note(&chart.plotting_area().strip_coord_spec(), message)?;
    } else {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 16))
            .background_style(BACKGROUND.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
    }
    Ok(())
}

fn draw_fit<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, scatter: &FitScatter<'_>) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    area.fill(&BACKGROUND)?;
    let points: Vec<(f64, f64)> = scatter
        .actual
        .iter()
        .zip(scatter.predicted)
        .map(|(&actual, &predicted)| (f64::from(actual), f64::from(predicted)))
        .filter(|(actual, predicted)| actual.is_finite() && predicted.is_finite())
        .collect();
    let line = least_squares(&points);

    // The same range on both axes, so perfect predictions lie on the diagonal.
    let (low, high) = linear_axis_range(points.iter().flat_map(|&(actual, predicted)| [actual, predicted]));
    let caption = match coefficient_of_determination(&points) {
        Some(r2) => format!(
            "{}: {} {}, R² {}",
            scatter.title,
            points.len(),
            scatter.rows_label,
            format_number(r2)
        ),
        None => format!("{}: {} {}", scatter.title, points.len(), scatter.rows_label),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 22))
        .margin(16)
        .margin_right(40)
        .x_label_area_size(56)
        .y_label_area_size(88)
        .build_cartesian_2d(low..high, low..high)?;
    chart
        .configure_mesh()
        .x_desc(format!("actual {} (data units)", scatter.target))
        .y_desc(format!("predicted {} (data units)", scatter.target))
        .x_label_formatter(&|value| format_number(*value))
        .y_label_formatter(&|value| format_number(*value))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 18))
        .light_line_style(BACKGROUND.mix(0.0))
        .draw()?;

    let stride = points.len().div_ceil(MAX_SCATTER_POINTS).max(1);
    let points_label = if stride > 1 {
        format!("every {} of {} {}", ordinal(stride), points.len(), scatter.rows_label)
    } else {
        scatter.rows_label.to_string()
    };
    chart
        .draw_series(
            points
                .iter()
                .step_by(stride)
                .map(|&point| Circle::new(point, 3, BLUE_SERIES.mix(0.5).filled())),
        )?
        .label(points_label)
        .legend(|(x, y)| Circle::new((x + 12, y), 4, BLUE_SERIES.mix(0.5).filled()));

    chart
        .draw_series(DashedLineSeries::new(
            [(low, low), (high, high)],
            8,
            6,
            GREY_LINE.stroke_width(1),
        ))?
        .label("predicted = actual")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], GREY_LINE.stroke_width(1)));

    if let Some(line) = line {
        let at = |x: f64| (x, line.slope * x + line.intercept);
        chart
            .draw_series(LineSeries::new([at(low), at(high)], RED_LINE.stroke_width(2)))?
            .label(format!(
                "least squares: predicted = {} × actual {} {}",
                format_number(line.slope),
                if line.intercept < 0.0 { "-" } else { "+" },
                format_number(line.intercept.abs())
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], RED_LINE.stroke_width(2)));
    }

    if points.is_empty() {
        draw_centered_note(
            &chart.plotting_area().strip_coord_spec(),
            "no rows with finite actual and predicted values",
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 16))
        .background_style(BACKGROUND.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// Writes `note` in the middle of `area`, for a chart without data.
fn draw_centered_note<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, note: &str) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    let (width, height) = area.dim_in_pixel();
    let style = TextStyle::from((FONT, 20).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(note, (width as i32 / 2, height as i32 / 2), style))?;
    Ok(())
}

/// R² of the predictions (second) against the actual values (first), as
/// scikit-learn's `r2_score`. None for fewer than two points or constant actual values.
fn coefficient_of_determination(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let mean = points.iter().map(|p| p.0).sum::<f64>() / points.len() as f64;
    let total: f64 = points.iter().map(|p| (p.0 - mean).powi(2)).sum();
    let residual: f64 = points.iter().map(|p| (p.0 - p.1).powi(2)).sum();
    (total > 0.0).then(|| 1.0 - residual / total)
}

/// Returns a log-scale axis range that contains every value, positive and
/// finite, with some room; `0.1..10` when there are none.
fn log_axis_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), v| {
        (min.min(v), max.max(v))
    });
    if !(min.is_finite() && max.is_finite()) {
        return (0.1, 10.0);
    }
    if max / min < 1.5 {
        (min / 1.5, max * 1.5)
    } else {
        (min / 1.15, max * 1.15)
    }
}

/// Returns the tick values of a log-scale axis from `low` to `high`. They are
/// the coarsest of the series 1, 1-2-5, 1-2-3-5 and 1-9 times a power of ten
/// that gives at least four ticks. A very long axis gets at most ten powers of ten.
fn log_axis_ticks(low: f64, high: f64) -> Vec<f64> {
    let first_power = low.log10().floor() as i32;
    let last_power = high.log10().ceil() as i32;
    let ticks_with = |multipliers: &[f64], power_step: usize| -> Vec<f64> {
        (first_power..=last_power)
            .step_by(power_step)
            .flat_map(|power| multipliers.iter().map(move |m| m * 10_f64.powi(power)))
            .filter(|tick| (low..=high).contains(tick))
            .collect()
    };
    let powers = ticks_with(&[1.0], 1);
    if powers.len() > 10 {
        return ticks_with(&[1.0], powers.len().div_ceil(10));
    }
    let series: [&[f64]; 4] = [
        &[1.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 2.0, 3.0, 5.0],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ];
    let mut ticks = Vec::new();
    for multipliers in series {
        ticks = ticks_with(multipliers, 1);
        if ticks.len() >= 4 {
            break;
        }
    }
    ticks
}

/// Returns a linear axis range that contains every finite value with 5% room
/// on each side; `0..1` when there are none.
fn linear_axis_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), v| {
        (min.min(v), max.max(v))
    });
    if !(min.is_finite() && max.is_finite()) {
        return (0.0, 1.0);
    }
    let span = max - min;
    if span > 0.0 {
        (min - 0.05 * span, max + 0.05 * span)
    } else {
        let room = if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
        (min - room, max + room)
    }
}

/// Formats an axis or legend number with four significant digits, in
/// scientific notation outside 0.001..100000.
fn format_number(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor();
    if !(-3.0..5.0).contains(&magnitude) {
        return format!("{value:.2e}");
    }
    let decimals = (3.0 - magnitude).max(0.0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Formats `n` as an English ordinal: 2nd, 3rd, 11th, 21st.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_exact_line() {
        let points: Vec<(f64, f64)> = (0..5).map(|x| (f64::from(x), 2.0 * f64::from(x) - 1.0)).collect();
        let line = least_squares(&points).expect("a line through five points");
        assert!((line.slope - 2.0).abs() < 1e-12, "slope {}", line.slope);
        assert!((line.intercept + 1.0).abs() < 1e-12, "intercept {}", line.intercept);
    }

    #[test]
    fn least_squares_constant_x_none() {
        assert_eq!(least_squares(&[(1.0, 2.0), (1.0, 3.0)]), None);
        assert_eq!(least_squares(&[(1.0, 2.0)]), None);
    }

    #[test]
    fn format_number_significant_digits() {
        let cases = [
            (3620.528, "3621"),
            (0.25, "0.25"),
            (1.0, "1"),
            (-12.3456, "-12.35"),
            (123456.0, "1.23e5"),
            (0.0001234, "1.23e-4"),
            (0.0, "0"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_number(value), expected, "format_number({value})");
        }
    }

    #[test]
    fn log_axis_ticks_cases() {
        let cases: [(f64, f64, &[f64]); 4] = [
            (3130.0, 33000.0, &[5000.0, 10000.0, 20000.0, 30000.0]),
            (0.001, 1000.0, &[0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]),
            (1.5, 2.5, &[2.0]),
            (1e-10, 1e20, &[1e-10, 1e-6, 0.01, 100.0, 1e6, 1e10, 1e14, 1e18]),
        ];
        for (low, high, expected) in cases {
            let ticks = log_axis_ticks(low, high);
            assert_eq!(ticks.len(), expected.len(), "ticks from {low} to {high}: {ticks:?}");
            for (tick, wanted) in ticks.iter().zip(expected) {
                assert!(
                    (tick / wanted - 1.0).abs() < 1e-9,
                    "ticks from {low} to {high}: {ticks:?}"
                );
            }
        }
    }

    #[test]
    fn ordinal_suffixes() {
        let cases = [
            (1, "1st"),
            (2, "2nd"),
            (3, "3rd"),
            (4, "4th"),
            (11, "11th"),
            (12, "12th"),
            (21, "21st"),
        ];
        for (n, expected) in cases {
            assert_eq!(ordinal(n), expected, "ordinal({n})");
        }
    }

    #[test]
    fn coefficient_of_determination_perfect_and_mean() {
        let perfect = [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)];
        assert_eq!(coefficient_of_determination(&perfect), Some(1.0));
        let mean = [(1.0, 2.0), (2.0, 2.0), (3.0, 2.0)];
        assert_eq!(coefficient_of_determination(&mean), Some(0.0));
    }
}
