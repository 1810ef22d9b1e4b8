//! Tests of the plots: the library functions in `shadertrain::plot`, and the
//! files that `train --plot` and the `plot` command write. Every PNG is
//! decoded and checked for its size and for drawn pixels, every SVG for its
//! size, its text and its end tag.

mod common;

use std::path::Path;

use common::binary::{Run, create_work_directory, run};
use shadertrain::plot::{self, BACKGROUND, FitScatter, HEIGHT, LossCurve, WIDTH};
use shadertrain::train::{LogEntry, Metrics};

/// A decoded RGB or RGBA PNG.
struct Picture {
    width: u32,
    height: u32,
    /// Bytes per pixel: 3 for RGB, 4 for RGBA.
    channels: usize,
    pixels: Vec<u8>,
}

impl Picture {
    fn read(path: &Path) -> Picture {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        let decoder = png::Decoder::new(std::io::BufReader::new(file));
        let mut reader = decoder
            .read_info()
            .unwrap_or_else(|e| panic!("{} is not a valid PNG: {e}", path.display()));
        let mut pixels = vec![0; reader.output_buffer_size()];
        let frame = reader
            .next_frame(&mut pixels)
            .unwrap_or_else(|e| panic!("cannot decode {}: {e}", path.display()));
        let channels = match frame.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("{} has color type {other:?}, expected RGB or RGBA", path.display()),
        };
        assert_eq!(frame.bit_depth, png::BitDepth::Eight, "{} bit depth", path.display());
        pixels.truncate(frame.buffer_size());
        Picture {
            width: frame.width,
            height: frame.height,
            channels,
            pixels,
        }
    }

    /// Counts the pixels in rows `rows` that differ from the background colour.
    fn drawn_pixels(&self, rows: std::ops::Range<u32>) -> usize {
        let background = [BACKGROUND.0, BACKGROUND.1, BACKGROUND.2];
        let row_bytes = self.width as usize * self.channels;
        let start = rows.start as usize * row_bytes;
        let end = (rows.end.min(self.height) as usize) * row_bytes;
        self.pixels[start..end]
            .chunks(self.channels)
            .filter(|pixel| pixel[..3] != background)
            .count()
    }
}

/// Minimum number of drawn pixels of a plot with axes, labels and data: 1% of the picture.
const MIN_DRAWN_PIXELS: usize = (WIDTH * HEIGHT / 100) as usize;

/// Asserts that `path` is a PNG of the plot size with more than the background.
fn assert_png_plot(path: &Path) {
    let picture = Picture::read(path);
    assert_eq!(
        (picture.width, picture.height),
        (WIDTH, HEIGHT),
        "size of {}",
        path.display()
    );
    let drawn = picture.drawn_pixels(0..HEIGHT);
    assert!(
        drawn > MIN_DRAWN_PIXELS,
        "{} has only {drawn} pixels that are not background, expected more than {MIN_DRAWN_PIXELS}",
        path.display()
    );
}

/// Asserts that `path` is a complete SVG document of the plot size, and returns its text.
fn assert_svg_plot(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        text.starts_with(&format!("<svg width=\"{WIDTH}\" height=\"{HEIGHT}\"")),
        "{} does not start with an <svg> element of {WIDTH} x {HEIGHT}: {}",
        path.display(),
        &text[..text.len().min(200)]
    );
    assert!(
        text.trim_end().ends_with("</svg>"),
        "{} does not end with </svg>",
        path.display()
    );
    assert!(text.contains("<text"), "{} has no text", path.display());
    assert!(
        text.contains("<polyline") || text.contains("<path") || text.contains("<circle"),
        "{} draws no lines or points",
        path.display()
    );
    text
}

fn metrics(loss: f64) -> Metrics {
    Metrics {
        loss,
        mse: loss,
        rmse: loss.sqrt(),
        mae: loss.sqrt(),
        r2: 0.5,
    }
}

/// Builds a history of 41 logged epochs whose loss falls from 30000 towards 3600.
fn history(with_validation: bool) -> Vec<LogEntry> {
    (0..=40_u32)
        .map(|i| {
            let decay = (-f64::from(i) / 4.0).exp();
            LogEntry {
                epoch: u64::from(i) * 1000,
                train: metrics(3600.0 + 26000.0 * decay),
                validation: with_validation.then(|| metrics(3900.0 + 24000.0 * decay)),
                elapsed: f64::from(i) * 0.01,
            }
        })
        .collect()
}

// ---------------------------------------------------------------- library

