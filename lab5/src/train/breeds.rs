//! Test accuracy on breeds the model has never seen. With `data.unseen_breeds` or
//! `data.unseen_breed_share` set, every photo of the held-out breeds is in the test split
//! and none in train or val ([`crate::data::holdout`]); after training, the test photos are
//! scored in two groups: photos of the held-out breeds (*unseen*) and all others (*seen*:
//! breeds the training split also has, and photos without a breed), plus each held-out
//! breed on its own. The result is the optional `unseen_breeds` field of `metrics.json`.
//!
//! [`per_breed`] scores every breed of the test split the same way (the comparison's
//! per-breed table, [`crate::compare`]), photos without a breed as one more group per
//! class ([`NO_BREED`]).
//!
//! A prediction is right when `p_dog > 0.5` agrees with the label, as in
//! [`crate::train::metrics`].

use super::metrics::{wilson_interval, THRESHOLD};
use super::record::{Scored, PREDICTIONS_FILE};
use crate::config::Config;
use crate::data::{holdout, Class, Manifest, SplitName};
use crate::util::csv_io;
use anyhow::Result;
use polars::prelude::{df, DataFrame};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

/// How many photos of a group were classified right.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupAccuracy {
    /// Test photos in the group.
    pub n: usize,
    /// Of them, classified right.
    pub correct: usize,
    /// `correct / n`; `None` when the group is empty.
    pub accuracy: Option<f64>,
}

impl GroupAccuracy {
    fn add(&mut self, right: bool) {
        self.n += 1;
        self.correct += usize::from(right);
        self.accuracy = Some(self.correct as f64 / self.n as f64);
    }

    /// Photos classified wrong: for a breed, photos called the other species.
    pub fn mistakes(&self) -> usize {
        self.n - self.correct
    }

    /// The 95 % Wilson interval of the accuracy ([`wilson_interval`]), fractions in
    /// `0..=1`; `(0, 1)` for an empty group.
    pub fn interval(&self) -> (f64, f64) {
        wilson_interval(self.correct as u64, self.n as u64)
    }

    /// `86.7 % [70.3, 94.7]`: the accuracy with its 95 % Wilson interval in points; empty
    /// for an empty group.
    pub fn shown(&self) -> String {
        let Some(a) = self.accuracy else {
            return String::new();
        };
        let (lo, hi) = self.interval();
        format!("{:.1} % [{:.1}, {:.1}]", 100.0 * a, 100.0 * lo, 100.0 * hi)
    }
}

/// The group of photos without a breed in [`per_breed`] (one per class).
pub const NO_BREED: &str = "(no breed)";

/// The breed (as in the manifest) and class of every photo of `manifest` that has a
/// breed, by id.
pub(crate) fn breeds_by_id(manifest: &Manifest) -> HashMap<String, (String, Class)> {
    manifest
        .records
        .iter()
        .filter_map(|r| Some((r.id.clone(), (r.breed_name.clone()?, r.label))))
        .collect()
}

/// Test accuracy per breed: the test rows of `scored` (a run's `predictions.csv`)
/// grouped by the breed `breed_of` gives their id, photos without one in a [`NO_BREED`]
/// group of their class. One entry per (breed, class of the photos' labels), sorted by
/// class, then breed name; the counts add up to the test rows.
pub(crate) fn per_breed(
    breed_of: &HashMap<String, (String, Class)>,
    scored: &[Scored],
) -> Vec<BreedAccuracy> {
    let mut groups: BTreeMap<(Class, String), GroupAccuracy> = BTreeMap::new();
    for s in scored.iter().filter(|s| s.split == SplitName::Test) {
        let breed = breed_of.get(&s.id).map_or(NO_BREED, |b| b.0.as_str());
        let right = (s.p_dog > THRESHOLD) == (s.label == Class::Dog);
        groups
            .entry((s.label, breed.to_string()))
            .or_default()
            .add(right);
    }
    groups
        .into_iter()
        .map(|((class, breed), score)| BreedAccuracy {
            breed,
            class,
            score,
        })
        .collect()
}

