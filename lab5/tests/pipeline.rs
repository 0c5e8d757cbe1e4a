//! `lab5 run` end to end through the binary, on 40 pets photos per class with small
//! images and few epochs: every step runs and leaves valid outputs (manifest, label
//! check, both runs with embeddings and maps, the CNN's robustness check (and the
//! transfer model's through `lab5 robustness`), the comparison in CSV/JSON/Markdown that
//! agree with each other, charts, and a self-contained `report.html` holding every chart
//! and table); a second run skips every step and is fast; `--force embed` redoes only the
//! two embed steps; `lab5 compare` on its own prints the table and the verdict.

mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::project::{small_pets_project, text, Project};

/// Photos per class copied into the project's image folder.
const PER_CLASS: usize = 40;
/// The steps, in the order `lab5 run` prints them.
const STEPS: [&str; 9] = [
    "data",
    "audit",
    "train-cnn",
    "robustness-cnn",
    "embed-cnn",
    "train-transfer",
    "embed-transfer",
    "compare",
    "report",
];

/// A project whose `data.folder` (`incoming/`) holds links to 40 photos per class.
fn project() -> Project {
    small_pets_project(
        "pipeline",
        PER_CLASS,
        &[
            ("cnn.epochs", json!(2)),
            ("transfer.epochs", json!(6)),
            ("report.inference_images", json!(16)),
            ("report.sample_photos", json!(4)),
            ("report.mistakes", json!(4)),
            ("report.flagged_photos", json!(4)),
        ],
    )
}

/// Runs `lab5 run ARGS`, asserts success, returns stdout and the wall time.
fn run(p: &Project, args: &[&str]) -> (String, Duration) {
    let start = Instant::now();
    let out = p.run(&[&["run"], args].concat(), &[]);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "lab5 run {args:?}\n{stdout}\n{stderr}"
    );
    (stdout, start.elapsed())
}

