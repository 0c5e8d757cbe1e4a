//! Label conflicts: the same photo in the data set under both labels, such as one file
//! saved into `cat/` and `dog/`, or a resized or re-encoded copy of a cat photo filed as a
//! dog (a near-copy: perceptual hashes within `data.near_duplicate_distance` bits, see
//! [`crate::data::phash`]). Which label is right is the user's call, so every row is kept,
//! each excluded from training, validation and test with the reason `label-conflict`
//! ([`Exclusion::LabelConflict`]) until the copies under one label are removed; then the
//! next import or collect lifts the exclusion of the others. Nothing is deleted.

use crate::data::{phash, Class, Exclusion, Manifest};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// One photo found under both labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// True when every row has the same bytes (SHA-256); false when some are near-copies.
    pub same_bytes: bool,
    /// Every row of the photo: label, path in the data folder and where it came from.
    pub rows: Vec<(Class, String, String)>,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|(c, path, from)| format!("{c}: {path} (from {from})"))
            .collect();
        let what = if self.same_bytes {
            "same bytes"
        } else {
            "same photo (near-copies)"
        };
        write!(f, "{what} as {}", rows.join(" and as "))
    }
}

/// What [`mark`] found and changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Marked {
    /// Every conflict in the manifest.
    pub conflicts: Vec<Conflict>,
    /// Rows newly excluded as label conflicts.
    pub excluded: usize,
    /// Rows whose conflict is gone and which are back in training.
    pub lifted: usize,
}

/// Rows of one photo that carry both labels, as indices into `m.records`: the near-copy
/// groups of [`phash::groups`] (byte-identical files have the same hash), plus rows with
/// the same bytes but no hash yet (a manifest written before lab5 stored hashes).
fn conflict_groups(m: &Manifest, max_distance: u32) -> Vec<Vec<usize>> {
    let mut groups = phash::groups(m, max_distance);
    let grouped: HashSet<usize> = groups.iter().flatten().copied().collect();
    let mut by_sha: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in m.records.iter().enumerate() {
        if !r.sha256.is_empty() && !grouped.contains(&i) {
            by_sha.entry(r.sha256.as_str()).or_default().push(i);
        }
    }
    groups.extend(by_sha.into_values().filter(|g| g.len() > 1));
    groups.retain(|g| {
        g.iter()
            .any(|&i| m.records[i].label != m.records[g[0]].label)
    });
    groups.sort();
    groups
}

/// Every photo of `m` that carries both labels (same bytes, or near-copies within
/// `max_distance` bits of perceptual hash), ordered by their first row.
pub fn find(m: &Manifest, max_distance: u32) -> Vec<Conflict> {
    conflict_groups(m, max_distance)
        .iter()
        .map(|g| conflict(m, g))
        .collect()
}

/// The rows `g` of `m` as a [`Conflict`].
fn conflict(m: &Manifest, g: &[usize]) -> Conflict {
    let r = |i: usize| &m.records[i];
    Conflict {
        same_bytes: g.iter().all(|&i| r(i).sha256 == r(g[0]).sha256),
        rows: g
            .iter()
            .map(|&i| {
                let path = r(i).path.to_string_lossy().replace('\\', "/");
                (r(i).label, path, r(i).url.clone())
            })
            .collect(),
    }
}

/// Excludes every row of a conflict (reason `label-conflict`, also over a label-check
/// exclusion) and lifts that exclusion from rows no longer in conflict.
pub fn mark(m: &mut Manifest, max_distance: u32) -> Marked {
    let groups = conflict_groups(m, max_distance);
    let conflicts = groups.iter().map(|g| conflict(m, g)).collect();
    let rows: HashSet<usize> = groups.into_iter().flatten().collect();
    let (mut excluded, mut lifted) = (0, 0);
    for (i, r) in m.records.iter_mut().enumerate() {
        let conflicted = rows.contains(&i);
        let marked = r.excluded == Some(Exclusion::LabelConflict);
        if conflicted && !marked {
            r.excluded = Some(Exclusion::LabelConflict);
            excluded += 1;
        } else if !conflicted && marked {
            r.excluded = None;
            lifted += 1;
        }
    }
    Marked {
        conflicts,
        excluded,
        lifted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_copies_are_excluded_until_one_is_gone() {
        let mut m = crate::data::split::tests::manifest(6);
        for (i, r) in m.records.iter_mut().enumerate() {
            r.sha256 = format!("{i:064}");
        }
        // Row 0 is a dog, row 1 a cat: give them the same bytes; row 2 (cat) has the
        // label check's exclusion and row 4 (cat) the same bytes as row 2 (a duplicate
        // within a class is no conflict).
        m.records[1].sha256 = m.records[0].sha256.clone();
        m.records[2].excluded = Some(Exclusion::LabelCheck);
        m.records[4].sha256 = m.records[2].sha256.clone();
        let marked = mark(&mut m, 12);
        assert_eq!(marked.conflicts.len(), 1);
        let c = &marked.conflicts[0];
        assert_eq!(c.rows.len(), 2);
        let text = c.to_string();
        assert!(
            text.contains("raw/x/id0.jpg") && text.contains("raw/x/id1.jpg"),
            "{text}"
        );
        assert!(text.contains("dog:") && text.contains("cat:"), "{text}");
        assert_eq!(marked.excluded, 2);
        assert_eq!(m.records[0].excluded, Some(Exclusion::LabelConflict));
        assert_eq!(m.records[1].excluded, Some(Exclusion::LabelConflict));
        assert_eq!(m.records[2].excluded, Some(Exclusion::LabelCheck));
        assert_eq!(m.records[4].excluded, None);
        assert_eq!(
            mark(&mut m, 12).excluded,
            0,
            "marking twice changes nothing"
        );
        m.records.remove(1);
        let after = mark(&mut m, 12);
        assert_eq!((after.conflicts.len(), after.lifted), (0, 1));
        assert_eq!(m.records[0].excluded, None);
        assert_eq!(m.records[1].excluded, Some(Exclusion::LabelCheck));
    }

    /// A resized or re-encoded copy of a photo under the other label is a conflict too
    /// (different bytes, hashes a few bits apart); a photo far away in hash is not.
    #[test]
    fn near_copies_under_both_labels_are_a_conflict() {
        let mut m = crate::data::split::tests::manifest(6);
        let hash = |fill: u8, flip: usize| {
            let mut hex = format!("{fill:02x}").repeat(32);
            if flip > 0 {
                hex.replace_range(0..1, &format!("{:x}", (fill >> 4) ^ ((1 << flip) - 1)));
            }
            crate::data::phash::PHash::from_hex(&hex)
        };
        for (i, r) in m.records.iter_mut().enumerate() {
            r.sha256 = format!("{i:064}");
            r.phash = hash(0x11 * i as u8, 0);
        }
        // Row 0 (dog) and row 1 (cat): 3 bits apart; row 3 (dog) far from both.
        m.records[1].phash = hash(0x00, 3);
        let marked = mark(&mut m, 12);
        assert_eq!(marked.conflicts.len(), 1, "{:?}", marked.conflicts);
        let c = &marked.conflicts[0];
        assert!(!c.same_bytes);
        let text = c.to_string();
        assert!(text.starts_with("same photo (near-copies) as "), "{text}");
        assert!(text.contains("raw/x/id0.jpg") && text.contains("raw/x/id1.jpg"));
        assert_eq!(marked.excluded, 2);
        assert_eq!(
            mark(&mut m, 0).lifted,
            2,
            "at distance 0 they are no copies"
        );
    }
}
