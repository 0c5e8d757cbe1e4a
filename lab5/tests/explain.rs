//! Grad-CAM, `lab5 explain`, the augmentation preview and the views of notebook
//! `07_your_photos`, on real photos with real trained runs: a small project imports 200 pets
//! photos per class, trains the CNN (64 px, 2 epochs) and the transfer head (224 px, frozen
//! EfficientNet-Lite0, 40 epochs on cached features) once for all tests.
//!
//! The method check: a composite photo made of a real cat photo's middle on the left and a
//! real dog photo's middle on the right (and the mirror image of that layout). The
//! transfer model's "dog" map must put more of its mass on the dog's half than its "cat"
//! map does, and blanking the dog half out (mid-grey) must move the "dog" map's mass off
//! that half.

mod support;

use image::{imageops, Rgb, RgbImage};
use lab5::data::Class;
use lab5::explain::{Explained, Explainer};
use lab5::views::{self, Model, Shown};
use lab5::Config;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use support::project::{photos, remove_stale_roots, text, Project};

/// Photos per class in the fixture's data set.
const PER_CLASS: usize = 200;
/// Side of a composite photo (each half a `SIDE/2 x SIDE` strip of one photo).
const SIDE: u32 = 256;

/// The project's own edits to the shipped config.
fn edits() -> Vec<(&'static str, Value)> {
    vec![
        ("preprocess.image_size", json!(64)),
        ("preprocess.resize_shorter", json!(72)),
        ("cnn.epochs", json!(2)),
        ("cnn.batch_size", json!(16)),
        ("runtime.threads", json!(2)),
    ]
}

/// The project with its data imported and both models trained (once per test binary).
fn project() -> &'static Project {
    static P: OnceLock<Project> = OnceLock::new();
    P.get_or_init(|| {
        remove_stale_roots("explain");
        let p = Project::new("explain", &edits());
        let dir = p.root.join("incoming");
        for class in ["cat", "dog"] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            for f in photos(class, 0, PER_CLASS) {
                std::os::unix::fs::symlink(&f, dir.join(class).join(f.file_name().unwrap()))
                    .unwrap();
            }
        }
        for args in [
            vec!["import", dir.to_str().unwrap()],
            vec!["train", "cnn"],
            vec!["train", "transfer"],
        ] {
            let out = p.run(&args, &[]);
            assert!(out.status.success(), "lab5 {args:?}: {:?}", text(&out));
        }
        p
    })
}

fn run_dir(model: &str) -> PathBuf {
    project().root.join("runs").join(model)
}

/// A real photo decoded (format from its bytes, orientation applied).
fn decode(path: &Path) -> RgbImage {
    let bytes = std::fs::read(path).unwrap();
    lab5::decode::decode(&bytes, &lab5::config::Images::display())
        .unwrap()
        .to_rgb8()
}

/// The middle `h/2 x h` strip of a photo (its centre, where the animal mostly is), as a
/// `SIDE/2 x SIDE` image.
fn middle_strip(path: &Path) -> RgbImage {
    let img = decode(path);
    let (w, h) = img.dimensions();
    let (sw, sh) = ((h / 2).min(w), h.min(2 * w));
    let strip = imageops::crop_imm(&img, (w - sw) / 2, (h - sh) / 2, sw, sh).to_image();
    imageops::resize(&strip, SIDE / 2, SIDE, imageops::FilterType::Triangle)
}

/// `left` and `right` side by side as one `SIDE x SIDE` PNG at `path`.
fn composite(left: &RgbImage, right: &RgbImage, path: &Path) -> PathBuf {
    let mut out = RgbImage::new(SIDE, SIDE);
    imageops::replace(&mut out, left, 0, 0);
    imageops::replace(&mut out, right, i64::from(SIDE / 2), 0);
    out.save(path).unwrap();
    path.to_path_buf()
}

fn grey_half() -> RgbImage {
    RgbImage::from_pixel(SIDE / 2, SIDE, Rgb([128, 128, 128]))
}

/// Candidate photos per class for the composites, outside the fixture's data set.
const CANDIDATES: usize = 6;
/// Pairs of composites checked.
const PAIRS: usize = 3;