/// Step name -> status (`ran`, `reused`, `skipped`) from the `[i/9] step status ...` lines.
fn statuses(stdout: &str) -> HashMap<String, String> {
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with('[') && l.contains("/9] "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(names, STEPS, "{stdout}");
    rows.iter()
        .map(|r| (r[1].to_string(), r[2].to_string()))
        .collect()
}

#[test]
fn run_builds_everything_then_skips_it_and_force_redoes_one_step() {
    let p = project();
    let (first, _) = run(&p, &[]);
    let st = statuses(&first);
    assert!(st.values().all(|s| s == "ran"), "{first}");
    let report = report_path(&p, &first);
    check_outputs(&p);
    let rows = check_comparison_files(&p.root.join("runs/compare"));
    check_report(&report, &rows, flagged(&p));

    let stamp = std::fs::metadata(&report).unwrap().modified().unwrap();
    let (second, took) = run(&p, &[]);
    let st = statuses(&second);
    assert!(st.values().all(|s| s == "skipped"), "{second}");
    assert!(took < Duration::from_secs(15), "second run took {took:?}");
    assert_eq!(
        std::fs::metadata(&report).unwrap().modified().unwrap(),
        stamp
    );

    let (forced, _) = run(&p, &["--force", "embed"]);
    let st = statuses(&forced);
    for step in STEPS {
        let want = if step.starts_with("embed-") {
            "ran"
        } else {
            "skipped"
        };
        assert_eq!(st[step], want, "{step}\n{forced}");
    }
    check_bad_force_and_compare_command(&p);
}

/// The report path printed on the last line.
fn report_path(p: &Project, stdout: &str) -> PathBuf {
    let last = stdout.lines().last().unwrap();
    let path = last.split("; report ").nth(1).expect(last);
    let path = p.root.join(Path::new(path.trim()));
    assert!(path.is_file(), "{}", path.display());
    assert_eq!(path.file_name().unwrap(), "report.html");
    let date = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let parts: Vec<&str> = date.split('-').collect();
    assert!(
        parts.len() == 3 && parts[0].len() == 4,
        "runs/<date>/: {date}"
    );
    path
}

/// Every step's files exist and hold what they should.
fn check_outputs(p: &Project) {
    let m = p.manifest();
    assert_eq!(m.records.len(), 2 * PER_CLASS);
    let audit = std::fs::read_to_string(p.data_dir().join("audit.csv")).unwrap();
    assert_eq!(audit.lines().count(), 2 * PER_CLASS + 1);
    for run in ["cnn", "transfer"] {
        let dir = p.root.join("runs").join(run);
        for f in [
            "metrics.json",
            "best.safetensors",
            "embeddings.json",
            "projections.json",
        ] {
            assert!(dir.join(f).is_file(), "{run}/{f}");
        }
        let emb: Value = read_json(&dir.join("embeddings.json"));
        assert_eq!(emb["records"].as_array().unwrap().len(), 2 * PER_CLASS);
        let sep: Value = read_json(&dir.join("separation.json"));
        let spaces = sep.as_array().unwrap();
        assert_eq!(spaces.len(), 3, "{sep}");
        for s in spaces {
            let knn = s["scores"]["knn_accuracy"].as_f64().unwrap();
            let sil = s["scores"]["silhouette"].as_f64().unwrap();
            assert!(
                (0.0..=1.0).contains(&knn) && (-1.0..=1.0).contains(&sil),
                "{s}"
            );
        }
        for chart in ["tsne_class", "umap_class", "tsne_breed", "umap_breed"] {
            check_png(&dir.join("figures").join(format!("{chart}.png")));
        }
        // the embed step writes TensorBoard's projector into the run's TensorBoard folder
        let tb = dir.join("tb");
        let meta = std::fs::read_to_string(tb.join("metadata.tsv")).unwrap();
        assert_eq!(
            meta.lines().count(),
            2 * PER_CLASS + 1,
            "{run}: header + one row a photo"
        );
        let tensors = std::fs::read_to_string(tb.join("tensors.tsv")).unwrap();
        assert_eq!(tensors.lines().count(), 2 * PER_CLASS);
        check_png(&tb.join("sprite.png"));
        let config = std::fs::read_to_string(tb.join("projector_config.pbtxt")).unwrap();
        assert!(config.contains("tensor_path: \"tensors.tsv\""), "{config}");
    }
    check_robustness(p);
    let state: Value = read_json(&p.root.join("runs/pipeline.json"));
    for step in STEPS {
        assert!(
            state["steps"][step]["stamp"].is_string(),
            "{step} missing in state"
        );
    }
}

/// The CNN's robustness check from the pipeline, and the transfer model's from the
/// command (through the whole model, backbone included): 9 corruptions x 3 severities,
/// the clean accuracy equal to the run's recorded test accuracy.
fn check_robustness(p: &Project) {
    let transfer = p.root.join("runs/transfer");
    let out = p.run(&["robustness", "--run", &transfer.to_string_lossy()], &[]);
    assert!(out.status.success(), "{:?}", text(&out));
    for run in ["cnn", "transfer"] {
        let dir = p.root.join("runs").join(run);
        let r: Value = read_json(&dir.join("robustness.json"));
        assert_eq!(r["results"].as_array().unwrap().len(), 27, "{run}");
        let metrics: Value = read_json(&dir.join("metrics.json"));
        let recorded = metrics["metrics"]["test"]["accuracy"].as_f64().unwrap();
        let clean = r["clean_accuracy"].as_f64().unwrap();
        assert!(
            (clean - recorded).abs() < 1e-9,
            "{run}: {clean} vs {recorded}"
        );
        check_png(&dir.join("figures/robustness.png"));
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}",
        path.display()
    );
    let img = image::load_from_memory(&bytes).unwrap();
    assert!(
        img.width() >= 300 && img.height() >= 200,
        "{}",
        path.display()
    );
}

/// One row of the comparison: measure, rounded values as shown, decimals.
#[derive(Debug)]
struct Row {
    measure: String,
    shown: [String; 2],
}