#[test]
fn loss_plot_files_valid() {
    for with_validation in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let directory = dir.path().join("new/plots");
        let history = history(with_validation);
        let curve = LossCurve {
            title: "2 -> 5 (relu) -> 1, mse, adam lr 1",
            loss_name: Some("mse"),
            history: &history,
        };

        let written = plot::write_loss_plot(&directory, &curve).expect("write the loss plot");

        assert_eq!(written, [directory.join("loss.png"), directory.join("loss.svg")]);
        assert_png_plot(&written[0]);
        let svg = assert_svg_plot(&written[1]);
        assert!(
            svg.contains("2 -&gt; 5 (relu) -&gt; 1, mse, adam lr 1"),
            "title missing from the SVG"
        );
        assert!(svg.contains("mse loss (log scale)"), "axis label missing from the SVG");
        assert!(svg.contains("training loss"), "legend entry missing from the SVG");
        assert_eq!(
            svg.contains("validation loss"),
            with_validation,
            "validation legend entry present: {}, expected {with_validation}",
            svg.contains("validation loss")
        );
    }
}

#[test]
fn fit_plot_files_valid() {
    let dir = tempfile::tempdir().unwrap();
    let actual: Vec<f32> = (0..442).map(|i| 25.0 + (i as f32 * 7.3) % 320.0).collect();
    let predicted: Vec<f32> = actual
        .iter()
        .enumerate()
        .map(|(i, a)| 90.0 + 0.4 * a + ((i * 37 % 100) as f32 - 50.0))
        .collect();
    let scatter = FitScatter {
        title: "2 -> 5 (relu) -> 1",
        target: "target",
        rows_label: "training rows",
        actual: &actual,
        predicted: &predicted,
    };

    let written = plot::write_fit_plot(dir.path(), &scatter).expect("write the fit plot");

    assert_eq!(written, [dir.path().join("fit.png"), dir.path().join("fit.svg")]);
    assert_png_plot(&written[0]);
    let svg = assert_svg_plot(&written[1]);
    assert!(
        svg.contains("actual target (data units)"),
        "x axis label missing from the SVG"
    );
    assert!(
        svg.contains("predicted target (data units)"),
        "y axis label missing from the SVG"
    );
    assert!(
        svg.contains("least squares: predicted = "),
        "least-squares legend entry missing"
    );
    assert!(svg.contains("442 training rows"), "row count missing from the caption");
    assert_eq!(
        svg.matches("<circle").count(),
        442 + 1,
        "one circle per row plus the legend's"
    );
}

#[test]
fn fit_plot_thins_large_data() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 3 * plot::MAX_SCATTER_POINTS;
    let actual: Vec<f32> = (0..rows).map(|i| i as f32).collect();
    let scatter = FitScatter {
        title: "1 -> 1",
        target: "y",
        rows_label: "rows",
        actual: &actual,
        predicted: &actual,
    };

    let written = plot::write_fit_plot(dir.path(), &scatter).expect("write the fit plot");

    let svg = std::fs::read_to_string(&written[1]).unwrap();
    let circles = svg.matches("<circle").count() - 1;
    assert!(
        circles <= plot::MAX_SCATTER_POINTS,
        "{circles} points drawn, at most {} expected",
        plot::MAX_SCATTER_POINTS
    );
    assert!(
        svg.contains(&format!("every 3rd of {rows} rows")),
        "the legend does not say that rows were thinned"
    );
}

#[test]
fn plot_text_rendered_without_system_fonts() {
    // The caption is drawn with the embedded font: a picture with a caption
    // has drawn pixels above the chart, one without a caption has none there.
    let dir = tempfile::tempdir().unwrap();
    let history = history(false);
    let caption_rows = 0..40;
    let mut drawn = Vec::new();
    for title in ["", "2 -> 5 (relu) -> 1, mse, adam lr 1"] {
        let directory = dir.path().join(if title.is_empty() { "untitled" } else { "titled" });
        let curve = LossCurve {
            title,
            loss_name: None,
            history: &history,
        };
        let written = plot::write_loss_plot(&directory, &curve).expect("write the loss plot");
        drawn.push(Picture::read(&written[0]).drawn_pixels(caption_rows.clone()));
    }
    assert_eq!(drawn[0], 0, "pixels drawn above the chart without a caption");
    assert!(
        drawn[1] > 500,
        "only {} pixels of caption text drawn, so the font did not render",
        drawn[1]
    );
}

#[test]
fn plots_without_drawable_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut diverged = history(false);
    for entry in &mut diverged {
        entry.train.loss = f64::NAN;
    }
    let curve = LossCurve {
        title: "diverged",
        loss_name: Some("mse"),
        history: &diverged,
    };
    let written = plot::write_loss_plot(dir.path(), &curve).expect("write the loss plot");
    let svg = assert_svg_plot(&written[1]);
    assert!(
        svg.contains("no finite, positive loss to draw on a log scale"),
        "no note on an empty loss plot"
    );

    let nan = [f32::NAN; 3];
    let scatter = FitScatter {
        title: "diverged",
        target: "y",
        rows_label: "rows",
        actual: &[1.0, 2.0, 3.0],
        predicted: &nan,
    };
    let written = plot::write_fit_plot(dir.path(), &scatter).expect("write the fit plot");
    let svg = assert_svg_plot(&written[1]);
    assert!(
        svg.contains("no rows with finite actual and predicted values"),
        "no note on an empty fit plot"
    );
}