/// The middle strips of the first [`PAIRS`] photos of `class` (after the fixture's) that
/// the model recognises on their own, beside a grey half: Grad-CAM can only show where
/// an animal is when the model sees it. Returns the strips with their photo and `p_dog`.
fn recognised(ex: &Explainer, class: Class, dir: &Path) -> Vec<(PathBuf, RgbImage, f64)> {
    let mut out = Vec::new();
    for (i, photo) in photos(class.name(), 300, CANDIDATES)
        .into_iter()
        .enumerate()
    {
        let strip = middle_strip(&photo);
        let file = dir.join(format!("alone-{class}-{i}.png"));
        let alone = match class {
            Class::Cat => composite(&strip, &grey_half(), &file),
            Class::Dog => composite(&grey_half(), &strip, &file),
        };
        let p = ex.explain(&alone).unwrap().p_dog;
        let sure = match class {
            Class::Cat => p < 0.15,
            Class::Dog => p > 0.85,
        };
        eprintln!(
            "{class} {} alone: p_dog {p:.3}{}",
            photo.display(),
            if sure { " (kept)" } else { "" }
        );
        if sure && out.len() < PAIRS {
            out.push((photo, strip, p));
        }
    }
    assert_eq!(
        out.len(),
        PAIRS,
        "fewer than {PAIRS} of {CANDIDATES} {class} photos recognised on their own"
    );
    out
}

/// One pair's three composites explained: cat | dog, dog | cat, and cat | grey.
struct PairMaps {
    cat_dog: Explained,
    dog_cat: Explained,
    blanked: Explained,
}

impl PairMaps {
    fn new(ex: &Explainer, dir: &Path, k: usize, cat: &RgbImage, dog: &RgbImage) -> PairMaps {
        let explain = |left: &RgbImage, right: &RgbImage, name: &str| {
            let file = composite(left, right, &dir.join(format!("{name}{k}.png")));
            ex.explain(&file).unwrap()
        };
        PairMaps {
            cat_dog: explain(cat, dog, "cd"),
            dog_cat: explain(dog, cat, "dc"),
            blanked: explain(cat, &grey_half(), "cg"),
        }
    }

    /// Shares of the "dog" and "cat" maps on the dog's half, in both layouts.
    fn on_dog_half(&self, class: Class) -> [f64; 2] {
        [
            self.cat_dog.share_in_columns(class, 0.5, 1.0),
            self.dog_cat.share_in_columns(class, 0.0, 0.5),
        ]
    }

    /// The "dog" map's mass on the right half, with the dog there and greyed out.
    fn dog_mass_right(&self) -> [f64; 2] {
        [&self.cat_dog, &self.blanked].map(|e| e.mass_in_columns(Class::Dog, 0.5, 1.0))
    }

    fn report(&self, k: usize) -> String {
        let (dog, cat, mass) = (
            self.on_dog_half(Class::Dog),
            self.on_dog_half(Class::Cat),
            self.dog_mass_right(),
        );
        let p = [&self.cat_dog, &self.dog_cat, &self.blanked].map(|e| e.p_dog);
        format!(
            "pair {k}: share on the dog's half of the dog map {dog:.3?}, of the cat map {cat:.3?} \
             (cat|dog, dog|cat); dog map's mass on the right half {mass:.4?} (dog there, greyed \
             out); p_dog {p:.3?} (cat|dog, dog|cat, cat|grey)"
        )
    }
}

#[test]
fn gradcam_follows_the_dog_and_moves_when_it_is_blanked_out() {
    let p = project();
    let ex = Explainer::open(&run_dir("transfer"), &p.config().explain).unwrap();
    let dir = p.root.join("composites");
    std::fs::create_dir_all(&dir).unwrap();
    let cats = recognised(&ex, Class::Cat, &dir);
    let dogs = recognised(&ex, Class::Dog, &dir);
    for (k, ((cat, c, _), (dog, d, _))) in cats.iter().zip(&dogs).enumerate() {
        let maps = PairMaps::new(&ex, &dir, k, c, d);
        let seen = format!("{} ({} | {})", maps.report(k), cat.display(), dog.display());
        eprintln!("{seen}");
        assert_eq!(maps.cat_dog.layer, "_bn1", "{seen}");
        let (dog_map, cat_map) = (maps.on_dog_half(Class::Dog), maps.on_dog_half(Class::Cat));
        for layout in 0..2 {
            assert!(dog_map[layout] > cat_map[layout] + 0.2, "{seen}");
        }
        let [with_dog, greyed] = maps.dog_mass_right();
        assert!(greyed < 0.5 * with_dog, "{seen}");
        assert!(maps.blanked.p_dog < maps.cat_dog.p_dog, "{seen}");
    }
}

