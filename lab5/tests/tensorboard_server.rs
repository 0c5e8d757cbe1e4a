//! TensorBoard itself on what lab5 writes: a small project (40 pets photos per class, 48 px,
//! two epochs) is imported, both models are trained, the CNN's robustness is checked and
//! both runs are embedded through the `lab5` binary; then `lab5 tensorboard --port 0`
//! starts the setup's TensorBoard on a free loopback port, and the test asks its HTTP data
//! endpoints for every kind of data lab5 wrote: scalars, images, histograms, hparams and
//! the projector's runs, configuration, metadata, tensor and sprite, comparing them with
//! the run's own files. Last, headless Chromium opens the scalars, images, histograms,
//! hparams and projector pages (`scripts/tensorboard_shots.py`), checks that each shows
//! its data, and the screenshots are kept in `$TMPDIR/lab5-tensorboard/screenshots/` for a
//! person to look at.

mod support;

use lab5::embed::projector::{CLASS_RGB, METADATA_COLUMNS};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::project::{small_pets_project, text, Project};

/// Photos per class.
const PER_CLASS: usize = 40;
/// Epochs of both models.
const EPOCHS: usize = 2;
/// How long TensorBoard may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Thumbnail side asked for in the config.
const THUMBNAIL: u32 = 32;

/// The project: photos linked into `incoming/`, small images, two epochs each.
fn project() -> Project {
    small_pets_project(
        "tbserve",
        PER_CLASS,
        &[
            ("cnn.epochs", json!(EPOCHS)),
            ("transfer.epochs", json!(EPOCHS)),
            ("tensorboard.thumbnail", json!(THUMBNAIL)),
            ("report.mistakes", json!(4)),
        ],
    )
}

/// Runs `lab5 ARGS` in the project and asserts success; returns stdout.
fn lab5(p: &Project, args: &[&str]) -> String {
    let out = p.run(args, &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "lab5 {args:?}\n{stdout}\n{stderr}");
    stdout
}

/// The TensorBoard process started by `lab5 tensorboard` (which becomes it); killed on drop.
struct Board {
    child: Child,
    port: u16,
    client: reqwest::blocking::Client,
}

