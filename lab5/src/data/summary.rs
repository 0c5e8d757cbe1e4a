//! The data-set summary the notebooks show: counts per class and split, sources,
//! breeds, image-size statistics, and a seeded sample of images per class. Everything is
//! returned as values (and polars tables); the plotting code renders them.

use crate::data::conflicts::{self, Conflict};
use crate::data::phash;
use crate::data::split::order_key;
use crate::data::{Class, Manifest, Origin, Record, SplitName};
use anyhow::Result;
use polars::prelude::{df, DataFrame};
use serde::Serialize;

/// Breed name used for rows without one.
pub(crate) const UNKNOWN_BREED: &str = "(unknown)";
/// Breeds listed per class by the text summary.
const TOP_BREEDS: usize = 5;
const ORIGINS: [Origin; 3] = [Origin::CatApi, Origin::DogApi, Origin::Folder];

/// Rows of one class in one split (`None`: not assigned yet).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitCount {
    /// The class.
    pub class: Class,
    /// The split.
    pub split: Option<SplitName>,
    /// Rows.
    pub images: usize,
    /// Of which excluded by the label check.
    pub excluded: usize,
}

/// Images of one breed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreedCount {
    /// The class.
    pub class: Class,
    /// Breed name, or [`UNKNOWN_BREED`].
    pub breed: String,
    /// Rows.
    pub images: usize,
}

/// Minimum, median, mean and maximum of one measure.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Stat {
    /// Smallest value.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Mean.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
}

/// Image sizes of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeStats {
    /// The class.
    pub class: Class,
    /// Rows.
    pub images: usize,
    /// Width in pixels.
    pub width: Stat,
    /// Height in pixels.
    pub height: Stat,
    /// Shorter side in pixels (what the resize to the network input depends on).
    pub shorter_side: Stat,
    /// File size in bytes.
    pub bytes: Stat,
}

/// Near-copies: photos whose perceptual hashes are within `max_distance` bits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearCopies {
    /// `data.near_duplicate_distance`.
    pub max_distance: u32,
    /// Each group of near-copies: its photos as `path (split)`.
    pub groups: Vec<Vec<String>>,
    /// Photos in a group.
    pub photos: usize,
    /// Pairs of near-copies.
    pub pairs: usize,
    /// Pairs whose two photos are in different splits (0 after an import or collect).
    pub pairs_across_splits: usize,
    /// Photos without a perceptual hash (a manifest from before lab5 stored them).
    pub without_hash: usize,
}

/// The whole summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Rows.
    pub total: usize,
    /// Rows kept out of training (label check and label conflicts).
    pub excluded: usize,
    /// Of which because the same bytes are also under the other label.
    pub label_conflicts: Vec<Conflict>,
    /// Near-copies and whether they straddle splits.
    pub near_copies: NearCopies,
    /// Rows per class and split.
    pub counts: Vec<SplitCount>,
    /// Rows per source.
    pub sources: Vec<(Origin, usize)>,
    /// Rows per breed, by class, most frequent first.
    pub breeds: Vec<BreedCount>,
    /// Size statistics per class.
    pub sizes: Vec<SizeStats>,
}

/// Summarizes a manifest; near-copies are photos whose perceptual hashes are within
/// `near_duplicate_distance` bits (the config's `data.near_duplicate_distance`).
pub fn summarize(m: &Manifest, near_duplicate_distance: u32) -> Summary {
    let recs = &m.records;
    Summary {
        total: recs.len(),
        excluded: recs.iter().filter(|r| r.is_excluded()).count(),
        label_conflicts: conflicts::find(m, near_duplicate_distance),
        near_copies: near_copies(m, near_duplicate_distance),
        counts: split_counts(recs),
        sources: ORIGINS
            .iter()
            .map(|&o| (o, recs.iter().filter(|r| r.source == o).count()))
            .collect(),
        breeds: breed_counts(recs),
        sizes: Class::ALL.iter().map(|&c| size_stats(recs, c)).collect(),
    }
}

/// `n` images of `class` (not excluded), chosen by a keyed hash of `(seed, id)`: the
/// same manifest and seed give the same sample.
pub(crate) fn sample(m: &Manifest, class: Class, n: usize, seed: u64) -> Vec<&Record> {
    let mut rows: Vec<(String, &Record)> = m
        .records
        .iter()
        .filter(|r| r.label == class && !r.is_excluded())
        .map(|r| (order_key(seed, &r.id), r))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.into_iter().take(n).map(|(_, r)| r).collect()
}