#[test]
fn the_cnn_is_explained_at_its_last_conv_block_on_one_scale() {
    let p = project();
    let cfg = p.config();
    let ex = Explainer::open(&run_dir("cnn"), &cfg.explain).unwrap();
    let dog = photos("dog", 300, 1).remove(0);
    let e = ex.explain(&dog).unwrap();
    let side = cfg.explain.overlay_size;
    assert_eq!(e.layer, "block5.relu");
    assert_eq!(e.photo.dimensions(), (side, side));
    let pixels = (side * side) as usize;
    assert_eq!((e.dog.len(), e.cat.len()), (pixels, pixels));
    let all = e.dog.iter().chain(&e.cat);
    assert!(
        all.clone().all(|v| (0.0..=1.0).contains(v)),
        "values outside 0..=1"
    );
    let top = all.fold(0f32, |m, &v| m.max(v));
    assert!(
        (top - 1.0).abs() < 1e-3 || e.scale == 0.0,
        "the larger map peaks at {top}"
    );
    assert_eq!(
        ex.explain(&dog).unwrap().p_dog,
        e.p_dog,
        "explaining twice changed the answer"
    );
    let predicted = lab5::train::predict(&run_dir("cnn"), std::slice::from_ref(&dog)).unwrap();
    let p_dog = predicted[0].as_ref().unwrap().p_dog;
    assert!(
        (p_dog - e.p_dog).abs() < 1e-9,
        "explain says {} where predict says {p_dog}",
        e.p_dog
    );
    let overlay = e.overlay(e.predicted()).unwrap();
    assert_eq!(overlay.dimensions(), (side, side));
    assert_ne!(overlay, e.photo);
}

#[test]
fn explain_writes_one_png_per_photo_and_names_each_bad_file() {
    let p = project();
    let out = p.root.join("explained");
    let (cat, dog) = (
        photos("cat", 300, 1).remove(0),
        photos("dog", 300, 1).remove(0),
    );
    let bad = p.root.join("notes.jpg");
    std::fs::write(&bad, "not a photo\n").unwrap();
    let missing = p.root.join("missing.jpg");
    let run = run_dir("transfer");
    let args: Vec<&str> = vec![
        "explain",
        "--run",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        cat.to_str().unwrap(),
        dog.to_str().unwrap(),
        bad.to_str().unwrap(),
        missing.to_str().unwrap(),
    ];
    let o = p.run(&args, &[]);
    let (stdout, stderr) = text(&o);
    assert!(
        !o.status.success(),
        "bad files must fail the command:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("2 of 4 file(s) could not be explained"),
        "{stderr}"
    );
    for f in [&bad, &missing] {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&*f.to_string_lossy()));
        assert!(
            line.is_some_and(|l| l.contains("error:")),
            "no error line for {}:\n{stderr}",
            f.display()
        );
    }
    for f in [&cat, &dog] {
        let png = out.join(format!(
            "{}.gradcam.png",
            f.file_name().unwrap().to_string_lossy()
        ));
        assert!(stdout.contains(&*png.to_string_lossy()), "{stdout}");
        let img = image::open(&png).unwrap();
        let side = p.config().explain.overlay_size;
        assert!(
            img.width() > 3 * side && img.height() > side,
            "{}x{}",
            img.width(),
            img.height()
        );
    }
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        2,
        "only the two photos' PNGs"
    );
}