impl Board {
    /// Starts `lab5 tensorboard --port 0` and waits until TensorBoard answers.
    fn start(p: &Project) -> Board {
        let mut child = p
            .command(&["tensorboard", "--port", "0"], &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut printed = Vec::new();
        let port = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!(
                    "lab5 tensorboard printed no address:\n{}",
                    printed.join("\n")
                );
            };
            printed.push(line.clone());
            if let Some(rest) = line.strip_prefix("TensorBoard at http://127.0.0.1:") {
                break rest.split('/').next().unwrap().parse::<u16>().unwrap();
            }
        };
        // the CNN's folder: the training events and the robustness results
        let all = "scalars, images, histograms, hparams, projector";
        let listed = [
            format!("  cnn/tb: {all} (2 event files)"),
            format!("  transfer/tb: {all} (1 event file)"),
        ];
        for want in &listed {
            assert!(
                printed.iter().any(|l| l.contains(want)),
                "{want} not listed:\n{}",
                printed.join("\n")
            );
        }
        // TensorBoard logs to stderr; its stdout is no longer read
        std::thread::spawn(move || lines.for_each(drop));
        // reqwest is built with rustls and no default crypto provider (as in lab5)
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let board = Board {
            child,
            port,
            client,
        };
        board.wait_until_loaded();
        board
    }

    /// Waits until TensorBoard answers and has loaded both runs' scalars.
    fn wait_until_loaded(&self) {
        let started = Instant::now();
        loop {
            if let Ok(tags) = self.try_json("/data/plugin/scalars/tags", &[]) {
                let runs = ["cnn/tb", "transfer/tb"];
                if runs
                    .iter()
                    .all(|r| tags[r]["final/test_accuracy"].is_object())
                {
                    return;
                }
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "TensorBoard on port {} did not load the runs in {START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `http://127.0.0.1:PORT/path?query` with the query's values percent-encoded.
    fn url(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Url {
        let base = format!("http://127.0.0.1:{}{path}", self.port);
        reqwest::Url::parse_with_params(&base, query).unwrap()
    }

    /// GET `path?query`: the status and the body.
    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<(u16, Vec<u8>), String> {
        let r = self
            .client
            .get(self.url(path, query))
            .send()
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let body = r.bytes().map_err(|e| e.to_string())?.to_vec();
        Ok((status, body))
    }

    fn try_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        match self.get(path, query)? {
            (200, body) => serde_json::from_slice(&body).map_err(|e| e.to_string()),
            (status, body) => Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
        }
    }

    /// GET `path?query` as JSON (asserting 200).
    fn json(&self, path: &str, query: &[(&str, &str)]) -> Value {
        self.try_json(path, query)
            .unwrap_or_else(|e| panic!("GET {path} {query:?}: {e}"))
    }

    /// GET `path?query` as bytes (asserting 200).
    fn bytes(&self, path: &str, query: &[(&str, &str)]) -> Vec<u8> {
        match self.get(path, query) {
            Ok((200, body)) => body,
            Ok((status, body)) => panic!(
                "GET {path} {query:?}: {status}: {}",
                String::from_utf8_lossy(&body)
            ),
            Err(e) => panic!("GET {path} {query:?}: {e}"),
        }
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The run folder's recorded metrics.
fn metrics(run: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap()
}

/// Scalars: every epoch's curves and the final metrics, as written.
fn check_scalars(b: &Board, runs: &Path) {
    let tags = b.json("/data/plugin/scalars/tags", &[]);
    for run in ["cnn", "transfer"] {
        let m = metrics(&runs.join(run));
        let tb = format!("{run}/tb");
        for tag in lab5::train::monitor::TAGS
            .iter()
            .chain(&lab5::train::board::FINAL_TAGS)
        {
            assert!(tags[&tb][*tag].is_object(), "{tb} has no scalar {tag}");
        }
        let points = b.json(
            "/data/plugin/scalars/scalars",
            &[("run", &tb), ("tag", "loss/val")],
        );
        let points = points.as_array().unwrap();
        assert_eq!(points.len(), EPOCHS, "{tb} loss/val: {points:?}");
        for (p, h) in points.iter().zip(m["history"].as_array().unwrap()) {
            assert_eq!(p[1], h["epoch"]);
            let (got, want) = (p[2].as_f64().unwrap(), h["val_loss"].as_f64().unwrap());
            assert!((got - want).abs() < 1e-5 * want.max(1.0), "{got} vs {want}");
        }
        let fin = b.json(
            "/data/plugin/scalars/scalars",
            &[("run", &tb), ("tag", "final/test_accuracy")],
        );
        let want = m["metrics"]["test"]["accuracy"].as_f64().unwrap();
        assert_eq!(fin[0][1], json!(EPOCHS));
        assert!((fin[0][2].as_f64().unwrap() - want).abs() < 1e-6);
    }
    let robust = &tags["cnn/tb"]["final/robustness_mean_corrupted_accuracy"];
    assert!(
        robust.is_object(),
        "the CNN's robustness result is not in TensorBoard"
    );
}

/// One image of `tag` in `run`, decoded.
fn image(b: &Board, run: &str, tag: &str) -> image::RgbImage {
    let list = b.json(
        "/data/plugin/images/images",
        &[("run", run), ("tag", tag), ("sample", "0")],
    );
    let query = list[0]["query"]
        .as_str()
        .unwrap_or_else(|| panic!("{run} {tag}: {list}"));
    let pairs: Vec<(String, String)> = reqwest::Url::parse(&format!("http://x/?{query}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let png = b.bytes("/data/plugin/images/individualImage", &pairs);
    assert!(png.starts_with(b"\x89PNG"), "{run} {tag} is not a PNG");
    image::load_from_memory(&png).unwrap().to_rgb8()
}

/// Images: the augmented batch (CNN only: the transfer head trains on features), the
/// confusion matrix, ROC curves and the most confident mistakes.
fn check_images(b: &Board, p: &Project) {
    let tags = b.json("/data/plugin/images/tags", &[]);
    let cfg = p.config();
    let side = cfg.preprocess.image_size as u32;
    let batch = cfg.cnn.train.batch_size.min(cfg.tensorboard.batch_images) as u32;
    let cols = (f64::from(batch)).sqrt().ceil() as u32;
    let grid = image(b, "cnn/tb", lab5::train::monitor::BATCH_TAG);
    assert_eq!(grid.width(), cols * (side + 2) + 2);
    assert_eq!(grid.height(), batch.div_ceil(cols) * (side + 2) + 2);
    assert!(
        tags["transfer/tb"][lab5::train::monitor::BATCH_TAG].is_null(),
        "the transfer head trains on cached features: no image batch to show"
    );
    use lab5::train::board::{CONFUSION_TAG, MISTAKES_TAG, ROC_TAG};
    for run in ["cnn/tb", "transfer/tb"] {
        for tag in [CONFUSION_TAG, ROC_TAG] {
            let img = image(b, run, tag);
            assert!(img.width() > 300 && img.height() > 300, "{run} {tag}");
        }
        let dir = p.root.join("runs").join(run.trim_end_matches("/tb"));
        let rec = lab5::train::RunRecord::load(&dir).unwrap();
        let wrong = rec
            .predictions()
            .unwrap()
            .iter()
            .filter(|s| s.split == lab5::data::SplitName::Test)
            .any(|s| {
                (s.p_dog > lab5::train::metrics::THRESHOLD) != (s.label == lab5::data::Class::Dog)
            });
        assert_eq!(tags[run][MISTAKES_TAG].is_object(), wrong, "{run}");
    }
}

/// Histograms: every trained variable's weights and gradients at every epoch; the last
/// epoch's weight histogram spans the saved last weights and counts all their values.
fn check_histograms(b: &Board, runs: &Path) {
    let tags = b.json("/data/plugin/histograms/tags", &[]);
    let last = tch::Tensor::read_safetensors(runs.join("cnn/last.safetensors")).unwrap();
    let cnn: BTreeSet<&str> = tags["cnn/tb"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut trained = 0;
    for (name, t) in &last {
        let w = format!("weights/{name}");
        assert!(cnn.contains(w.as_str()), "no histogram {w} in {cnn:?}");
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            continue;
        }
        trained += 1;
        assert!(
            cnn.contains(format!("gradients/{name}").as_str()),
            "no gradients of {name}"
        );
        let h = b.json(
            "/data/plugin/histograms/histograms",
            &[("run", "cnn/tb"), ("tag", &w)],
        );
        let h = h.as_array().unwrap();
        assert_eq!(h.len(), EPOCHS, "{w}");
        assert_eq!(h[EPOCHS - 1][1], json!(EPOCHS));
        let buckets = h[EPOCHS - 1][2].as_array().unwrap();
        let count: f64 = buckets.iter().map(|b| b[2].as_f64().unwrap()).sum();
        assert_eq!(count as i64, t.numel() as i64, "{w}");
        let (lo, hi) = (
            buckets[0][0].as_f64().unwrap(),
            buckets.last().unwrap()[1].as_f64().unwrap(),
        );
        let (min, max) = (t.min().double_value(&[]), t.max().double_value(&[]));
        assert!(
            (lo - min).abs() < 1e-6 && (hi - max).abs() < 1e-6,
            "{w}: [{lo}, {hi}] vs [{min}, {max}]"
        );
    }
    assert!(trained > 10, "only {trained} trained variables");
    let transfer: Vec<&String> = tags["transfer/tb"].as_object().unwrap().keys().collect();
    assert!(
        transfer.iter().all(|t| !t.contains("_blocks")),
        "the frozen backbone has no histograms: {transfer:?}"
    );
}

/// HParams: both runs as sessions with their hyper-parameters and final metrics.
fn check_hparams(b: &Board) {
    let exp = b.json(
        "/data/plugin/hparams/experiment",
        &[("request", r#"{"experimentName": ""}"#)],
    );
    let names: BTreeSet<&str> = exp["hparamInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    for want in [
        "model",
        "run",
        "epochs",
        "max_lr",
        "image_size",
        "channels",
        "backbone",
        "augment.blur",
        "seed",
    ] {
        assert!(names.contains(want), "hparam {want} missing: {names:?}");
    }
    let metrics: BTreeSet<&str> = exp["metricInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"]["tag"].as_str().unwrap())
        .collect();
    for want in [
        "final/test_accuracy",
        "loss/val",
        "final/robustness_mean_corrupted_accuracy",
    ] {
        assert!(metrics.contains(want), "metric {want} missing: {metrics:?}");
    }
    let request = json!({
        "experimentName": "",
        "startIndex": 0,
        "sliceSize": 100,
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        "colParams": [{"metric": {"tag": "final/test_accuracy", "group": ""}}],
    });
    let groups = b.json(
        "/data/plugin/hparams/session_groups",
        &[("request", &request.to_string())],
    );
    let groups = groups["sessionGroups"].as_array().unwrap();
    let found: BTreeSet<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(found, BTreeSet::from(["cnn", "transfer"]), "{groups:?}");
    for g in groups {
        let model = g["hparams"]["model"].as_str().unwrap();
        assert_eq!(model, g["name"].as_str().unwrap());
        assert_eq!(g["sessions"][0]["status"], "STATUS_SUCCESS", "{g}");
        let acc = g["metricValues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"]["tag"] == "final/test_accuracy")
            .unwrap_or_else(|| panic!("no final/test_accuracy in {g}"));
        assert!(acc["value"].as_f64().unwrap() > 0.0, "{g}");
    }
}

/// The projector: both runs, their config, metadata rows and vectors as lab5 wrote them.
fn check_projector(b: &Board, p: &Project, runs: &Path) {
    let listed = b.json("/data/plugin/projector/runs", &[]);
    assert_eq!(listed, json!(["cnn/tb", "transfer/tb"]));
    for run in ["cnn", "transfer"] {
        let tb = format!("{run}/tb");
        let set: Value =
            serde_json::from_slice(&std::fs::read(runs.join(run).join("embeddings.json")).unwrap())
                .unwrap();
        let records = set["records"].as_array().unwrap();
        let (n, dim) = (records.len(), set["dim"].as_u64().unwrap() as usize);
        let info = b.json("/data/plugin/projector/info", &[("run", &tb)]);
        let e = &info["embeddings"][0];
        let name = e["tensorName"].as_str().unwrap().to_string();
        assert_eq!(e["tensorShape"], json!([n, dim]), "{info}");
        let side = (n as f64).sqrt().ceil() as u32;
        assert_eq!(e["sprite"]["singleImageDim"], json!([THUMBNAIL, THUMBNAIL]));
        let meta = b.bytes(
            "/data/plugin/projector/metadata",
            &[("run", &tb), ("name", &name)],
        );
        let meta = String::from_utf8(meta).unwrap();
        let rows: Vec<Vec<&str>> = meta.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(rows[0], METADATA_COLUMNS);
        assert_eq!(rows.len(), n + 1);
        for (row, r) in rows[1..].iter().zip(records) {
            assert_eq!(row[0], r["label"]);
            assert_eq!(row[2], r["split"]);
            assert_eq!(row[6], r["id"]);
            assert_eq!(row[4] == "true", row[0] == row[3], "{row:?}");
        }
        let tensor = b.bytes(
            "/data/plugin/projector/tensor",
            &[("run", &tb), ("name", &name)],
        );
        assert_eq!(tensor.len(), n * dim * 4);
        let served: Vec<f32> = tensor
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let written: Vec<f32> = records
            .iter()
            .flat_map(|r| {
                r["vector"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
            })
            .collect();
        assert_eq!(
            served, written,
            "{tb}: the served tensor differs from embeddings.json"
        );
        let sprite = b.bytes(
            "/data/plugin/projector/sprite_image",
            &[("run", &tb), ("name", &name)],
        );
        let sprite = image::load_from_memory(&sprite).unwrap().to_rgb8();
        assert_eq!(
            (sprite.width(), sprite.height()),
            (side * THUMBNAIL, side * THUMBNAIL)
        );
        check_sprite_order(p, &sprite, &rows[1..], side);
    }
}

/// The served sprite holds the thumbnail of metadata row `i` at cell `i` (row-major): its
/// frame has the colour of the row's label, and for some rows the inside is that photo
/// of the preprocessing cache, area-downscaled to the thumbnail.
fn check_sprite_order(p: &Project, sprite: &image::RgbImage, rows: &[Vec<&str>], side: u32) {
    let cell = |i: usize| ((i as u32 % side) * THUMBNAIL, (i as u32 / side) * THUMBNAIL);
    for (i, row) in rows.iter().enumerate() {
        let class = lab5::data::Class::parse(row[0]).unwrap();
        let (x, y) = cell(i);
        assert_eq!(
            sprite.get_pixel(x, y).0,
            CLASS_RGB[class.index() as usize],
            "cell {i} ({}) is not framed as a {}",
            row[6],
            row[0]
        );
    }
    let cfg = p.config();
    let size = cfg.preprocess.image_size;
    let cached =
        lab5::data::cache::load_or_build(&cfg, &p.manifest(), size, cfg.preprocess.resize_shorter)
            .unwrap();
    let photo = |id: &str| {
        [&cached.train, &cached.val, &cached.test]
            .into_iter()
            .find_map(|s| {
                s.ids
                    .iter()
                    .position(|x| x == id)
                    .map(|k| s.images.get(k as i64))
            })
            .unwrap_or_else(|| panic!("{id} is not in the cache"))
    };
    let t = i64::from(THUMBNAIL);
    for i in [0, rows.len() / 2, rows.len() - 1] {
        let small = photo(rows[i][6])
            .to_kind(tch::Kind::Float)
            .unsqueeze(0)
            .adaptive_avg_pool2d([t, t])
            .round()
            .to_kind(tch::Kind::Uint8)
            .squeeze_dim(0);
        let (x0, y0) = cell(i);
        let frame = 1; // max(1, 32 / 32) pixels
        for (y, x) in [
            (frame, frame),
            (t / 2, t / 3),
            (t - 1 - frame, t - 1 - frame),
        ] {
            let want: Vec<u8> = (0..3)
                .map(|c| small.int64_value(&[c, y, x]) as u8)
                .collect();
            let got = sprite.get_pixel(x0 + x as u32, y0 + y as u32).0;
            let close = got.iter().zip(&want).all(|(a, b)| a.abs_diff(*b) <= 1);
            assert!(
                close,
                "cell {i} pixel ({x}, {y}): {got:?}, photo {} has {want:?}",
                rows[i][6]
            );
        }
    }
}

/// Where the screenshots are kept: `$TMPDIR/lab5-tensorboard/screenshots/`.
fn screenshot_dir() -> PathBuf {
    std::env::temp_dir()
        .join("lab5-tensorboard")
        .join("screenshots")
}

/// The pages headless Chromium opens; a screenshot of each is kept.
const PAGES: [&str; 5] = ["scalars", "images", "histograms", "hparams", "projector"];

/// Headless Chromium on every page (`scripts/tensorboard_shots.py`): each shows its data,
/// the projector all `points` photos with thumbnails and metadata, coloured by label.
fn check_pages(b: &Board, points: usize, labels: Vec<(String, usize)>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tensorboard_shots.py");
    // taken in a folder of this process, moved into place at the end: two test runs at
    // once do not mix their screenshots
    let out_dir = screenshot_dir();
    let own = out_dir.with_file_name(format!("screenshots.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&own);
    let out = Command::new("python3")
        .arg(&script)
        .args(["--port", &b.port.to_string(), "--out"])
        .arg(&own)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{} failed:\n{stdout}\n{stderr}",
        script.display()
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    let tags = report["scalars"]["tags"].as_array().unwrap();
    assert!(tags.contains(&json!("accuracy/val")), "{report}");
    for page in ["images", "histograms"] {
        assert!(report[page]["count"].as_u64().unwrap() > 0, "{report}");
    }
    let mut rows: Vec<&str> = report["hparams"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        ["cnn", "transfer"],
        "one HParams row per run: {report}"
    );
    let p = &report["projector"];
    assert_eq!(p["run"], "cnn/tb", "{p}");
    assert_eq!(p["points"], json!(points), "{p}");
    assert_eq!(p["sprite"], true, "{p}");
    assert_eq!(p["columns"], json!(METADATA_COLUMNS), "{p}");
    // the colour legend the projector drew: one entry per label with its point count
    let mut legend: Vec<(String, usize)> = p["legend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e[0].as_str().unwrap().to_string(),
                e[1].as_u64().unwrap() as usize,
            )
        })
        .collect();
    legend.sort();
    assert_eq!(legend, labels, "{p}");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::rename(&own, &out_dir).unwrap();
    for page in PAGES {
        let path = out_dir.join(format!("{page}.png"));
        let img = image::open(&path).unwrap();
        assert!(img.width() >= 1000, "{}", path.display());
        println!("screenshot for a person to look at: {}", path.display());
    }
}

#[test]
fn tensorboard_serves_everything_lab5_wrote() {
    let p = project();
    lab5(&p, &["import"]);
    let cnn = lab5(&p, &["train", "cnn"]);
    for line in [
        "TensorBoard images and histograms:",
        "TensorBoard final metrics and images:",
    ] {
        assert!(cnn.contains(line), "{line} not in\n{cnn}");
    }
    lab5(&p, &["train", "transfer"]);
    let runs = p.root.join("runs");
    let run_arg = |run: &str| runs.join(run).to_string_lossy().into_owned();
    lab5(&p, &["robustness", "--run", &run_arg("cnn")]);
    for run in ["cnn", "transfer"] {
        let out = lab5(&p, &["embed", "--run", &run_arg(run)]);
        assert!(out.contains("projector:"), "{out}");
    }
    let board = Board::start(&p);
    check_scalars(&board, &runs);
    check_images(&board, &p);
    check_histograms(&board, &runs);
    check_hparams(&board);
    check_projector(&board, &p, &runs);
    let scored = lab5::train::RunRecord::load(&runs.join("cnn"))
        .unwrap()
        .predictions()
        .unwrap();
    let labels = ["cat", "dog"]
        .map(|c| {
            (
                c.to_string(),
                scored.iter().filter(|s| s.label.name() == c).count(),
            )
        })
        .to_vec();
    check_pages(&board, scored.len(), labels);
}