fn near_copies(m: &Manifest, max_distance: u32) -> NearCopies {
    let groups = phash::groups(m, max_distance);
    let name = |i: usize| {
        let r = &m.records[i];
        let split = r.split.map_or("no split", |s| s.name());
        format!("{} ({split})", crate::util::slash_path(&r.path))
    };
    NearCopies {
        max_distance,
        photos: groups.iter().map(Vec::len).sum(),
        groups: groups
            .iter()
            .map(|g| g.iter().map(|&i| name(i)).collect())
            .collect(),
        pairs: phash::pairs(m, max_distance).len(),
        pairs_across_splits: phash::pairs_across_splits(m, max_distance).len(),
        without_hash: phash::missing(m),
    }
}

fn split_counts(recs: &[Record]) -> Vec<SplitCount> {
    let splits = SplitName::ALL.map(Some).into_iter().chain([None]);
    let pairs: Vec<(Class, Option<SplitName>)> = Class::ALL
        .iter()
        .flat_map(|&c| splits.clone().map(move |s| (c, s)))
        .collect();
    pairs
        .into_iter()
        .map(|(class, split)| {
            let rows = recs.iter().filter(|r| r.label == class && r.split == split);
            let (images, excluded) = rows.fold((0, 0), |(n, x), r| {
                (n + 1, x + usize::from(r.is_excluded()))
            });
            SplitCount {
                class,
                split,
                images,
                excluded,
            }
        })
        .filter(|c| c.split.is_some() || c.images > 0)
        .collect()
}

fn breed_counts(recs: &[Record]) -> Vec<BreedCount> {
    let mut map: std::collections::BTreeMap<(Class, String), usize> = Default::default();
    for r in recs {
        let breed = r
            .breed_name
            .clone()
            .unwrap_or_else(|| UNKNOWN_BREED.to_string());
        *map.entry((r.label, breed)).or_default() += 1;
    }
    let mut out: Vec<BreedCount> = map
        .into_iter()
        .map(|((class, breed), images)| BreedCount {
            class,
            breed,
            images,
        })
        .collect();
    out.sort_by(|a, b| (a.class, b.images, &a.breed).cmp(&(b.class, a.images, &b.breed)));
    out
}

fn size_stats(recs: &[Record], class: Class) -> SizeStats {
    let rows: Vec<&Record> = recs.iter().filter(|r| r.label == class).collect();
    let of = |f: &dyn Fn(&Record) -> f64| stat(rows.iter().map(|r| f(r)).collect());
    SizeStats {
        class,
        images: rows.len(),
        width: of(&|r| r.width as f64),
        height: of(&|r| r.height as f64),
        shorter_side: of(&|r| r.width.min(r.height) as f64),
        bytes: of(&|r| r.bytes as f64),
    }
}

fn stat(mut v: Vec<f64>) -> Stat {
    if v.is_empty() {
        return Stat::default();
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Stat {
        min: v[0],
        median,
        mean: v.iter().sum::<f64>() / n as f64,
        max: v[n - 1],
    }
}

impl Summary {
    /// Rows of `class` in `split` (`None`: not assigned).
    pub(crate) fn count(&self, class: Class, split: Option<SplitName>) -> usize {
        self.counts
            .iter()
            .filter(|c| c.class == class && c.split == split)
            .map(|c| c.images)
            .sum()
    }

    /// Rows of `class` in all splits (and unassigned).
    pub(crate) fn class_total(&self, class: Class) -> usize {
        self.per_class(class, |c| c.images)
    }

    fn per_class(&self, class: Class, f: impl Fn(&SplitCount) -> usize) -> usize {
        self.counts.iter().filter(|c| c.class == class).map(f).sum()
    }

    /// Table with one row per class: `class, train, val, test, unassigned, excluded, total`.
    pub(crate) fn counts_frame(&self) -> Result<DataFrame> {
        let col = |f: &dyn Fn(Class) -> usize| -> Vec<u64> {
            Class::ALL.iter().map(|&c| f(c) as u64).collect()
        };
        let split = |s: SplitName| col(&|c| self.count(c, Some(s)));
        Ok(df!(
            "class" => Class::ALL.map(|c| c.name()).to_vec(),
            "train" => split(SplitName::Train),
            "val" => split(SplitName::Val),
            "test" => split(SplitName::Test),
            "unassigned" => col(&|c| self.count(c, None)),
            "excluded" => col(&|c| self.per_class(c, |x| x.excluded)),
            "total" => col(&|c| self.class_total(c)),
        )?)
    }

    /// Table `class, breed, images`, most frequent breeds first within each class.
    pub(crate) fn breeds_frame(&self) -> Result<DataFrame> {
        let b = &self.breeds;
        Ok(df!(
            "class" => b.iter().map(|x| x.class.name()).collect::<Vec<_>>(),
            "breed" => b.iter().map(|x| x.breed.clone()).collect::<Vec<_>>(),
            "images" => b.iter().map(|x| x.images as u64).collect::<Vec<_>>(),
        )?)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, x, c) = (self.total, self.excluded, self.conflicted());
        match c {
            0 => writeln!(f, "{n} images ({x} excluded by the label check)")?,
            c => writeln!(
                f,
                "{n} images ({x} excluded: {} by the label check, {c} as label conflicts)",
                x.saturating_sub(c)
            )?,
        }
        let src: Vec<String> = self
            .sources
            .iter()
            .filter(|s| s.1 > 0)
            .map(|(o, n)| format!("{n} {}", o.name()))
            .collect();
        writeln!(
            f,
            "sources: {}",
            if src.is_empty() {
                "none".into()
            } else {
                src.join(", ")
            }
        )?;
        self.fmt_counts(f)?;
        self.fmt_near_copies(f)?;
        self.fmt_conflicts(f)?;
        self.fmt_sizes(f)?;
        self.fmt_breeds(f)
    }
}