#[test]
fn explain_refuses_a_missing_run_clearly_and_has_help() {
    let p = project();
    let photo = photos("cat", 300, 1).remove(0);
    let nowhere = p.root.join("runs").join("nothing");
    let o = p.run(
        &[
            "explain",
            "--run",
            nowhere.to_str().unwrap(),
            photo.to_str().unwrap(),
        ],
        &[],
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no finished run in") && stderr.contains("nothing"),
        "{stderr}"
    );
    let o = p.run(&["explain", "--help"], &[]);
    let (stdout, _) = text(&o);
    assert!(
        o.status.success() && stdout.contains("--run") && stdout.contains("--out"),
        "{stdout}"
    );
    let o = p.run(&["explain", "--run", nowhere.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2), "no photo is a usage error");
}

#[test]
fn the_augmentation_preview_is_the_training_loader_at_work() {
    let p = project();
    let mut cfg = p.config();
    let photo = photos("dog", 0, 1).remove(0);
    let (original, versions) =
        lab5::train::dataset::augmentation_preview(&cfg, &photo, 6, 7).unwrap();
    let s = cfg.preprocess.image_size;
    assert_eq!(original.size(), [3, s, s]);
    assert_eq!(versions.size(), [6, 3, s, s]);
    let cached =
        lab5::data::cache::preprocess_file(&photo, s, cfg.preprocess.resize_shorter).unwrap();
    assert!(
        original.equal(&cached),
        "the original is not the photo as the cache holds it"
    );
    let differ = |a: &tch::Tensor, b: &tch::Tensor| !a.equal(b);
    assert!(
        (0..6).all(|k| differ(&versions.get(k), &original)),
        "an augmentation left the photo as it was"
    );
    assert!(
        differ(&versions.get(0), &versions.get(1)),
        "two draws gave the same augmentation"
    );
    let (_, again) = lab5::train::dataset::augmentation_preview(&cfg, &photo, 6, 7).unwrap();
    assert!(
        again.equal(&versions),
        "the same seed drew other augmentations"
    );
    let a = &mut cfg.augment;
    (a.hflip, a.shift, a.brightness, a.contrast, a.saturation) = (false, 0.0, 0.0, 0.0, 0.0);
    (a.grayscale, a.blur, a.noise) = (0.0, 0.0, 0.0);
    let (_, plain) = lab5::train::dataset::augmentation_preview(&cfg, &photo, 3, 7).unwrap();
    assert!(
        (0..3).all(|k| plain.get(k).equal(&original)),
        "with augmentation off the loader changed the photo"
    );
    cfg.augment.train_size = 48;
    let (_, small) = lab5::train::dataset::augmentation_preview(&cfg, &photo, 2, 7).unwrap();
    assert_eq!(
        small.size(),
        [2, 3, 48, 48],
        "augment.train_size is the loader's output size"
    );
}

/// The project's config with `paths.<key>` set to `value`.
fn config_with(key: &str, value: Value) -> Config {
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(project().config_path()).unwrap()).unwrap();
    v["paths"][key] = value;
    let path = project().root.join(format!("config-{key}.json"));
    std::fs::write(&path, v.to_string()).unwrap();
    Config::load(&path).unwrap()
}

fn note_of(shown: &Shown) -> &str {
    match shown {
        Shown::Note(n) => &n.0,
        other => panic!("expected a note, got {other:?}"),
    }
}

#[test]
fn your_photos_show_both_models_or_say_what_to_do() {
    let p = project();
    let dir = p.root.join("mine");
    let cfg = config_with("my_photos", json!(dir));
    let shown = views::my_photos(&cfg).unwrap();
    assert!(
        note_of(&shown).contains("mine") && note_of(&shown).contains("paths.my_photos"),
        "{shown:?}"
    );
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("shopping list.txt"), "milk\n").unwrap();
    let shown = views::my_photos(&cfg).unwrap();
    assert!(note_of(&shown).contains("shopping list.txt"), "{shown:?}");
    for (i, f) in [photos("cat", 300, 1), photos("dog", 300, 1)]
        .concat()
        .iter()
        .enumerate()
    {
        std::fs::copy(f, dir.join(format!("photo{i}.jpg"))).unwrap();
    }
    std::fs::write(dir.join(".DS_Store"), "x").unwrap();
    match views::my_photos(&cfg).unwrap() {
        Shown::Figure(f) => {
            let svg = f.svg();
            for text in [
                "photo0.jpg",
                "photo1.jpg",
                "CNN: ",
                "transfer: ",
                "Grad-CAM of",
            ] {
                assert!(svg.contains(text), "{text} missing from the figure");
            }
            assert!(!svg.contains("shopping") && !svg.contains("DS_Store"));
            assert_eq!(
                svg.matches("<image").count(),
                6,
                "two photos, three tiles each"
            );
        }
        other => panic!("expected a figure, got {other:?}"),
    }
}