/// Splits one CSV line (fields may be quoted).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// CSV, JSON and Markdown hold the same rows with the same values; returns them.
fn check_comparison_files(dir: &Path) -> Vec<Row> {
    let json: Value = read_json(&dir.join("comparison.json"));
    let csv = std::fs::read_to_string(dir.join("comparison.csv")).unwrap();
    let md = std::fs::read_to_string(dir.join("comparison.md")).unwrap();
    let jrows = json["rows"].as_array().unwrap();
    let crows: Vec<Vec<String>> = csv.lines().skip(1).map(csv_fields).collect();
    // The table's lines: those before the verdict (the per-breed table comes after it).
    let mrows: Vec<Vec<String>> = md
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| measure"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    assert!(jrows.len() >= 20, "{} rows", jrows.len());
    assert_eq!((crows.len(), mrows.len()), (jrows.len(), jrows.len()));
    let rows: Vec<Row> = jrows
        .iter()
        .zip(&crows)
        .zip(&mrows)
        .map(|((j, c), m)| agree(j, c, m))
        .collect();
    for measure in [
        "parameters (trainable)",
        "inference, images/s",
        "test ROC-AUC",
        "val log loss",
    ] {
        assert!(
            rows.iter().any(|r| r.measure == measure),
            "{measure} missing"
        );
    }
    check_verdict(&json, &md);
    check_breeds(&json, &md);
    for chart in [
        "breeds",
        "quality",
        "accuracy",
        "log_loss",
        "time",
        "inference",
        "parameters",
        "calibration",
    ] {
        check_png(&dir.join("figures").join(format!("{chart}.png")));
        assert!(dir.join("figures").join(format!("{chart}.svg")).is_file());
    }
    rows
}

/// One row in its three forms: same measure, CSV == JSON (up to JSON's float parsing),
/// Markdown == the value rounded to the row's decimals.
fn agree(j: &Value, c: &[String], m: &[String]) -> Row {
    let measure = j["measure"].as_str().unwrap().to_string();
    assert_eq!((&c[0], &m[0]), (&measure, &measure));
    let decimals = j["decimals"].as_u64().unwrap() as usize;
    let shown = [("cnn", 1), ("transfer", 2)].map(|(model, col)| {
        let v = j[model].as_f64();
        let from_csv = (!c[col].is_empty()).then(|| c[col].parse::<f64>().unwrap());
        let close = match (v, from_csv) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * a.abs().max(1.0),
            (a, b) => a == b,
        };
        assert!(close, "{measure} {model}: JSON {v:?} vs CSV {from_csv:?}");
        let rounded = v.map_or("-".to_string(), |x| format!("{x:.decimals$}"));
        assert_eq!(m[col], rounded, "{measure} {model}: Markdown");
        rounded
    });
    assert_eq!(c[3], m[3], "{measure}: better");
    Row { measure, shown }
}

/// The verdict is in both files and is made of the numbers in the JSON.
fn check_verdict(json: &Value, md: &str) {
    let verdict: Vec<&str> = json["verdict"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(verdict.len() >= 5);
    for s in &verdict {
        assert!(md.contains(&format!("- {s}")), "{s}");
    }
    let acc = |m: &str| {
        format!(
            "{:.1} %",
            100.0 * json[m]["metrics"]["test"]["accuracy"].as_f64().unwrap()
        )
    };
    assert!(
        verdict[0].contains(&acc("cnn")) && verdict[0].contains(&acc("transfer")),
        "{}",
        verdict[0]
    );
    let p = json["paired"]["p_value"]
        .as_f64()
        .expect("the paired test is saved");
    let shown = if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    };
    assert!(
        verdict[0].contains(&format!("McNemar's exact test p = {shown}")),
        "{}",
        verdict[0]
    );
    assert!(
        json["calibration"]["cnn"]["ece"].as_f64().is_some()
            && verdict[1].starts_with("Calibration on the test photos"),
        "{}",
        verdict[1]
    );
    let speed = |m: &str| {
        format!(
            "{:.1}",
            json[m]["inference"]["images_per_sec"].as_f64().unwrap()
        )
    };
    let inference = verdict
        .iter()
        .find(|s| s.starts_with("At inference"))
        .unwrap();
    assert!(
        inference.contains(&speed("cnn")) && inference.contains(&speed("transfer")),
        "{inference}"
    );
}

/// The per-breed table covers every test photo of both runs, and the Markdown shows it.
fn check_breeds(json: &Value, md: &str) {
    let rows = json["breeds"]["rows"].as_array().expect("per-breed scores");
    for m in ["cnn", "transfer"] {
        let n: u64 = rows.iter().map(|r| r[m]["n"].as_u64().unwrap()).sum();
        assert_eq!(n, json[m]["metrics"]["test"]["n"].as_u64().unwrap(), "{m}");
    }
    assert!(md.contains("## Per breed (test split)"), "{md}");
    assert!(md.contains("The CNN calls"), "{md}");
}

