//! Breeds kept out of training, to measure how a model does on breeds it has never seen
//! (`data.unseen_breeds`, `data.unseen_breed_share`): which breeds those are for a
//! manifest, the split that honours them ([`crate::data::split::assign_holding_out`]), and
//! `data/unseen_breeds.json`, the record of the breeds the manifest's split holds out.
//!
//! The manifest keeps its columns: a test photo is an unseen-breed photo when its
//! `breed_name` is in the record. The record is what makes a change of the two keys
//! re-split the data set on the next import or collect (the sticky split alone would keep
//! the photos of a breed no longer held out in the test split), and what lets training
//! refuse a split that no longer matches the config. Without held-out breeds there is no
//! record and the split is exactly the plain one.

use crate::config::{self, Config};
use crate::data::phash;
use crate::data::split::{self, order_key};
use crate::data::{Class, Manifest, SplitName};
use crate::util::write_atomic;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// File in the data folder naming the breeds the manifest's split holds out.
pub(crate) const RECORD_FILE: &str = "unseen_breeds.json";

/// Breed names per class, as the manifest spells them.
type Breeds<'a> = BTreeMap<Class, BTreeSet<&'a str>>;

/// The held-out breeds of `data` among the breeds of `m`: each name of
/// `data.unseen_breeds` (matched ignoring case and surrounding spaces, returned as the
/// manifest spells it), and for each class [`draw_count`] of its breeds ordered by a keyed
/// hash of (`data.seed`, name). Fails when a name is no breed of the manifest, listing the
/// breeds there are.
pub(crate) fn resolve(m: &Manifest, data: &config::Data) -> Result<BTreeSet<String>> {
    let breeds = breeds_by_class(m);
    let mut held = named(&breeds, &data.unseen_breeds)?;
    for names in breeds.values() {
        held.extend(drawn(names, data.unseen_breed_share, data.seed));
    }
    Ok(held)
}

/// How many of a class's `n` breeds a share holds out: `share * n` rounded, at least one
/// when `share > 0`, and never all of them (so 0 when the class has a single breed).
pub(crate) fn draw_count(n: usize, share: f64) -> usize {
    if share <= 0.0 || n < 2 {
        return 0;
    }
    ((share * n as f64).round() as usize).clamp(1, n - 1)
}

fn breeds_by_class(m: &Manifest) -> Breeds<'_> {
    let mut out = Breeds::new();
    for r in &m.records {
        if let Some(b) = &r.breed_name {
            out.entry(r.label).or_default().insert(b.as_str());
        }
    }
    out
}

fn named(breeds: &Breeds, names: &[String]) -> Result<BTreeSet<String>> {
    let key = |s: &str| s.trim().to_lowercase();
    let by_key: BTreeMap<String, &str> = breeds.values().flatten().map(|b| (key(b), *b)).collect();
    let (found, unknown): (Vec<_>, Vec<_>) = names
        .iter()
        .map(|n| by_key.get(&key(n)).ok_or(n))
        .partition(Result::is_ok);
    if !unknown.is_empty() {
        let unknown: Vec<&String> = unknown.into_iter().filter_map(Result::err).collect();
        bail!(unknown_message(&unknown, breeds));
    }
    Ok(found.into_iter().flatten().map(|b| b.to_string()).collect())
}

fn unknown_message(unknown: &[&String], breeds: &Breeds) -> String {
    let listed: Vec<String> = breeds
        .iter()
        .map(|(c, names)| {
            let names: Vec<&str> = names.iter().copied().collect();
            format!("{c} ({}): {}", names.len(), names.join(", "))
        })
        .collect();
    let there = match listed.is_empty() {
        true => "the data set has no breed information".to_string(),
        false => format!("its breeds are {}", listed.join("; ")),
    };
    format!(
        "config key `data.unseen_breeds`: {unknown:?} not a breed of the data set (the \
         manifest's breed_name); {there}. Fix the names or remove them"
    )
}

fn drawn(names: &BTreeSet<&str>, share: f64, seed: u64) -> Vec<String> {
    let mut order: Vec<(String, &str)> = names
        .iter()
        .map(|b| (order_key(seed, &format!("breed:{b}")), *b))
        .collect();
    order.sort();
    let k = draw_count(names.len(), share);
    order.into_iter().take(k).map(|(_, b)| b.into()).collect()
}

/// `<data_dir>/unseen_breeds.json`.
pub fn record_path(data_dir: &Path) -> PathBuf {
    data_dir.join(RECORD_FILE)
}

