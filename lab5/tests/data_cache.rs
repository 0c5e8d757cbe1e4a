//! The preprocessing cache and the loader on real photos from `../shared/data/pets`:
//! a small manifest (symlinks in a temp data folder, splits assigned by hand), the cache
//! built, reloaded and rebuilt when the manifest changes, clear errors for bad files,
//! ImageFolder preprocessing, and augmented batches.

use lab5::data::cache::{self, preprocess_file, preprocess_folder};
use lab5::data::loader::{self, IMAGENET};
use lab5::data::{Class, Manifest, Origin, Record, SplitName};
use lab5::Config;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

const SIZE: i64 = 64;
const SHORTER: i64 = 72;
const PER_CLASS: usize = 30;

fn pets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/pets")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lab5-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Sorted photo files of one class in the pets folder.
fn photos(class: Class) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(pets().join(class.name()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The first pets file whose bytes start with `magic` (the WebP / PNG named `.jpg`).
fn photo_starting_with(magic: &[u8]) -> PathBuf {
    Class::ALL
        .iter()
        .flat_map(|c| photos(*c))
        .find(|p| std::fs::read(p).unwrap().starts_with(magic))
        .unwrap()
}

fn record(data_dir: &Path, class: Class, src: &Path, i: usize) -> Record {
    let name = src.file_name().unwrap().to_string_lossy().into_owned();
    let rel = PathBuf::from("raw").join(class.name()).join(&name);
    std::fs::create_dir_all(data_dir.join(rel.parent().unwrap())).unwrap();
    std::os::unix::fs::symlink(src, data_dir.join(&rel)).unwrap();
    let bytes = std::fs::read(src).unwrap();
    let split = [
        SplitName::Train,
        SplitName::Train,
        SplitName::Train,
        SplitName::Val,
        SplitName::Test,
    ][i % 5];
    Record {
        id: name.trim_end_matches(".jpg").to_string(),
        label: class,
        breed_id: None,
        breed_name: None,
        source: Origin::Folder,
        url: src.display().to_string(),
        path: rel,
        width: 0,
        height: 0,
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        split: Some(split),
        excluded: None,
        phash: None,
    }
}

/// A data folder of `PER_CLASS` symlinked photos per class and a config pointing at it.
fn small_data_set(name: &str) -> (Config, Manifest) {
    let dir = temp_dir(name);
    let mut records = Vec::new();
    for class in Class::ALL {
        for (i, p) in photos(class).iter().take(PER_CLASS).enumerate() {
            records.push(record(&dir, class, p, i));
        }
    }
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.json"))
            .unwrap();
    let mut cfg = Config::from_json(&text).unwrap();
    cfg.paths.data_dir = dir;
    (cfg, Manifest { records })
}

fn cache_files(cfg: &Config) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(cfg.data_dir().join(cache::CACHE_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn cache_is_built_once_reloaded_and_rebuilt_when_the_manifest_changes() {
    let (cfg, mut manifest) = small_data_set("cache");
    let built = cache::load_or_build(&cfg, &manifest, SIZE, SHORTER).unwrap();
    assert_eq!(built.train.images.size(), [36, 3, SIZE, SIZE]);
    assert_eq!(built.train.images.kind(), Kind::Uint8);
    assert_eq!((built.val.len(), built.test.len()), (12, 12));
    let first_files = cache_files(&cfg);
    assert_eq!(first_files.len(), 1);

    let loaded = cache::load_or_build(&cfg, &manifest, SIZE, SHORTER).unwrap();
    assert!(loaded.train.images.equal(&built.train.images));
    assert_eq!(loaded.test.ids, built.test.ids);
    assert_eq!(loaded.val.label_vec(), built.val.label_vec());
    assert_eq!(
        cache_files(&cfg),
        first_files,
        "a reload must not write anything"
    );

    // The cached pixels are exactly what preprocessing the file gives.
    let rec = manifest.split(SplitName::Test)[0].clone();
    let one = preprocess_file(&cfg.data_dir().join(&rec.path), SIZE, SHORTER).unwrap();
    assert!(loaded.test.images.get(0).equal(&one));
    assert_eq!(loaded.test.ids[0], rec.id);

    manifest.records[0].excluded = Some(lab5::data::Exclusion::LabelCheck);
    let rebuilt = cache::load_or_build(&cfg, &manifest, SIZE, SHORTER).unwrap();
    assert_eq!(rebuilt.train.len(), 35);
    let files = cache_files(&cfg);
    assert_eq!(files.len(), 1, "the stale cache is removed");
    assert_ne!(files, first_files);
    std::fs::remove_dir_all(cfg.data_dir()).unwrap();
}

#[test]
fn a_damaged_or_changed_source_is_reported_by_name() {
    let (cfg, manifest) = small_data_set("cache-bad");
    let rec = &manifest.records[3];
    let target = cfg.data_dir().join(&rec.path);
    std::fs::remove_file(&target).unwrap();
    std::fs::write(&target, b"not a photo").unwrap();
    let err = format!(
        "{:#}",
        cache::load_or_build(&cfg, &manifest, SIZE, SHORTER).unwrap_err()
    );
    assert!(
        err.contains(&rec.id) && err.contains("changed since it was imported"),
        "{err}"
    );
    assert!(
        !cfg.data_dir().join(cache::CACHE_DIR).exists(),
        "no cache after a failure"
    );
    std::fs::remove_dir_all(cfg.data_dir()).unwrap();
}

#[test]
fn webp_and_png_named_jpg_are_decoded_from_their_bytes() {
    for magic in [&b"RIFF"[..], &b"\x89PNG"[..]] {
        let p = photo_starting_with(magic);
        let t = preprocess_file(&p, SIZE, SHORTER).unwrap();
        assert_eq!(t.size(), [3, SIZE, SIZE]);
        let spread = t.to_kind(Kind::Float).std(true).double_value(&[]);
        assert!(spread > 10.0, "{} looks blank (std {spread})", p.display());
    }
}

#[test]
fn missing_empty_truncated_and_non_image_files_get_clear_errors() {
    let dir = temp_dir("bad-files");
    let jpeg = std::fs::read(&photos(Class::Cat)[0]).unwrap();
    let cases = [
        ("missing.jpg", None, "no such file"),
        ("empty.jpg", Some(Vec::new()), "empty"),
        (
            "truncated.jpg",
            Some(jpeg[..jpeg.len() / 3].to_vec()),
            "truncated",
        ),
        (
            "notes.jpg",
            Some(b"just some text".to_vec()),
            "not an image",
        ),
    ];
    for (name, bytes, expected) in cases {
        let p = dir.join(name);
        if let Some(b) = bytes {
            std::fs::write(&p, b).unwrap();
        }
        let err = format!("{:#}", preprocess_file(&p, SIZE, SHORTER).unwrap_err());
        assert!(
            err.contains(name) && err.contains(expected),
            "{name}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn image_folder_is_preprocessed_with_per_file_errors() {
    let dir = temp_dir("folder");
    for class in Class::ALL {
        std::fs::create_dir_all(dir.join(class.name())).unwrap();
        for p in photos(class).iter().take(3) {
            std::os::unix::fs::symlink(p, dir.join(class.name()).join(p.file_name().unwrap()))
                .unwrap();
        }
    }
    std::fs::write(dir.join("dog").join("broken.jpg"), b"\xff\xd8\xff\xe0 cut").unwrap();
    // Not taken, but named: a hidden file, a folder inside a class folder, another folder.
    std::fs::write(dir.join("cat").join(".DS_Store"), b"junk").unwrap();
    std::fs::create_dir_all(dir.join("cat").join("more")).unwrap();
    std::fs::create_dir_all(dir.join("birds")).unwrap();
    let folder = preprocess_folder(&dir, SIZE, SHORTER, &Default::default()).unwrap();
    assert_eq!(folder.left_out, ["birds/", "cat/more/", "cat/.DS_Store"]);
    let (set, errors) = (folder.split, folder.failed);
    assert_eq!(set.images.size(), [6, 3, SIZE, SIZE]);
    assert_eq!(set.label_vec(), [0, 0, 0, 1, 1, 1]);
    assert!(set.ids[0].starts_with("cat/") && set.ids[5].starts_with("dog/"));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].0.ends_with("dog/broken.jpg"), "{errors:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(preprocess_folder(&dir, SIZE, SHORTER, &Default::default()).is_err());
}

#[test]
fn training_batches_are_shuffled_augmented_and_reproducible() {
    let (cfg, manifest) = small_data_set("loader");
    let cached = cache::load_or_build(&cfg, &manifest, SIZE, SHORTER).unwrap();
    let train = &cached.train;
    // The pixel noise comes from libtorch's generator (seeded once per training with
    // `runtime.seed`), everything else from the loader's seed.
    let run = |seed| -> Vec<(Tensor, Tensor)> {
        tch::manual_seed(1);
        loader::batches(
            train,
            16,
            Some(&cfg.augment),
            SIZE,
            &IMAGENET,
            seed,
            Device::Cpu,
        )
        .collect()
    };
    let (a, b, c) = (run(7), run(7), run(8));
    assert_eq!(a.len(), 3);
    assert_eq!(a[2].0.size(), [4, 3, SIZE, SIZE]);
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| x.0.equal(&y.0) && x.1.equal(&y.1)));
    assert!(!a[0].0.equal(&c[0].0));
    let mut labels: Vec<i64> = a
        .iter()
        .flat_map(|(_, y)| Vec::<i64>::try_from(y).unwrap())
        .collect();
    let mut expected = train.label_vec();
    assert_ne!(labels, expected, "training order is shuffled");
    labels.sort();
    expected.sort();
    assert_eq!(labels, expected);

    let plain: Vec<(Tensor, Tensor)> =
        loader::batches(train, 16, None, SIZE, &IMAGENET, 7, Device::Cpu).collect();
    let first = loader::normalize(&train.images.narrow(0, 0, 16), &IMAGENET, Device::Cpu);
    assert!(plain[0].0.allclose(&first, 1e-6, 1e-6, false));
    assert!(!a[0].0.allclose(&plain[0].0, 1e-3, 1e-3, false));
    std::fs::remove_dir_all(cfg.data_dir()).unwrap();
}
