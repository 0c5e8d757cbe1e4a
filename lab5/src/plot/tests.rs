//! Rendering tests: every chart is drawn for real, its SVG parsed and its PNG decoded and
//! checked for ink in the plot area. The figures are also saved under the temp folder
//! (`lab5-plot-gallery/`) for a look by eye.

use super::*;
use image::RgbImage;
use polars::prelude::df;
use std::path::{Path, PathBuf};

/// Share of non-white pixels the centre of a real chart must at least have.
const MIN_INK: f64 = 0.005;

fn gallery() -> PathBuf {
    std::env::temp_dir().join("lab5-plot-gallery")
}

/// The SVG parses and holds `title`; the PNG decodes at the figure's size with ink in
/// its central area; both files save.
fn check(fig: &Figure, title: &str, stem: &str) {
    let doc = roxmltree::Document::parse(fig.svg()).expect("SVG is well-formed XML");
    let texts: String = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(
        texts.contains(title),
        "title {title:?} missing from the SVG text"
    );
    let png = image::load_from_memory(&fig.png().unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!(png.dimensions(), fig.size());
    let ink = ink_share(&png);
    assert!(
        ink > MIN_INK,
        "{stem}: only {ink:.4} of the plot area is drawn"
    );
    let (svg, png_path) = fig.save(&gallery().join(stem)).unwrap();
    assert!(svg.exists() && png_path.exists());
}

/// Share of non-white pixels in the middle 80 % of the image.
fn ink_share(img: &RgbImage) -> f64 {
    let (w, h) = img.dimensions();
    let (x0, x1, y0, y1) = (w / 10, w * 9 / 10, h / 10, h * 9 / 10);
    let total = f64::from((x1 - x0) * (y1 - y0));
    let inked = (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .filter(|&(x, y)| img.get_pixel(x, y).0 != [255, 255, 255]);
    inked.count() as f64 / total
}

#[test]
fn learning_curves_render_with_both_panels() {
    let c = Curves {
        train_loss: vec![0.69, 0.5, 0.4, 0.35, 0.3],
        val_loss: vec![0.68, 0.55, 0.45, 0.44, 0.46],
        train_acc: vec![0.55, 0.75, 0.82, 0.86, 0.9],
        val_acc: vec![0.56, 0.72, 0.8, 0.81, 0.8],
        best_epoch: Some(4),
    };
    let fig = learning_curves("CNN learning curves", &c).unwrap();
    for word in ["loss", "accuracy", "validation", "best epoch 4"] {
        assert!(fig.svg().contains(word), "{word} missing");
    }
    check(&fig, "CNN learning curves", "learning_curves");
    assert!(learning_curves("empty", &Curves::default()).is_err());
}

#[test]
fn line_chart_skips_nan_but_rejects_all_nan() {
    let s = Line::new("loss", vec![(1.0, 0.5), (2.0, f64::NAN), (3.0, 0.3)]);
    check(
        &line_chart("Line with a gap", "step", "value", &[s]).unwrap(),
        "Line with a gap",
        "line",
    );
    let bad = Line::new("nan", vec![(1.0, f64::NAN)]);
    assert!(line_chart("bad", "x", "y", &[bad]).is_err());
}

#[test]
fn confusion_matrix_shows_counts_and_row_shares() {
    let fig = confusion_matrix("Test confusion", &[[140, 10], [5, 160]], &["cat", "dog"]).unwrap();
    for s in ["140", "160", "93.3 %", "predicted", "cat", "dog"] {
        assert!(fig.svg().contains(s), "{s} missing");
    }
    check(&fig, "Test confusion", "confusion");
}

#[test]
fn roc_curve_renders_and_validates_rates() {
    let pts = [
        (0.0, 0.0),
        (0.05, 0.6),
        (0.1, 0.85),
        (0.3, 0.95),
        (1.0, 1.0),
    ];
    let curve = |points: &[(f64, f64)], auc: f64| RocCurve {
        name: "model".into(),
        points: points.to_vec(),
        auc,
    };
    let fig = roc_curves("ROC curve", &[curve(&pts, 0.953)]).unwrap();
    assert!(fig.svg().contains("AUC 0.953"));
    check(&fig, "ROC curve", "roc");
    assert!(roc_curves("ROC curve", &[curve(&[(1.5, 0.2)], 0.5)]).is_err());
    assert!(roc_curves("ROC curve", &[curve(&pts, 1.2)]).is_err());
}

/// Two blobs, or `k` blobs around a circle, `n` points each, deterministic.
fn blobs(k: usize, n: usize) -> (Vec<(f64, f64)>, Vec<String>) {
    let mut pts = Vec::new();
    let mut groups = Vec::new();
    for g in 0..k {
        let angle = g as f64 / k as f64 * std::f64::consts::TAU;
        for i in 0..n {
            let jitter = ((i * 7919 + g * 104729) % 1000) as f64 / 1000.0 - 0.5;
            pts.push((
                10.0 * angle.cos() + jitter,
                10.0 * angle.sin() + jitter * (i % 3) as f64,
            ));
            groups.push(format!("group {g:02}"));
        }
    }
    (pts, groups)
}

#[test]
fn scatter_colours_groups_and_lumps_rare_ones() {
    let (pts, groups) = blobs(2, 50);
    check(
        &scatter(&pts, &groups, "Two classes").unwrap(),
        "Two classes",
        "scatter",
    );
    let (pts, groups) = blobs(30, 10);
    let many = scatter(&pts, &groups, "Thirty breeds").unwrap();
    assert!(many.svg().contains("other (19 groups)"));
    check(&many, "Thirty breeds", "scatter_many");
    assert!(scatter(&pts, &groups[1..], "bad").is_err());
}

#[test]
fn bar_chart_labels_bars_and_categories() {
    let cats: Vec<String> = ["accuracy", "F1", "ROC-AUC"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let series = vec![
        ("CNN".to_string(), vec![0.91, 0.9, 0.96]),
        ("transfer".to_string(), vec![0.98, 0.98, 0.998]),
    ];
    let fig = bar_chart("Model comparison", "score", &cats, &series).unwrap();
    for s in ["0.910", "0.998", "ROC-AUC", "transfer"] {
        assert!(fig.svg().contains(s), "{s} missing");
    }
    check(&fig, "Model comparison", "bars");
    assert!(bar_chart("bad", "y", &cats, &[("x".into(), vec![1.0])]).is_err());
}

#[test]
fn bar_chart_with_reference_draws_the_line_and_widens_for_many_bars() {
    let cats: Vec<String> = (1..=9).map(|i| format!("corruption {i}")).collect();
    let series: Vec<(String, Vec<f64>)> = (1..=3)
        .map(|s| (format!("severity {s}"), vec![90.0 - 10.0 * s as f64; 9]))
        .collect();
    let fig = bar_chart_with_reference("Robust?", "accuracy (%)", &cats, &series, ("clean", 92.5))
        .unwrap();
    assert!(fig.size().0 > bar_chart("x", "y", &cats, &series).unwrap().size().0);
    check(&fig, "Robust?", "bars_reference");
    let doc = roxmltree::Document::parse(fig.svg()).unwrap();
    let mut texts = doc.descendants().filter_map(|n| n.text());
    assert!(
        texts.any(|t| t.trim() == "clean"),
        "reference missing from the legend"
    );
    let dashes = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline" || n.tag_name().name() == "line")
        .count();
    let plain = roxmltree::Document::parse(bar_chart("x", "y", &cats, &series).unwrap().svg())
        .unwrap()
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline" || n.tag_name().name() == "line")
        .count();
    assert!(dashes > plain, "no dashed line drawn ({dashes} vs {plain})");
}

#[test]
fn heatmap_grid_renders_annotated_kernels_and_refuses_ragged_rows() {
    let kernel = vec![
        vec![-1.0, 0.0, 1.0],
        vec![-2.0, 0.0, 2.0],
        vec![-1.0, 0.0, 1.0],
    ];
    let fig = heatmap_grid("Sobel kernel", &[("sobel x".into(), kernel)], 1).unwrap();
    assert!(fig.svg().contains("\n-2\n") && fig.svg().contains("\n0\n"));
    check(&fig, "Sobel kernel", "heatmap");
    let rows: Vec<Vec<f64>> = (0..8)
        .map(|r| (0..8).map(|c| f64::from(r * 8 + c)).collect())
        .collect();
    let maps: Vec<_> = (0..6)
        .map(|c| (format!("channel {c}"), rows.clone()))
        .collect();
    check(
        &heatmap_grid("Feature maps", &maps, 3).unwrap(),
        "Feature maps",
        "heatmap_grid",
    );
    let ragged = vec![vec![1.0], vec![1.0, 2.0]];
    assert!(heatmap_grid("ragged", &[("r".into(), ragged)], 1).is_err());
}

#[test]
fn signal_plot_stacks_panels() {
    let impulse = vec![0.0, 0.0, 1.0, 0.0, 0.0];
    let kernel = vec![0.25, 0.5, 0.25];
    let conv = vec![0.0, 0.0, 0.25, 0.5, 0.25, 0.0, 0.0];
    let sigs = vec![
        ("impulse".to_string(), impulse),
        ("kernel".to_string(), kernel),
        ("convolution".to_string(), conv),
    ];
    let fig = signal_plot("Convolution of an impulse", &sigs).unwrap();
    assert!(fig.svg().contains("kernel"));
    check(&fig, "Convolution of an impulse", "signal");
}

fn pets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/pets")
}

/// The first `n` photo files of `class`, sorted by name.
fn photos(class: &str, n: usize) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(pets().join(class))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.truncate(n);
    v
}

/// The pets file whose bytes start with `magic` (the WebP named `.jpg`).
fn photo_with_magic(class: &str, magic: &[u8]) -> Option<PathBuf> {
    let all = photos(class, usize::MAX);
    all.into_iter().find(|p| {
        std::fs::read(p)
            .map(|b| b.starts_with(magic))
            .unwrap_or(false)
    })
}

#[test]
fn image_grid_embeds_real_photos() {
    let mut items: Vec<(Photo, String)> = Vec::new();
    for class in ["cat", "dog"] {
        for p in photos(class, 4) {
            items.push((
                Photo::from(p.as_path()),
                format!("{class}\n{}", p.file_name().unwrap().to_string_lossy()),
            ));
        }
    }
    let webp = photo_with_magic("cat", b"RIFF").or_else(|| photo_with_magic("dog", b"RIFF"));
    if let Some(p) = webp {
        items.push((Photo::from(p), "a WebP named .jpg".into()));
    }
    let fig = image_grid("Samples", &items, 5).unwrap();
    assert_eq!(
        fig.svg().matches("data:image/jpeg;base64,").count(),
        items.len()
    );
    check(&fig, "Samples", "image_grid");
    let missing = [(Photo::from(Path::new("/nonexistent.jpg")), String::new())];
    assert!(image_grid("x", &missing, 2)
        .unwrap_err()
        .to_string()
        .contains("cannot read photo"));
}

#[test]
fn mistakes_gallery_frames_and_captions() {
    let mistakes: Vec<Mistake> = photos("dog", 3)
        .into_iter()
        .map(|p| Mistake {
            photo: Photo::from(p),
            truth: "dog".into(),
            predicted: "cat".into(),
            probability: 0.97,
        })
        .collect();
    let fig = mistakes_gallery("Most confident mistakes", &mistakes, 3).unwrap();
    assert!(fig.svg().contains("said cat (97.0 %)"));
    check(&fig, "Most confident mistakes", "mistakes");
}

#[test]
fn save_writes_both_files_and_keeps_dots_in_stem() {
    let diagonal = RocCurve {
        name: "model".into(),
        points: vec![(0.0, 0.0), (1.0, 1.0)],
        auc: 0.5,
    };
    let fig = roc_curves("ROC curve", &[diagonal]).unwrap();
    let dir = gallery().join(format!("save-{}", std::process::id()));
    let (svg, png) = fig.save(&dir.join("run.v1.roc")).unwrap();
    assert_eq!(svg.file_name().unwrap(), "run.v1.roc.svg");
    assert_eq!(png.file_name().unwrap(), "run.v1.roc.png");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn table_renders_html_escaped_and_text() {
    let df = df!("model" => ["CNN", "<transfer>"], "accuracy" => [0.911, 0.984]).unwrap();
    let t = Table(df);
    let html = t.to_html();
    assert!(
        html.contains("<th>model</th>")
            && html.contains("&lt;transfer&gt;")
            && html.contains("0.984")
    );
    assert!(!html.contains("\"CNN\""));
    assert!(t.to_string().contains("0.911"));
}