/// The breeds the split of the manifest in `data_dir` holds out (none without a record).
pub(crate) fn recorded(data_dir: &Path) -> Result<BTreeSet<String>> {
    let path = record_path(data_dir);
    if !path.is_file() {
        return Ok(BTreeSet::new());
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let v: Record = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is damaged: delete it and run `lab5 import` (or `lab5 collect`) to split again",
            path.display()
        )
    })?;
    Ok(v.unseen_breeds)
}

/// Contents of [`RECORD_FILE`].
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    unseen_breeds: BTreeSet<String>,
}

/// What [`assign`] did, and what to record once the manifest is saved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assigned {
    /// Rows that got a split or changed it.
    pub newly_split: usize,
    /// The breeds the split now holds out.
    pub held: BTreeSet<String>,
    /// True when every row was split afresh because the held-out breeds changed.
    pub resplit: bool,
    /// Rows that had a split and moved to the split of their near-copies.
    pub near_copies_moved: usize,
}

impl Assigned {
    /// Records the held-out breeds next to the saved manifest (removes the record when
    /// there are none). Call it after the manifest is saved.
    pub(crate) fn commit(&self, data_dir: &Path) -> Result<()> {
        let path = record_path(data_dir);
        if self.held.is_empty() {
            return match path.is_file() {
                true => std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display())),
                false => Ok(()),
            };
        }
        let rec = Record {
            unseen_breeds: self.held.clone(),
        };
        write_atomic(&path, serde_json::to_string_pretty(&rec)?.as_bytes())
    }
}

/// Gives every row of `m` a split with the held-out breeds of `cfg` in the test split
/// (see [`split::assign_holding_out`]). When those breeds differ from the ones recorded in
/// `data_dir`, every row is split afresh; otherwise rows keep their split and only new
/// rows get one. Then each group of near-copies (`data.near_duplicate_distance`) is put
/// into one split ([`split::unite_groups`]). Fails, changing nothing, on an unknown breed
/// name.
pub(crate) fn assign(cfg: &Config, m: &mut Manifest, data_dir: &Path) -> Result<Assigned> {
    let held = resolve(m, &cfg.data)?;
    let resplit = held != recorded(data_dir)?;
    let (ratios, seed) = (&cfg.data.split, cfg.data.seed);
    if resplit {
        m.records.iter_mut().for_each(|r| r.split = None);
    }
    let had_split: Vec<bool> = m.records.iter().map(|r| r.split.is_some()).collect();
    let newly_split = split::assign_holding_out(m, ratios, seed, &held);
    let groups = phash::groups(m, cfg.data.near_duplicate_distance);
    let near_copies_moved = split::unite_groups(m, &groups, seed, &held, &had_split);
    Ok(Assigned {
        newly_split,
        held,
        resplit,
        near_copies_moved,
    })
}

