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

/// Rows of one photo that carry both labels, as indices into `m.records`: the rows
/// linked to a row of the other label by the same bytes or by perceptual hashes within
/// `max_distance` bits, joined through such links only. So a cat photo that is a
/// near-copy of another cat photo, itself a near-copy of a dog photo, is not drawn in:
/// only rows that have a twin under the other label are.
fn conflict_groups(m: &Manifest, max_distance: u32) -> Vec<Vec<usize>> {
    let r = &m.records;
    let mut by_sha: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, x) in r.iter().enumerate().filter(|(_, x)| !x.sha256.is_empty()) {
        by_sha.entry(x.sha256.as_str()).or_default().push(i);
    }
    let same_bytes = by_sha.into_values().flat_map(|g| {
        let pairs: Vec<(usize, usize)> = g
            .iter()
            .flat_map(|&i| g.iter().map(move |&j| (i, j)))
            .filter(|(i, j)| i < j)
            .collect();
        pairs
    });
    let edges = phash::pairs(m, max_distance)
        .into_iter()
        .chain(same_bytes)
        .filter(|&(i, j)| r[i].label != r[j].label);
    phash::components(r.len(), edges)
}

/// Every photo of `m` that carries both labels (same bytes, or near-copies within
/// `max_distance` bits of perceptual hash), ordered by their first row.
pub(crate) fn find(m: &Manifest, max_distance: u32) -> Vec<Conflict> {
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
                let path = crate::util::slash_path(&r(i).path);
                (r(i).label, path, r(i).url.clone())
            })
            .collect(),
    }
}

/// Excludes every row of a conflict (reason `label-conflict`) and lifts that exclusion
/// from rows no longer in conflict. A row the label check excluded (`lab5 audit --apply`)
/// keeps that reason: it is out of training either way, and lifting a conflict must not
/// bring it back.
pub(crate) fn mark(m: &mut Manifest, max_distance: u32) -> Marked {
    let groups = conflict_groups(m, max_distance);
    let conflicts = groups.iter().map(|g| conflict(m, g)).collect();
    let rows: HashSet<usize> = groups.into_iter().flatten().collect();
    let (mut excluded, mut lifted) = (0, 0);
    let by_label_check = |r: &crate::data::Record| r.excluded == Some(Exclusion::LabelCheck);
    for (i, r) in m.records.iter_mut().enumerate() {
        if by_label_check(r) {
            continue;
        }
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

    /// Only rows with a twin under the other label are drawn in: cat A ~ cat X ~ dog B
    /// (a chain of near-copies) makes X and B a conflict, not A. A row the label check
    /// excluded keeps that reason through a conflict and after it is lifted.
    #[test]
    fn a_chain_of_near_copies_draws_in_only_the_twins_and_label_check_stays() {
        let mut m = crate::data::split::tests::manifest(6);
        // Rows 1, 2 are cats, row 3 a dog. Hash bits: A = 0 bits set, X = 8, B = 16, so
        // A~X and X~B are 8 bits apart and A~B 16 (threshold 12).
        let hash = |ones: usize| {
            let mut bytes = [0u8; 32];
            bytes.iter_mut().take(ones / 8).for_each(|b| *b = 0xff);
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            crate::data::phash::PHash::from_hex(&hex)
        };
        for (i, r) in m.records.iter_mut().enumerate() {
            r.sha256 = format!("{i:064}");
            r.phash = hash(8 * (10 + 2 * i)).filter(|_| i > 0);
        }
        let (a, x, b) = (1, 2, 3);
        m.records[a].phash = hash(0);
        m.records[x].phash = hash(8);
        m.records[b].phash = hash(16);
        let marked = mark(&mut m, 12);
        assert_eq!(marked.conflicts.len(), 1, "{:?}", marked.conflicts);
        assert_eq!(marked.conflicts[0].rows.len(), 2);
        let excluded: Vec<usize> = (0..6).filter(|&i| m.records[i].is_excluded()).collect();
        assert_eq!(excluded, [x, b]);
        // The label check had excluded X: it keeps that reason, also once B is gone.
        m.records[x].excluded = Some(Exclusion::LabelCheck);
        assert_eq!(mark(&mut m, 12).conflicts.len(), 1);
        assert_eq!(m.records[x].excluded, Some(Exclusion::LabelCheck));
        m.records.remove(b);
        let after = mark(&mut m, 12);
        assert_eq!((after.conflicts.len(), after.lifted), (0, 0));
        assert_eq!(m.records[x].excluded, Some(Exclusion::LabelCheck));
    }
}