#[test]
fn fit_plot_rejects_length_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let scatter = FitScatter {
        title: "t",
        target: "y",
        rows_label: "rows",
        actual: &[1.0, 2.0],
        predicted: &[1.0],
    };
    let error = plot::write_fit_plot(dir.path(), &scatter).expect_err("lengths differ");
    assert!(error.to_string().contains("(1)"), "message: {error}");
    assert!(
        !dir.path().join("fit.png").exists(),
        "fit.png written despite the error"
    );
}

// ---------------------------------------------------------------- binary

fn assert_plot_directory(run: &Run, directory: &Path, stems: &[&str]) {
    for stem in stems {
        let png = directory.join(format!("{stem}.png"));
        let svg = directory.join(format!("{stem}.svg"));
        assert!(png.exists(), "{} missing\n{}", png.display(), run.describe());
        assert!(svg.exists(), "{} missing\n{}", svg.display(), run.describe());
        assert_png_plot(&png);
        assert_svg_plot(&svg);
    }
}

#[test]
fn train_plot_writes_four_files() {
    for validation in [&[][..], &["--val-fraction", "0.2"][..]] {
        let dir = create_work_directory();
        let mut args = vec![
            "train",
            "--device",
            "cpu",
            "--epochs",
            "300",
            "--log-every",
            "50",
            "--plot",
            "out/plots",
        ];
        args.extend(validation);
        let run = run(dir.path(), &args);

        assert!(run.succeeded(), "train failed\n{}", run.describe());
        let directory = dir.path().join("out/plots");
        assert_plot_directory(&run, &directory, &["loss", "fit"]);
        let loss_svg = std::fs::read_to_string(directory.join("loss.svg")).unwrap();
        assert!(
            loss_svg.contains("2 -&gt; 5 (relu) -&gt; 1, mse, adam lr 1"),
            "the loss plot's title does not name the model\n{}",
            run.describe()
        );
        assert_eq!(
            loss_svg.contains("validation loss"),
            !validation.is_empty(),
            "validation curve in the plot of a run with {validation:?}"
        );
        let fit_svg = std::fs::read_to_string(directory.join("fit.svg")).unwrap();
        let rows = if validation.is_empty() { "442" } else { "354" };
        assert!(
            fit_svg.contains(&format!("{rows} training rows")),
            "the fit plot does not show the {rows} training rows\n{}",
            run.describe()
        );
        assert!(
            run.stderr.contains("plots written to out/plots/loss.png"),
            "no message about the plots\n{}",
            run.describe()
        );
    }
}

#[test]
fn plot_command_from_report() {
    let dir = create_work_directory();
    let train = run(
        dir.path(),
        &[
            "train",
            "--device",
            "cpu",
            "--epochs",
            "300",
            "--log-every",
            "50",
            "--standardize",
            "--standardize-target",
            "--lr",
            "0.05",
            "--report",
            "r.json",
            "--save",
            "m.json",
        ],
    );
    assert!(train.succeeded(), "train failed\n{}", train.describe());

    let loss_only = run(dir.path(), &["plot", "r.json", "--output", "loss-only"]);
    assert!(loss_only.succeeded(), "plot failed\n{}", loss_only.describe());
    assert_plot_directory(&loss_only, &dir.path().join("loss-only"), &["loss"]);
    assert!(
        !dir.path().join("loss-only/fit.png").exists(),
        "fit.png written without --model\n{}",
        loss_only.describe()
    );
    assert!(
        loss_only.stdout.contains("wrote loss-only/loss.png"),
        "no list of written files\n{}",
        loss_only.describe()
    );

    let with_fit = run(dir.path(), &["plot", "r.json", "--output", "both", "--model", "m.json"]);
    assert!(with_fit.succeeded(), "plot --model failed\n{}", with_fit.describe());
    assert_plot_directory(&with_fit, &dir.path().join("both"), &["loss", "fit"]);
    let fit_svg = std::fs::read_to_string(dir.path().join("both/fit.svg")).unwrap();
    assert!(
        fit_svg.contains("442 rows of diabetes.csv"),
        "the fit plot does not use the model's training data\n{}",
        with_fit.describe()
    );
    assert!(
        fit_svg.contains("2 -&gt; 5 (relu) -&gt; 1, mse, adam lr 0.05"),
        "the fit plot's title does not name the run\n{}",
        with_fit.describe()
    );
}

#[test]
fn plot_command_missing_report() {
    let dir = create_work_directory();
    let run = run(dir.path(), &["plot", "missing.json", "--output", "plots"]);
    assert_eq!(run.code, Some(1), "exit code\n{}", run.describe());
    assert!(
        run.stderr.contains("error: ") && run.stderr.contains("missing.json"),
        "the error does not name the file\n{}",
        run.describe()
    );
}
