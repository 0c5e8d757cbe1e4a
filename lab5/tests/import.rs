//! `lab5 import` on real photos: the whole pets folder (2,100 rows, 1,050 per class,
//! three stratified splits, idempotent re-import), a folder with bad files, and the
//! reproducibility of the split.

mod support;

use lab5::data::images::{file_id, Reason};
use lab5::data::import::import_folder;
use lab5::data::{phash, split, Class, Exclusion, SplitName};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Instant;
use support::project::{check_consistent, class_counts, pets_dir, photos, text, Project};

#[test]
fn importing_the_pets_folder_gives_2100_rows_in_three_stratified_splits() {
    let p = Project::new("import-pets", &[]);
    let dir = pets_dir();
    let t = Instant::now();
    let first = p.run(&["import", dir.to_str().unwrap(), "--json"], &[]);
    let secs = t.elapsed().as_secs_f64();
    let (out, err) = text(&first);
    assert!(first.status.success(), "{err}");
    eprintln!("lab5 import of the pets folder: {secs:.2} s (process wall time)");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (r["imported"]["cat"].as_u64(), r["imported"]["dog"].as_u64()),
        (Some(1050), Some(1050)),
        "{r:#}"
    );
    let m = check_consistent(&p);
    assert_eq!(class_counts(&m), (1050, 1050));
    let cfg = p.config();
    let moved = near_copies_only_moved(&m, &cfg);
    for class in Class::ALL {
        let want = split::targets(1050, &cfg.data.split);
        for (i, s) in SplitName::ALL.iter().enumerate() {
            let n = m
                .records
                .iter()
                .filter(|r| r.label == class && r.split == Some(*s))
                .count();
            assert!(
                n.abs_diff(want[i]) <= moved,
                "{class} {s}: {n} vs {}",
                want[i]
            );
        }
    }
    let ext = |e: &str| {
        m.records
            .iter()
            .filter(|r| r.path.extension().unwrap() == e)
            .count()
    };
    assert_eq!(
        (ext("webp"), ext("png")),
        (1, 1),
        "format comes from the bytes"
    );
    let labelled = count_labelled_rows(&dir);
    assert_eq!(
        m.records.iter().filter(|r| r.breed_name.is_some()).count(),
        labelled
    );
    let before = std::fs::read(p.data_dir().join("manifest.csv")).unwrap();
    let again = p.run(&["import", dir.to_str().unwrap(), "--json"], &[]);
    let r2: Value = serde_json::from_str(&text(&again).0).unwrap();
    assert_eq!(r2["already_present"].as_u64(), Some(2100), "{r2:#}");
    assert_eq!(r2["imported"], json!({}));
    assert_eq!(
        std::fs::read(p.data_dir().join("manifest.csv")).unwrap(),
        before,
        "re-import changed the manifest"
    );
}

/// Checks that no pair of near-copies straddles splits and that the split differs from the
/// plain stratified split only in photos that have a near-copy; returns how many differ.
fn near_copies_only_moved(m: &lab5::data::Manifest, cfg: &lab5::Config) -> usize {
    let d = cfg.data.near_duplicate_distance;
    assert!(phash::pairs_across_splits(m, d).is_empty());
    let in_group: std::collections::HashSet<usize> =
        phash::groups(m, d).into_iter().flatten().collect();
    let mut plain = m.clone();
    plain.records.iter_mut().for_each(|r| r.split = None);
    split::assign(&mut plain, &cfg.data.split, cfg.data.seed);
    let changed: Vec<usize> = (0..m.records.len())
        .filter(|&i| m.records[i].split != plain.records[i].split)
        .collect();
    eprintln!(
        "near-copies: {} pairs, {} groups ({} photos); {} photos off the plain split, {} plain pairs across splits",
        phash::pairs(m, d).len(),
        phash::groups(m, d).len(),
        in_group.len(),
        changed.len(),
        phash::pairs_across_splits(&plain, d).len()
    );
    assert!(
        changed.iter().all(|i| in_group.contains(i)),
        "a photo without near-copy moved"
    );
    changed.len()
}