/// Test accuracy on one held-out breed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreedAccuracy {
    /// Breed name, as in the manifest.
    pub breed: String,
    /// The class of its photos.
    pub class: Class,
    /// Its test photos and how many were classified right.
    #[serde(flatten)]
    pub score: GroupAccuracy,
}

/// Test accuracy on seen and on unseen breeds (`metrics.json` → `unseen_breeds`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreedReport {
    /// The breeds held out of train and val.
    pub held_out: Vec<String>,
    /// Test photos of any other breed or without a breed.
    pub seen: GroupAccuracy,
    /// Test photos of the held-out breeds.
    pub unseen: GroupAccuracy,
    /// Unseen-breed test photos per class (cat, dog).
    pub unseen_by_class: BTreeMap<Class, GroupAccuracy>,
    /// Each held-out breed, in name order (an excluded photo is not scored).
    pub breeds: Vec<BreedAccuracy>,
}

/// The held-out breeds of a data set and the breed of each photo.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holdout {
    held: BTreeSet<String>,
    breed_of: HashMap<String, (String, Class)>,
}

impl Holdout {
    /// The breeds held out of `manifest`'s split, `held`.
    pub(crate) fn new(manifest: &Manifest, held: BTreeSet<String>) -> Self {
        let breed_of = breeds_by_id(manifest);
        Holdout { held, breed_of }
    }

    /// The held-out breeds of `cfg`'s data set; fails (before any training) when the
    /// manifest's split does not hold out the breeds the config asks for, or lets
    /// near-copies of a photo into two splits.
    pub(crate) fn of(cfg: &Config) -> Result<Self> {
        let m = super::run::load_manifest(cfg)?;
        let held = holdout::current(cfg, &m)?;
        crate::data::phash::check_split(&m, cfg.data.near_duplicate_distance)?;
        Ok(Self::new(&m, held))
    }