/// Groups of near-copies the text summary lists.
const GROUPS_SHOWN: usize = 5;

impl Summary {
    /// Rows excluded as label conflicts.
    fn conflicted(&self) -> usize {
        self.label_conflicts.iter().map(|c| c.rows.len()).sum()
    }

    fn fmt_near_copies(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = &self.near_copies;
        writeln!(
            f,
            "near-copies (perceptual hashes within {} of 256 bits): {} groups, {} photos, \
             {} pairs, {} pairs across splits",
            n.max_distance,
            n.groups.len(),
            n.photos,
            n.pairs,
            n.pairs_across_splits
        )?;
        for g in n.groups.iter().take(GROUPS_SHOWN) {
            writeln!(f, "  {}", g.join(", "))?;
        }
        if n.groups.len() > GROUPS_SHOWN {
            writeln!(f, "  ... and {} more groups", n.groups.len() - GROUPS_SHOWN)?;
        }
        if n.without_hash > 0 {
            writeln!(
                f,
                "  {} photos have no perceptual hash yet (a manifest from an older lab5): \
                 run `lab5 import` (or `lab5 collect`) to add them and keep near-copies in \
                 one split",
                n.without_hash
            )?;
        }
        Ok(())
    }

    fn fmt_conflicts(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.label_conflicts.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "label conflicts ({}, kept out of training until the copies under one label are removed):",
            self.label_conflicts.len()
        )?;
        for c in &self.label_conflicts {
            writeln!(f, "  {c}")?;
        }
        Ok(())
    }
}

impl Summary {
    fn fmt_counts(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = ["class", "train", "val", "test", "unassigned", "total"];
        writeln!(
            f,
            "{:<6} {:>6} {:>6} {:>6} {:>10} {:>6}",
            head[0], head[1], head[2], head[3], head[4], head[5]
        )?;
        for c in Class::ALL {
            let k = |s| self.count(c, Some(s));
            let (tr, va, te) = (k(SplitName::Train), k(SplitName::Val), k(SplitName::Test));
            let (none, all) = (self.count(c, None), self.class_total(c));
            writeln!(
                f,
                "{:<6} {tr:>6} {va:>6} {te:>6} {none:>10} {all:>6}",
                c.name()
            )?;
        }
        Ok(())
    }

    fn fmt_sizes(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in self.sizes.iter().filter(|s| s.images > 0) {
            let (w, h, m) = (s.width, s.height, s.shorter_side);
            writeln!(
                f,
                "{}: width {:.0}-{:.0} (median {:.0}), height {:.0}-{:.0} (median {:.0}), \
                 shorter side median {:.0}, mean file {:.0} KB",
                s.class,
                w.min,
                w.max,
                w.median,
                h.min,
                h.max,
                h.median,
                m.median,
                s.bytes.mean / 1e3
            )?;
        }
        Ok(())
    }

    fn fmt_breeds(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in Class::ALL {
            let of: Vec<&BreedCount> = self.breeds.iter().filter(|b| b.class == c).collect();
            if of.is_empty() {
                continue;
            }
            let top: Vec<String> = of
                .iter()
                .take(TOP_BREEDS)
                .map(|b| format!("{} {}", b.breed, b.images))
                .collect();
            writeln!(f, "{c} breeds ({}): {}", of.len(), top.join(", "))?;
        }
        Ok(())
    }
}