/// The breeds held out of the split of `m` (the manifest in `cfg`'s data folder), after
/// checking that they are the ones `cfg` asks for and that no photo of them is in train
/// or val; otherwise says to split again.
pub(crate) fn current(cfg: &Config, m: &Manifest) -> Result<BTreeSet<String>> {
    let data_dir = cfg.data_dir();
    let (want, have) = (resolve(m, &cfg.data)?, recorded(&data_dir)?);
    let again = "run `lab5 import` (or `lab5 collect`, or `lab5 run`) to split the data set again";
    if want != have {
        bail!(
            "the split in {} holds out the breeds {have:?}, but data.unseen_breeds and \
             data.unseen_breed_share now give {want:?}: {again}",
            data_dir.display()
        );
    }
    let leaked = m
        .records
        .iter()
        .find(|r| split::is_held_out(r, &have) && r.split.is_some_and(|s| s != SplitName::Test));
    if let Some(r) = leaked {
        bail!(
            "photo {} of the held-out breed {:?} is in the {} split: {again}",
            r.id,
            r.breed_name.as_deref().unwrap_or_default(),
            r.split.map(|s| s.name()).unwrap_or_default()
        );
    }
    Ok(have)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Origin, Record as Row};

    /// 5 cat breeds of 40 photos, 30 dog breeds of 6, and 10 photos of each class
    /// without a breed.
    fn manifest() -> Manifest {
        let row = |i: usize, label: Class, breed: Option<String>| Row {
            id: format!("{label}{i}"),
            label,
            breed_id: None,
            breed_name: breed,
            source: Origin::Folder,
            url: String::new(),
            path: format!("raw/{label}/{label}{i}.jpg").into(),
            width: 1,
            height: 1,
            bytes: 1,
            sha256: String::new(),
            split: None,
            excluded: None,
            phash: None,
        };
        let cats =
            (0..210).map(|i| row(i, Class::Cat, (i < 200).then(|| format!("Cat {}", i / 40))));
        let dogs =
            (0..190).map(|i| row(i, Class::Dog, (i < 180).then(|| format!("Dog {}", i / 6))));
        Manifest {
            records: cats.chain(dogs).collect(),
        }
    }

    fn data(names: &[&str], share: f64, seed: u64) -> config::Data {
        let cfg = Config::from_json(include_str!("../../../config.json")).unwrap();
        config::Data {
            unseen_breeds: names.iter().map(|s| s.to_string()).collect(),
            unseen_breed_share: share,
            seed,
            ..cfg.data
        }
    }

    fn of_class<'a>(held: &'a BTreeSet<String>, prefix: &'a str) -> Vec<&'a String> {
        held.iter().filter(|b| b.starts_with(prefix)).collect()
    }

    #[test]
    fn names_match_ignoring_case_and_unknown_ones_are_listed_with_the_breeds() {
        let m = manifest();
        let held = resolve(&m, &data(&[" cat 3", "DOG 12"], 0.0, 1)).unwrap();
        assert_eq!(held, ["Cat 3", "Dog 12"].map(String::from).into());
        let err = resolve(&m, &data(&["Cat 3", "Sphynx"], 0.0, 1)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`data.unseen_breeds`") && msg.contains("[\"Sphynx\"]"),
            "{msg}"
        );
        assert!(
            msg.contains("cat (5): Cat 0, Cat 1, Cat 2, Cat 3, Cat 4"),
            "{msg}"
        );
        assert!(msg.contains("dog (30): Dog 0, Dog 1, Dog 10"), "{msg}");
    }

    #[test]
    fn a_share_draws_from_each_class_with_the_seed() {
        let m = manifest();
        let a = resolve(&m, &data(&[], 0.1, 42)).unwrap();
        assert_eq!(
            of_class(&a, "Cat").len(),
            1,
            "10 % of 5 cat breeds is still one: {a:?}"
        );
        assert_eq!(of_class(&a, "Dog").len(), 3, "{a:?}");
        assert_eq!(
            a,
            resolve(&m, &data(&[], 0.1, 42)).unwrap(),
            "same seed, same breeds"
        );
        let others: BTreeSet<_> = (0..20)
            .map(|s| resolve(&m, &data(&[], 0.1, s)).unwrap())
            .collect();
        assert!(others.len() > 1, "the seed chooses the breeds");
        let both = resolve(&m, &data(&["Dog 29"], 0.1, 42)).unwrap();
        assert!(both.contains("Dog 29") && both.is_superset(&a));
    }

    #[test]
    fn draw_count_is_at_least_one_and_never_every_breed() {
        assert_eq!(draw_count(5, 0.0), 0);
        assert_eq!(draw_count(5, 0.01), 1);
        assert_eq!(draw_count(5, 0.5), 3);
        assert_eq!(draw_count(120, 0.2), 24);
        assert_eq!(draw_count(2, 0.5), 1);
        assert_eq!(draw_count(1, 0.5), 0);
    }

    #[test]
    fn changing_the_held_out_breeds_resplits_and_training_sees_a_stale_split() {
        let dir = std::env::temp_dir().join(format!("lab5-holdout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = Config::from_json(include_str!("../../../config.json")).unwrap();
        cfg.paths.data_dir = dir.clone();
        let mut m = manifest();
        let plain = assign(&cfg, &mut m, &dir).unwrap();
        assert!(!plain.resplit && plain.held.is_empty() && plain.newly_split == 400);
        plain.commit(&dir).unwrap();
        assert!(
            !record_path(&dir).exists(),
            "no record without held-out breeds"
        );
        let original = m.clone();
        cfg.data.unseen_breeds = vec!["Cat 1".into()];
        let err = current(&cfg, &m).unwrap_err().to_string();
        assert!(err.contains("lab5 import"), "{err}");
        let held = assign(&cfg, &mut m, &dir).unwrap();
        assert!(held.resplit);
        held.commit(&dir).unwrap();
        assert_eq!(current(&cfg, &m).unwrap(), held.held);
        let cat1 = m
            .records
            .iter()
            .filter(|r| r.breed_name.as_deref() == Some("Cat 1"));
        assert!(
            cat1.clone().count() == 40 && cat1.clone().all(|r| r.split == Some(SplitName::Test))
        );
        assert_eq!(
            assign(&cfg, &mut m, &dir).unwrap().newly_split,
            0,
            "unchanged: no move"
        );
        cfg.data.unseen_breeds.clear();
        let back = assign(&cfg, &mut m, &dir).unwrap();
        back.commit(&dir).unwrap();
        assert!(back.resplit && !record_path(&dir).exists());
        assert_eq!(m, original, "back to the plain split");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