    /// True when no breed is held out.
    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The report of test predictions (`ids`, true `labels` 0 cat / 1 dog, `p_dog`, of
    /// equal length); `None` when no breed is held out.
    pub(crate) fn report(
        &self,
        ids: &[String],
        labels: &[i64],
        p_dog: &[f64],
    ) -> Option<BreedReport> {
        if self.is_empty() {
            return None;
        }
        let mut r = self.empty_report();
        for ((id, y), p) in ids.iter().zip(labels).zip(p_dog) {
            let right = (*p > THRESHOLD) == (*y == Class::Dog.index());
            match self.breed_of.get(id).filter(|(b, _)| self.held.contains(b)) {
                Some((breed, class)) => r.add_unseen(breed, *class, right),
                None => r.seen.add(right),
            }
        }
        Some(r)
    }

    /// The report of the test rows of a run's `predictions.csv` in `run_dir`; `None`
    /// when no breed is held out.
    pub(crate) fn report_run(&self, run_dir: &Path) -> Result<Option<BreedReport>> {
        if self.is_empty() {
            return Ok(None);
        }
        let (ids, labels, p_dog) = test_predictions(&run_dir.join(PREDICTIONS_FILE))?;
        Ok(self.report(&ids, &labels, &p_dog))
    }

    fn empty_report(&self) -> BreedReport {
        let mut class_of: BTreeMap<&String, Class> = BTreeMap::new();
        for (breed, class) in self.breed_of.values() {
            class_of.entry(breed).or_insert(*class);
        }
        let breed = |b: &String| BreedAccuracy {
            breed: b.clone(),
            class: class_of.get(b).copied().unwrap_or(Class::Cat),
            score: GroupAccuracy::default(),
        };
        BreedReport {
            held_out: self.held.iter().cloned().collect(),
            seen: GroupAccuracy::default(),
            unseen: GroupAccuracy::default(),
            unseen_by_class: Class::ALL.map(|c| (c, GroupAccuracy::default())).into(),
            breeds: self.held.iter().map(breed).collect(),
        }
    }
}

impl BreedReport {
    fn add_unseen(&mut self, breed: &str, class: Class, right: bool) {
        self.unseen.add(right);
        self.unseen_by_class.entry(class).or_default().add(right);
        if let Some(b) = self.breeds.iter_mut().find(|b| b.breed == breed) {
            b.score.add(right);
        }
    }
}

impl BreedReport {
    /// One row per group: seen breeds, unseen breeds, unseen per class, then each
    /// held-out breed; columns `group`, `class`, `photos`, `right`, `accuracy` (%, empty
    /// for a group without photos).
    pub(crate) fn to_frame(&self) -> Result<DataFrame> {
        let mut rows: Vec<(String, String, &GroupAccuracy)> = vec![
            ("seen breeds".into(), "both".into(), &self.seen),
            ("unseen breeds".into(), "both".into(), &self.unseen),
        ];
        for (class, g) in &self.unseen_by_class {
            rows.push((format!("unseen {class}s"), class.name().into(), g));
        }
        for b in &self.breeds {
            rows.push((
                format!("unseen: {}", b.breed),
                b.class.name().into(),
                &b.score,
            ));
        }
        let text = |f: fn(&(String, String, &GroupAccuracy)) -> String| -> Vec<String> {
            rows.iter().map(f).collect()
        };
        let count = |f: fn(&GroupAccuracy) -> usize| -> Vec<u64> {
            rows.iter().map(|r| f(r.2) as u64).collect()
        };
        Ok(df!(
            "group" => text(|r| r.0.clone()),
            "class" => text(|r| r.1.clone()),
            "photos" => count(|g| g.n),
            "right" => count(|g| g.correct),
            "accuracy" => text(|r| r.2.accuracy.map(|a| format!("{:.1} %", 100.0 * a)).unwrap_or_default()),
        )?)
    }
}

/// Ids, labels (0 cat, 1 dog) and `p_dog` of the test rows of a `predictions.csv`.
fn test_predictions(path: &Path) -> Result<(Vec<String>, Vec<i64>, Vec<f64>)> {
    let rows: Vec<Scored> = csv_io::read_rows(path)?;
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for r in rows.into_iter().filter(|r| r.split == SplitName::Test) {
        out.0.push(r.id);
        out.1.push(r.label.index());
        out.2.push(r.p_dog);
    }
    Ok(out)
}

fn pct(g: &GroupAccuracy) -> String {
    match g.accuracy {
        Some(a) => format!("{:.1} % of {}", 100.0 * a, g.n),
        None => "no photo".to_string(),
    }
}

impl fmt::Display for BreedReport {
    /// Seen vs unseen test accuracy, per class, then one line per held-out breed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "test on seen breeds {}; on unseen breeds {}",
            pct(&self.seen),
            pct(&self.unseen)
        )?;
        for (class, g) in &self.unseen_by_class {
            write!(f, "; unseen {class}s {}", pct(g))?;
        }
        for b in &self.breeds {
            write!(f, "\n  unseen {} ({}): {}", b.breed, b.class, pct(&b.score))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Origin, Record};

    fn rec(id: &str, label: Class, breed: Option<&str>) -> Record {
        Record {
            id: id.into(),
            label,
            breed_id: None,
            breed_name: breed.map(String::from),
            source: Origin::Folder,
            url: String::new(),
            path: format!("raw/{label}/{id}.jpg").into(),
            width: 1,
            height: 1,
            bytes: 1,
            sha256: String::new(),
            split: Some(SplitName::Test),
            excluded: None,
            phash: None,
        }
    }

    fn holdout() -> Holdout {
        let records = vec![
            rec("a", Class::Cat, Some("Abyssinian")),
            rec("b", Class::Cat, Some("Abyssinian")),
            rec("c", Class::Cat, Some("Curl")),
            rec("d", Class::Dog, Some("Pug")),
            rec("e", Class::Dog, None),
            rec("f", Class::Dog, Some("Beagle")),
        ];
        let held = ["Abyssinian", "Pug", "Akita"].map(String::from).into();
        Holdout::new(&Manifest { records }, held)
    }