/// The report holds every section, chart and table, links nothing outside itself, and
/// shows the comparison's values.
fn check_report(path: &Path, rows: &[Row], audit_flagged: usize) {
    let html = std::fs::read_to_string(path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    for id in [
        "summary",
        "data",
        "labels",
        "cnn",
        "transfer",
        "comparison",
        "settings",
        "theory",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id}"
        );
    }
    let svgs = svg_fragments(&html);
    assert!(svgs.len() >= 20, "{} charts", svgs.len());
    for svg in &svgs {
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("bad inline SVG: {e}"));
    }
    let charts = [
        "random cat photos",
        "random dog photos",
        "CNN from scratch: learning curves",
        "CNN from scratch: confusion matrix, test split",
        "CNN from scratch: ROC curves",
        "CNN from scratch: t-SNE of the embeddings by class",
        "CNN from scratch: UMAP of the embeddings by class",
        "cnn: test accuracy under corruptions",
        "CNN vs transfer: test quality",
        "CNN vs transfer: training time",
        "CNN vs transfer: inference speed",
        "Test accuracy on the breeds with the most mistakes",
    ];
    for c in charts {
        assert!(svgs.iter().any(|s| s.contains(c)), "no chart {c:?}");
    }
    check_optional_galleries(&html, &svgs, audit_flagged);
    assert!(html.matches("<table class=\"lab5\">").count() >= 7);
    assert!(
        html.contains("<th>CNN accuracy [95 % CI]</th>"),
        "no per-breed table"
    );
    for r in rows {
        let tr = format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            r.measure, r.shown[0], r.shown[1]
        );
        assert!(html.contains(&tr), "report lacks {tr}");
    }
    check_self_contained(&html);
}

/// Photos the label check flagged, from `audit.csv`.
fn flagged(p: &Project) -> usize {
    let csv = std::fs::read_to_string(p.data_dir().join("audit.csv")).unwrap();
    let flags = ["suspected-mislabel", "neither"];
    let verdict = |l: &str| {
        csv_fields(l)
            .into_iter()
            .find(|f| flags.contains(&f.as_str()))
    };
    csv.lines().skip(1).filter(|l| verdict(l).is_some()).count()
}

/// The flagged photos and each model's mistakes: a gallery when there are any, else a
/// note saying there are none.
fn check_optional_galleries(html: &str, svgs: &[&str], audit_flagged: usize) {
    let has = |title: &str| svgs.iter().any(|s| s.contains(title));
    if audit_flagged > 0 {
        assert!(
            has("Label check: flagged photos"),
            "{audit_flagged} flagged, no grid"
        );
    } else {
        assert!(html.contains("flagged none of the"));
    }
    for model in ["CNN from scratch", "Transfer (frozen backbone + head)"] {
        let gallery = has(&format!("{model}: most confident test mistakes"));
        let none = html.contains(&format!("No mistakes: {model} got every test photo right."));
        assert!(gallery ^ none, "{model}: mistakes gallery or note");
    }
}

/// Each `<svg ...>...</svg>` of the page.
fn svg_fragments(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("unclosed svg") + start + "</svg>".len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

fn check_self_contained(html: &str) {
    for bad in [
        "<script",
        "<link",
        "<iframe",
        " src=",
        "url(",
        "href=\"http",
        "href=\"//",
    ] {
        assert!(
            !html.contains(bad),
            "the report references something outside: {bad}"
        );
    }
    for href in html.split("href=\"").skip(1) {
        let ok = href.starts_with('#') || href.starts_with("data:image/");
        assert!(ok, "external href {}", &href[..href.len().min(60)]);
    }
}

fn check_bad_force_and_compare_command(p: &Project) {
    let out = p.run(&["run", "--force", "trian"], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown step \"trian\"") && stderr.contains("embed-cnn"),
        "{stderr}"
    );
    let out = p.run(&["compare"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("| test accuracy, % |") && stdout.contains("## Verdict"),
        "{stdout}"
    );
    check_comparison_files(&p.root.join("runs/compare"));
}
