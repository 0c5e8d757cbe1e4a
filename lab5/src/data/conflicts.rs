//! Label conflicts: the same bytes (SHA-256) in the data set under both labels, such as
//! one photo saved into `cat/` and `dog/`. Which label is right is the user's call, so
//! both rows are kept, each excluded from training, validation and test with the reason
//! `label-conflict` ([`Exclusion::LabelConflict`]) until one copy is removed; then the
//! next import or collect lifts the exclusion of the other. Nothing is deleted.

use crate::data::{Class, Exclusion, Manifest};
use serde::Serialize;
use std::collections::BTreeMap;

/// One content found under both labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The SHA-256 of the bytes.
    pub sha256: String,
    /// Every row with those bytes: label, path in the data folder and where it came from.
    pub rows: Vec<(Class, String, String)>,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|(c, path, from)| format!("{c}: {path} (from {from})"))
            .collect();
        write!(f, "same bytes as {}", rows.join(" and as "))
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

/// Every content of `m` that carries both labels, in SHA-256 order.
pub fn find(m: &Manifest) -> Vec<Conflict> {
    let mut by_sha: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in m
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.sha256.is_empty())
    {
        by_sha.entry(r.sha256.as_str()).or_default().push(i);
    }
    by_sha
        .into_iter()
        .filter(|(_, rows)| {
            rows.iter()
                .any(|&i| m.records[i].label != m.records[rows[0]].label)
        })
        .map(|(sha, rows)| Conflict {
            sha256: sha.to_string(),
            rows: rows
                .iter()
                .map(|&i| {
                    let r = &m.records[i];
                    let path = r.path.to_string_lossy().replace('\\', "/");
                    (r.label, path, r.url.clone())
                })
                .collect(),
        })
        .collect()
}

/// Excludes every row of a conflict (reason `label-conflict`, also over a label-check
/// exclusion) and lifts that exclusion from rows no longer in conflict.
pub fn mark(m: &mut Manifest) -> Marked {
    let conflicts = find(m);
    let shas: std::collections::HashSet<&str> =
        conflicts.iter().map(|c| c.sha256.as_str()).collect();
    let (mut excluded, mut lifted) = (0, 0);
    for r in &mut m.records {
        let conflicted = shas.contains(r.sha256.as_str());
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
        let marked = mark(&mut m);
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
        assert_eq!(mark(&mut m).excluded, 0, "marking twice changes nothing");
        m.records.remove(1);
        let after = mark(&mut m);
        assert_eq!((after.conflicts.len(), after.lifted), (0, 1));
        assert_eq!(m.records[0].excluded, None);
        assert_eq!(m.records[1].excluded, Some(Exclusion::LabelCheck));
    }
}