    #[test]
    fn test_photos_are_scored_by_seen_and_unseen_breed() {
        let ids: Vec<String> = ["a", "b", "c", "d", "e", "f"].map(String::from).into();
        let labels = [0, 0, 0, 1, 1, 1];
        let p_dog = [0.1, 0.9, 0.2, 0.4, 0.8, 0.3];
        let r = holdout().report(&ids, &labels, &p_dog).unwrap();
        let g = |n, correct| GroupAccuracy {
            n,
            correct,
            accuracy: Some(correct as f64 / n as f64),
        };
        assert_eq!(r.held_out, ["Abyssinian", "Akita", "Pug"]);
        assert_eq!((r.unseen.clone(), r.seen.clone()), (g(3, 1), g(3, 2)));
        assert_eq!(r.unseen_by_class[&Class::Cat], g(2, 1));
        assert_eq!(r.unseen_by_class[&Class::Dog].n, 1);
        let akita = &r.breeds[1];
        assert_eq!(
            (akita.breed.as_str(), akita.score.accuracy),
            ("Akita", None)
        );
        let text = r.to_string();
        assert!(
            text.contains("seen breeds 66.7 % of 3; on unseen breeds 33.3 % of 3"),
            "{text}"
        );
        assert!(
            text.contains("unseen Abyssinian (cat): 50.0 % of 2"),
            "{text}"
        );
        let back: BreedReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn every_test_photo_is_scored_under_its_breed_or_no_breed() {
        let breed_of = holdout().breed_of;
        let row = |id: &str, split, label, p_dog| Scored {
            id: id.into(),
            split,
            label,
            p_dog,
        };
        use Class::{Cat, Dog};
        use SplitName::{Test, Train};
        let scored = [
            row("a", Test, Cat, 0.9),  // Abyssinian, wrong
            row("b", Test, Cat, 0.6),  // Abyssinian, wrong
            row("c", Test, Cat, 0.2),  // Curl, right
            row("d", Test, Dog, 0.8),  // Pug, right
            row("e", Test, Dog, 0.1),  // no breed, wrong
            row("f", Train, Dog, 0.9), // another split
            row("z", Test, Cat, 0.3),  // not in the manifest: no breed, right
        ];
        let groups = per_breed(&breed_of, &scored);
        let names: Vec<(&str, Class, usize, usize)> = groups
            .iter()
            .map(|g| (g.breed.as_str(), g.class, g.score.n, g.score.correct))
            .collect();
        assert_eq!(
            names,
            [
                ("(no breed)", Cat, 1, 1),
                ("Abyssinian", Cat, 2, 0),
                ("Curl", Cat, 1, 1),
                ("(no breed)", Dog, 1, 0),
                ("Pug", Dog, 1, 1),
            ]
        );
        let total: usize = groups.iter().map(|g| g.score.n).sum();
        assert_eq!(total, 6);
        let aby = &groups[1].score;
        assert_eq!((aby.accuracy, aby.mistakes()), (Some(0.0), 2));
        // Wilson for 0 of 2: (0, z^2 / (2 + z^2)) = (0, 0.6576).
        assert!(
            (aby.interval().1 - 0.6576).abs() < 1e-4,
            "{:?}",
            aby.interval()
        );
        assert_eq!(aby.shown(), "0.0 % [0.0, 65.8]");
        assert_eq!(GroupAccuracy::default().shown(), "");
    }

    #[test]
    fn nothing_held_out_gives_no_report() {
        let h = Holdout::new(&Manifest::default(), BTreeSet::new());
        assert!(h.report(&["a".into()], &[0], &[0.2]).is_none());
        assert!(h.report_run(Path::new("/nonexistent")).unwrap().is_none());
    }

    #[test]
    fn only_test_rows_of_predictions_csv_are_read() {
        let dir = std::env::temp_dir().join(format!("lab5-breeds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = "id,split,label,p_dog\na,train,cat,0.9\na,test,cat,0.1\nd,test,dog,0.7\n";
        std::fs::write(dir.join(PREDICTIONS_FILE), csv).unwrap();
        let r = holdout().report_run(&dir).unwrap().unwrap();
        assert_eq!((r.unseen.n, r.unseen.correct, r.seen.n), (2, 2, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