#[test]
fn test_photos_and_mistakes_are_shown_with_both_maps() {
    let p = project();
    let cfg = p.config();
    let fig = views::gradcam_samples(&cfg, 2).unwrap();
    assert_eq!(
        fig.svg().matches("<image").count(),
        12,
        "four photos, three tiles each"
    );
    assert!(fig.svg().contains("true: cat") && fig.svg().contains("true: dog"));
    for model in [Model::Cnn, Model::Transfer] {
        match views::gradcam_mistakes(&cfg, model, 2).unwrap() {
            Shown::Figure(f) => {
                let tiles = f.svg().matches("<image").count();
                assert!(tiles == 3 || tiles == 6, "{tiles} tiles");
            }
            Shown::Note(n) => assert!(n.0.contains("No mistakes"), "{}", n.0),
            other => panic!("{other:?}"),
        }
    }
    let table = views::metrics_table(&cfg, Model::Transfer).unwrap().0;
    let interval = table.column("95 % Wilson interval").unwrap();
    assert_eq!(interval.len(), 3, "one interval per split");
    let fig = views::augmentations(&cfg, 5).unwrap();
    assert_eq!(fig.svg().matches("<image").count(), 6);
    assert!(fig.svg().contains("augmented #5"));
}

/// A labelled folder of `n` pets photos per class from `skip` on, plus the first photo of
/// each class of the fixture's data set (which the collection's evaluation leaves out).
fn collection(name: &str, skip: usize, n: usize) -> PathBuf {
    let dir = project().root.join(name);
    for class in ["cat", "dog"] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for f in photos(class, skip, n)
            .into_iter()
            .chain(photos(class, 0, 1))
        {
            std::fs::copy(&f, dir.join(class).join(f.file_name().unwrap())).unwrap();
        }
    }
    dir
}

#[test]
fn both_models_on_another_collection() {
    let p = project();
    let cfg = p.config();
    assert!(cfg.paths.other_collection.is_none());
    let shown = views::other_collection(&cfg).unwrap();
    assert!(
        note_of(&shown).contains("paths.other_collection"),
        "{shown:?}"
    );
    let o = p.run(&["evaluate"], &[]);
    assert!(
        !o.status.success() && text(&o).1.contains("--data"),
        "{:?}",
        text(&o)
    );
    let dir = collection("elsewhere", 400, 10);
    let e = views::evaluate_collection(&cfg, &dir).unwrap();
    assert_eq!(
        e.in_data_set, 2,
        "the two photos of the data set are left out"
    );
    assert_eq!(e.models.len(), 2);
    for m in &e.models {
        assert_eq!(m.collection.metrics.n, 20);
        let (lo, hi) = m.collection.metrics.accuracy_interval();
        assert!(lo <= m.collection.metrics.accuracy && m.collection.metrics.accuracy <= hi);
        assert!(m.collection.saved_to.is_file());
    }
    let verdict = e.verdict().join("\n");
    assert!(
        verdict.contains("2 photo(s)") && verdict.contains("CNN from scratch"),
        "{verdict}"
    );
    let cfg = config_with("other_collection", json!("elsewhere"));
    assert!(matches!(
        views::other_collection(&cfg).unwrap(),
        Shown::Table(_)
    ));
    let o = p.run(&["evaluate", "--data", dir.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    for text in [
        "CNN from scratch",
        "Transfer",
        "collection accuracy",
        "95 %",
        "left out",
    ] {
        assert!(stdout.contains(text), "{text} missing:\n{stdout}");
    }
    let missing = p.root.join("nowhere");
    let o = p.run(&["evaluate", "--data", missing.to_str().unwrap()], &[]);
    assert!(
        !o.status.success() && text(&o).1.contains("not a folder"),
        "{:?}",
        text(&o)
    );
}