/// Rows of `labels.csv` with a non-empty breed (third column).
fn count_labelled_rows(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2).is_some_and(|b| !b.is_empty()))
        .count()
}

/// A small ImageFolder with good, bad, duplicate and oddly named files.
fn messy_folder(root: &Path) {
    let (cat, dog) = (root.join("cat"), root.join("dogs"));
    for d in [&cat, &dog, &root.join("birds")] {
        std::fs::create_dir_all(d).unwrap();
    }
    let cats = photos("cat", 500, 6);
    for f in &cats {
        std::fs::copy(f, cat.join(f.file_name().unwrap())).unwrap();
    }
    for f in photos("dog", 500, 4) {
        std::fs::copy(&f, dog.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::copy(&cats[0], cat.join("copy of first.jpg")).unwrap();
    std::fs::copy(&cats[1], root.join("birds").join("x.jpg")).unwrap();
    let whole = std::fs::read(&cats[2]).unwrap();
    std::fs::write(cat.join("half.jpg"), &whole[..whole.len() / 2]).unwrap();
    std::fs::write(cat.join("page.jpg"), b"<html>not an image</html>").unwrap();
    std::fs::write(cat.join(".DS_Store"), b"junk").unwrap();
    // A macOS resource fork next to a photo: hidden, never a photo of its own.
    std::fs::write(dog.join("._fork.jpg"), b"\x00\x05\x16\x07").unwrap();
    std::fs::rename(
        cat.join(cats[3].file_name().unwrap()),
        cat.join("odd name!.jpg"),
    )
    .unwrap();
    let stem = |i: usize| cats[i].file_stem().unwrap().to_string_lossy().into_owned();
    // A dog photo whose name (the id) a cat photo already has: stored under another id.
    std::fs::copy(
        &photos("dog", 520, 1)[0],
        dog.join(format!("{}.jpg", stem(1))),
    )
    .unwrap();
    // Saved the way spreadsheet programs do: a UTF-8 byte-order mark and CRLF line ends.
    // Lines 4-7: no id, an id with no file, an id given twice, a species that is no class.
    let labels = format!(
        "\u{feff}id,species,breed\r\n{},cat,Bengal\r\n{},dog,Pug\r\n,cat,Nobody\r\nghost,dog,Pug\r\n{},cat,Bengal\r\nbird1,bird,\r\n",
        stem(4),
        stem(5),
        stem(4)
    );
    std::fs::write(root.join("labels.csv"), labels).unwrap();
}

#[test]
fn import_checks_every_file_and_reports_why() {
    let src = Project::new("import-messy-src", &[]);
    messy_folder(&src.root);
    let p = Project::new("import-messy", &[]);
    let r = import_folder(&p.config(), &src.root).unwrap();
    eprintln!("{r}");
    assert_eq!(r.imported.get(&Class::Cat), Some(&6));
    assert_eq!(r.imported.get(&Class::Dog), Some(&5));
    assert_eq!(r.renamed.len(), 1, "{r}");
    assert!(
        r.renamed[0].contains("is taken, stored as"),
        "{}",
        r.renamed[0]
    );
    assert_eq!(r.rejected.get(&Reason::NotImage), Some(&2), "{r}");
    assert_eq!(
        (r.duplicates, r.with_breed, r.labels_csv_conflicts),
        (1, 1, 1),
        "{r}"
    );
    assert_eq!(r.ignored_dirs, vec!["birds".to_string()]);
    // The duplicate is named with the file it duplicates.
    assert_eq!(r.duplicate_files.len(), 1, "{r}");
    let first = photos("cat", 500, 1)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let dup = &r.duplicate_files[0];
    assert!(
        dup.contains("copy of first.jpg = ") && dup.ends_with(&first),
        "{dup}"
    );
    // Every labels.csv line not used as written is named with its line and why.
    let notes = &r.labels_csv_notes;
    assert_eq!(notes.len(), 6, "{notes:#?}");
    assert_eq!(notes[0], "line 4: no id (ignored)");
    assert!(notes[1].starts_with("line 6: id ") && notes[1].contains("again (line 2)"));
    assert_eq!(
        notes[2],
        "line 7: species \"bird\" is not cat or dog (ignored)"
    );
    assert!(
        notes[3].starts_with("id \"bird1\" matches no file"),
        "{}",
        notes[3]
    );
    assert!(
        notes[4].starts_with("id \"ghost\" matches no file"),
        "{}",
        notes[4]
    );
    assert!(notes[5].contains("says dog, but") && notes[5].contains("cat folder (folder kept)"));
    assert!(
        r.to_string()
            .contains("labels.csv lines not used as written (6):"),
        "{r}"
    );
    // Every rejected file is listed in data/rejected.csv with its reason.
    let mut listed = csv::Reader::from_path(p.data_dir().join("rejected.csv")).unwrap();
    let mut rows: Vec<(String, String)> = listed
        .records()
        .map(|row| {
            let row = row.unwrap();
            assert_eq!(&row[0], "cat");
            let name = Path::new(&row[1]).file_name().unwrap().to_string_lossy();
            (name.into_owned(), row[2].to_string())
        })
        .collect();
    rows.sort();
    let not_image = |n: &str| (n.to_string(), "not-image".to_string());
    assert_eq!(rows, [not_image("half.jpg"), not_image("page.jpg")]);
    assert_eq!(r.hidden_files, ["cat/.DS_Store", "dogs/._fork.jpg"], "{r}");
    assert!(
        r.to_string()
            .contains("ignored hidden files (2): cat/.DS_Store, dogs/._fork.jpg"),
        "{r}"
    );
    let m = check_consistent(&p);
    assert!(
        m.records.iter().any(|x| x.id == file_id("odd name!")),
        "unsafe names are hashed"
    );
    assert!(m
        .records
        .iter()
        .any(|x| x.breed_name.as_deref() == Some("Bengal")));
    // Leftovers of an interrupted write: a temp file and a complete but unrecorded file.
    let raw_cat = p.data_dir().join("raw").join("cat");
    std::fs::copy(&photos("cat", 520, 1)[0], raw_cat.join("unrecorded.jpg")).unwrap();
    std::fs::write(raw_cat.join(".partial.jpg.1.0.tmp"), b"half").unwrap();
    let again = import_folder(&p.config(), &src.root).unwrap();
    assert_eq!(
        (again.imported_total(), again.already_present),
        (0, 11),
        "{again}"
    );
    let hk = again.housekeeping;
    assert_eq!((hk.temp_files, hk.orphans), (1, 1), "{again}");
    assert_eq!(check_consistent(&p).records.len(), 11);
    // With the bad files gone, the next import's list of refused files is empty.
    for bad in ["half.jpg", "page.jpg"] {
        std::fs::remove_file(src.root.join("cat").join(bad)).unwrap();
    }
    let clean = import_folder(&p.config(), &src.root).unwrap();
    assert!(clean.rejections.is_empty(), "{clean}");
    let mut listed = csv::Reader::from_path(p.data_dir().join("rejected.csv")).unwrap();
    let header: Vec<String> = listed.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, ["label", "item", "reason", "detail"]);
    assert_eq!(listed.records().count(), 0);
}

#[test]
fn the_same_seed_gives_the_same_split_in_any_data_folder() {
    let src = Project::new("import-seed-src", &[]);
    for class in ["cat", "dog"] {
        std::fs::create_dir_all(src.root.join(class)).unwrap();
        for f in photos(class, 600, 20) {
            std::fs::copy(&f, src.root.join(class).join(f.file_name().unwrap())).unwrap();
        }
    }
    let splits = |name: &str, seed: u64| {
        let p = Project::new(name, &[("data.seed", json!(seed))]);
        import_folder(&p.config(), &src.root).unwrap();
        let m = check_consistent(&p);
        m.records
            .iter()
            .map(|r| (r.id.clone(), r.split))
            .collect::<Vec<_>>()
    };
    let a = splits("import-seed-a", 7);
    assert_eq!(a, splits("import-seed-b", 7));
    assert_ne!(a, splits("import-seed-c", 8));
}

/// `photo` shrunk to `scale` of its size and saved as a JPEG of `quality`: a near-copy.
fn near_copy(photo: &Path, scale: f32, quality: u8, out: &Path) {
    let img = image::open(photo).unwrap().to_rgb8();
    let (w, h) = (img.width() as f32 * scale, img.height() as f32 * scale);
    let filter = image::imageops::FilterType::Triangle;
    let small = image::imageops::resize(&img, w as u32, h as u32, filter);
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode_image(&small)
        .unwrap();
    std::fs::write(out, bytes).unwrap();
}

/// A folder with a cat photo and four near-copies of it, other photos of both classes,
/// one photo saved under both `cat/` and `dog/`, and one cat photo whose shrunk,
/// re-encoded copy was filed under `dog/`.
fn folder_with_copies(root: &Path) {
    for class in ["cat", "dog"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for f in photos(class, 700, 12) {
            std::fs::copy(&f, root.join(class).join(f.file_name().unwrap())).unwrap();
        }
    }
    let orig = &photos("cat", 730, 1)[0];
    std::fs::copy(orig, root.join("cat/orig.jpg")).unwrap();
    for (i, (scale, q)) in [(0.9, 85), (0.7, 60), (0.5, 40), (0.8, 95)]
        .iter()
        .enumerate()
    {
        near_copy(orig, *scale, *q, &root.join(format!("cat/copy{i}.jpg")));
    }
    let both = &photos("cat", 740, 1)[0];
    std::fs::copy(both, root.join("cat/x.jpg")).unwrap();
    std::fs::copy(both, root.join("dog/y.jpg")).unwrap();
    let filed_twice = &photos("cat", 750, 1)[0];
    std::fs::copy(filed_twice, root.join("cat/w.jpg")).unwrap();
    near_copy(filed_twice, 0.6, 70, &root.join("dog/z.jpg"));
}

#[test]
fn near_copies_share_a_split_and_a_photo_under_both_labels_is_kept_out() {
    let src = Project::new("import-copies-src", &[]);
    folder_with_copies(&src.root);
    let p = Project::new("import-copies", &[]);
    let r = import_folder(&p.config(), &src.root).unwrap();
    eprintln!("{r}");
    assert_eq!(r.imported_total(), 12 + 12 + 5 + 2 + 2, "{r}");
    let m = check_consistent(&p);
    let row = |id: &str| m.records.iter().find(|x| x.id == id).unwrap();
    let family = ["orig", "copy0", "copy1", "copy2", "copy3"];
    let split = row("orig").split;
    for id in family {
        assert_eq!(row(id).split, split, "{id} left the split of its original");
        assert!(row(id).phash.is_some(), "{id}");
    }
    // The same bytes under both labels, and a near-copy under the other label: each a
    // conflict naming both files, every row kept out.
    assert_eq!(r.label_conflicts.len(), 2, "{r}");
    let texts: Vec<String> = r.label_conflicts.iter().map(|c| c.to_string()).collect();
    let named = |a: &str, b: &str| texts.iter().find(|t| t.contains(a) && t.contains(b));
    let same = named("cat/x.jpg", "dog/y.jpg").expect("the x/y conflict");
    assert!(same.starts_with("same bytes as "), "{same}");
    let near = named("cat/w.jpg", "dog/z.jpg").expect("the w/z conflict");
    assert!(near.starts_with("same photo (near-copies) as "), "{near}");
    for id in ["x", "y", "w", "z"] {
        assert_eq!(row(id).excluded, Some(Exclusion::LabelConflict), "{id}");
    }
    assert!(SplitName::ALL.iter().all(|s| m
        .split(*s)
        .iter()
        .all(|x| !["x", "y", "w", "z"].contains(&x.id.as_str()))));
    let summary = p.run(&["summary"], &[]);
    let (out, err) = text(&summary);
    assert!(summary.status.success(), "{err}");
    assert!(out.contains("0 pairs across splits"), "{out}");
    assert!(out.contains("label conflicts (2"), "{out}");
    assert!(out.contains("raw/cat/orig.jpg"), "{out}");
    // The data notebook's view of the same: the table and the photos of each group.
    let cfg = p.config();
    let table = lab5::views::near_copies_table(&cfg).unwrap().0;
    let value = |measure: &str| {
        let names = table.column("measure").unwrap().str().unwrap();
        let row = (0..names.len())
            .position(|i| names.get(i) == Some(measure))
            .unwrap();
        table
            .column("value")
            .unwrap()
            .u64()
            .unwrap()
            .get(row)
            .unwrap()
    };
    assert_eq!(value("pairs across splits"), 0, "{table}");
    assert_eq!(value("label conflicts (kept out)"), 2, "{table}");
    assert!(
        value("near-copy groups") >= 3,
        "orig + copies, x/y, w/z: {table}"
    );
    let grid = lab5::views::near_copies_grid(&cfg, 3, 5).unwrap();
    assert!(matches!(grid, lab5::views::Shown::Figure(_)), "{grid:?}");
    // Resolved: the dog copy removed from the source and the data set; the next import
    // lifts the exclusion of the cat copy.
    for gone in ["dog/y.jpg", "dog/z.jpg"] {
        std::fs::remove_file(src.root.join(gone)).unwrap();
        std::fs::remove_file(p.data_dir().join("raw").join(gone)).unwrap();
    }
    let again = import_folder(&p.config(), &src.root).unwrap();
    assert!(again.label_conflicts.is_empty(), "{again}");
    let m = p.manifest();
    for id in ["x", "w"] {
        let kept = m.records.iter().find(|x| x.id == id).unwrap();
        assert_eq!(kept.excluded, None, "{id}");
    }
}

/// A manifest written before perceptual hashes (no `phash`, no `excluded_reason`) with a
/// pair of near-copies in two splits: the next import adds the hashes and moves one of
/// the pair, and nothing else.
#[test]
fn an_older_manifest_gets_its_hashes_and_only_near_copies_move() {
    let src = Project::new("import-upgrade-src", &[]);
    folder_with_copies(&src.root);
    std::fs::remove_file(src.root.join("dog/y.jpg")).unwrap();
    let p = Project::new("import-upgrade", &[]);
    import_folder(&p.config(), &src.root).unwrap();
    let mut m = p.manifest();
    let i = m.records.iter().position(|x| x.id == "copy2").unwrap();
    let other = SplitName::ALL
        .into_iter()
        .find(|s| Some(*s) != m.records[i].split);
    m.records[i].split = other;
    let before = m.clone();
    let path = lab5::data::Manifest::path_in(&p.data_dir());
    m.save(&path).unwrap();
    let csv = std::fs::read_to_string(&path).unwrap();
    let old: String = csv
        .lines()
        .map(|l| l.rsplitn(3, ',').nth(2).unwrap().to_string() + "\n")
        .collect();
    assert!(old.starts_with("id,") && old.lines().next().unwrap().ends_with(",excluded"));
    std::fs::write(&path, old).unwrap();
    let summary = p.run(&["summary"], &[]);
    assert!(
        text(&summary).0.contains("have no perceptual hash yet"),
        "{}",
        text(&summary).0
    );
    let r = import_folder(&p.config(), &src.root).unwrap();
    assert_eq!(
        (r.hashes_added, r.near_copies_moved),
        (before.records.len(), 1),
        "{r}"
    );
    let after = check_consistent(&p);
    let moved: Vec<&str> = after
        .records
        .iter()
        .zip(&before.records)
        .filter(|(a, b)| a.split != b.split)
        .map(|(a, _)| a.id.as_str())
        .collect();
    assert_eq!(moved, vec!["copy2"], "only the odd one out moves");
}

fn encode(img: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// `jpeg` with an EXIF APP1 segment holding only the Orientation tag (6: the viewer turns
/// the stored image a quarter clockwise, as phones store photos taken upright).
fn sideways(jpeg: &[u8]) -> Vec<u8> {
    let mut app1 = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01".to_vec();
    app1.extend([0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06]);
    app1.extend([0, 0, 0, 0, 0, 0]);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

/// A PNG of a few bytes whose header declares `w` x `h` pixels.
fn declared_png(w: u32, h: u32) -> Vec<u8> {
    let mut png = encode(&image::RgbImage::new(8, 8), image::ImageFormat::Png);
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    // The IHDR chunk's CRC, over its type and data.
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// Field cases 04, 08 and 09 made here: a photo stored sideways with EXIF orientation 6,
/// a bomb header, a 1x1 pixel, strips, a GIF, a HEIC file, a broken link and a folder
/// inside a class folder. The photo is recorded as
/// seen; every other file is refused at the door with the limit or format named, and the
/// label check's decoder (the cache) reads every accepted photo.
#[test]
fn odd_images_are_refused_at_the_door_and_a_sideways_photo_is_recorded_as_seen() {
    let src = Project::new("import-odd-src", &[]);
    let (cat, dog) = (src.root.join("cat"), src.root.join("dog"));
    std::fs::create_dir_all(&cat).unwrap();
    std::fs::create_dir_all(&dog).unwrap();
    let photo = image::open(&photos("dog", 750, 1)[0]).unwrap().to_rgb8();
    let (w, h) = photo.dimensions();
    std::fs::write(
        dog.join("phone.jpg"),
        sideways(&encode(&photo, image::ImageFormat::Jpeg)),
    )
    .unwrap();
    std::fs::write(cat.join("bomb.png"), declared_png(20_000, 4_500)).unwrap();
    std::fs::write(dog.join("huge.png"), declared_png(100_000, 100_000)).unwrap();
    let png = |w: u32, h: u32| encode(&image::RgbImage::new(w, h), image::ImageFormat::Png);
    std::fs::write(cat.join("pixel.png"), png(1, 1)).unwrap();
    std::fs::write(cat.join("strip.png"), png(3000, 40)).unwrap();
    std::fs::write(dog.join("anim.gif"), b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap();
    std::fs::write(
        dog.join("iphone.heic"),
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    )
    .unwrap();
    for f in photos("cat", 760, 2) {
        std::fs::copy(&f, cat.join(f.file_name().unwrap())).unwrap();
    }
    std::os::unix::fs::symlink(src.root.join("gone.jpg"), dog.join("link.jpg")).unwrap();
    std::fs::create_dir_all(cat.join("more")).unwrap();
    let p = Project::new("import-odd", &[]);
    let r = import_folder(&p.config(), &src.root).unwrap();
    eprintln!("{r}");
    assert_eq!(r.imported_total(), 3, "{r}");
    assert_eq!(r.rejected.get(&Reason::OutsideLimits), Some(&4), "{r}");
    assert_eq!(r.rejected.get(&Reason::Unsupported), Some(&2), "{r}");
    assert_eq!(r.rejected.get(&Reason::Unreadable), Some(&1), "{r}");
    assert_eq!(r.ignored_dirs, vec!["cat/more".to_string()], "{r}");
    let shown = r.to_string();
    for needle in [
        "images.max_pixels",
        "images.min_side",
        "images.max_aspect_ratio",
        "GIF",
        "HEIC",
        "broken link",
    ] {
        assert!(shown.contains(needle), "{needle}: {shown}");
    }
    let m = check_consistent(&p);
    let phone = m.records.iter().find(|x| x.id == "phone").unwrap();
    assert_eq!(
        (phone.width, phone.height),
        (h, w),
        "recorded as seen, not as stored"
    );
    let cfg = p.config();
    let rows: Vec<_> = m.records.iter().collect();
    for r in rows {
        let t = lab5::data::cache::preprocess_file(&cfg.data_dir().join(&r.path), 32, 40);
        assert!(t.is_ok(), "{}: accepted at the door, readable later", r.id);
    }
}
