//! Stratified, seeded train/val/test split.
//!
//! Each class is split on its own, so both classes keep the configured ratios. Rows that
//! already have a split keep it; rows without one are ordered by a keyed hash of
//! `(seed, id)` (independent of file order and of the other rows) and each goes to the
//! split furthest below its target. Same rows and seed give the same split.
//!
//! Held-out breeds (`data.unseen_breeds`, see [`crate::data::holdout`]) are taken out
//! first: every photo of such a breed goes to the test split, and the class's other photos
//! are split with the ratios as if those photos did not exist, so train and val hold no
//! photo of a held-out breed. Photos without a breed are never held out.
//!
//! Near-copies (groups of [`crate::data::phash::groups`]) are then pulled into one split
//! ([`unite_groups`]): only members of a group that straddles splits move, every other
//! photo keeps the split the rules above gave it.

use crate::config;
use crate::data::{Class, Manifest, Record, SplitName};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Target row counts of (train, val, test) for a class of `n` rows.
pub fn targets(n: usize, ratios: &config::Split) -> [usize; 3] {
    let val = (n as f64 * ratios.val).round() as usize;
    let test = ((n as f64 * ratios.test).round() as usize).min(n - val.min(n));
    [n - val.min(n) - test, val.min(n), test]
}

/// Gives a split to every row that has none; returns how many rows were assigned.
pub fn assign(m: &mut Manifest, ratios: &config::Split, seed: u64) -> usize {
    assign_holding_out(m, ratios, seed, &BTreeSet::new())
}

/// Like [`assign`], but first puts every photo whose
/// `breed_name` is in `held` into the test split (also one that had another split), then
/// splits the remaining rows of each class with the ratios. Returns how many rows got a
/// split or changed it.
pub(crate) fn assign_holding_out(
    m: &mut Manifest,
    ratios: &config::Split,
    seed: u64,
    held: &BTreeSet<String>,
) -> usize {
    let moved = hold_out(m, held);
    let rest: usize = Class::ALL
        .iter()
        .map(|&c| assign_class(m, c, ratios, seed, held))
        .sum();
    moved + rest
}

/// Puts every member of each near-copy group into one split; returns how many rows that
/// had a split before (`had_split[i]`) changed it. The group's split is the one of a
/// held-out breed's photo when it has one (test); otherwise the most common split among
/// the members that had a split before (all members when none had: a fresh split), ties
/// going to the split of the member first by `tie_key`. So new photos join their old copies
/// without moving them, and a group of old photos moves as few of them as it can.
pub fn unite_groups(
    m: &mut Manifest,
    groups: &[Vec<usize>],
    seed: u64,
    held: &BTreeSet<String>,
    had_split: &[bool],
) -> usize {
    let mut moved = 0;
    for g in groups {
        let Some(target) = group_split(m, g, seed, held, had_split) else {
            continue;
        };
        for &i in g {
            let r = &mut m.records[i];
            if r.split != Some(target) {
                moved += usize::from(had_split[i]);
                r.split = Some(target);
            }
        }
    }
    moved
}

fn group_split(
    m: &Manifest,
    g: &[usize],
    seed: u64,
    held: &BTreeSet<String>,
    had_split: &[bool],
) -> Option<SplitName> {
    if g.iter().any(|&i| is_held_out(&m.records[i], held)) {
        return Some(SplitName::Test);
    }
    let old: Vec<usize> = g.iter().copied().filter(|&i| had_split[i]).collect();
    let voters = if old.is_empty() { g.to_vec() } else { old };
    let mut votes = [0usize; 3];
    let mut first: Option<(String, SplitName)> = None;
    for &i in &voters {
        let Some(s) = m.records[i].split else {
            continue;
        };
        votes[slot(s)] += 1;
        let key = tie_key(seed, &m.records[i].id);
        if first.as_ref().is_none_or(|(k, _)| key < *k) {
            first = Some((key, s));
        }
    }
    let (_, tie_break) = first?;
    let best = *votes.iter().max()?;
    if votes[slot(tie_break)] == best {
        return Some(tie_break);
    }
    SplitName::ALL.into_iter().find(|s| votes[slot(*s)] == best)
}

/// The order that breaks a tie inside a group: a keyed hash of `(seed, id)` independent of
/// [`order_key`], whose first rows all go to train (the split with the largest target), so
/// that ties go to each split as often as to the other.
fn tie_key(seed: u64, id: &str) -> String {
    order_key(seed, &format!("near-copy:{id}"))
}

/// True when `r` is a photo of a breed in `held` (a photo without a breed never is).
pub(crate) fn is_held_out(r: &Record, held: &BTreeSet<String>) -> bool {
    r.breed_name.as_ref().is_some_and(|b| held.contains(b))
}

/// Puts the photos of held-out breeds into the test split; returns how many moved.
fn hold_out(m: &mut Manifest, held: &BTreeSet<String>) -> usize {
    let mut moved = 0;
    for r in m.records.iter_mut().filter(|r| is_held_out(r, held)) {
        if r.split != Some(SplitName::Test) {
            r.split = Some(SplitName::Test);
            moved += 1;
        }
    }
    moved
}

fn assign_class(
    m: &mut Manifest,
    class: Class,
    ratios: &config::Split,
    seed: u64,
    held: &BTreeSet<String>,
) -> usize {
    let rows: Vec<usize> = (0..m.records.len())
        .filter(|&i| m.records[i].label == class && !is_held_out(&m.records[i], held))
        .collect();
    let want = targets(rows.len(), ratios);
    let mut have = [0usize; 3];
    rows.iter()
        .filter_map(|&i| m.records[i].split)
        .for_each(|s| have[slot(s)] += 1);
    let mut todo: Vec<(String, usize)> = rows
        .iter()
        .filter(|&&i| m.records[i].split.is_none())
        .map(|&i| (order_key(seed, &m.records[i].id), i))
        .collect();
    todo.sort();
    for (_, i) in &todo {
        let s = neediest(&want, &have);
        have[s] += 1;
        m.records[*i].split = Some(SplitName::ALL[s]);
    }
    todo.len()
}

fn slot(s: SplitName) -> usize {
    SplitName::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// The split with the largest deficit (ties go to the earlier split).
fn neediest(want: &[usize; 3], have: &[usize; 3]) -> usize {
    let deficit = |s: usize| want[s] as i64 - have[s] as i64;
    (0..3).fold(
        0,
        |best, s| if deficit(s) > deficit(best) { s } else { best },
    )
}

/// A hex key that orders rows by `(seed, id)` independently of anything else.
pub(crate) fn order_key(seed: u64, id: &str) -> String {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(id.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::{Origin, Record};

    pub(crate) fn manifest(n: usize) -> Manifest {
        let rec = |i: usize| Record {
            id: format!("id{i}"),
            label: if i.is_multiple_of(3) {
                Class::Dog
            } else {
                Class::Cat
            },
            breed_id: None,
            breed_name: (i % 5 != 4).then(|| format!("breed{}", i % 7)),
            source: Origin::Folder,
            url: String::new(),
            path: format!("raw/x/id{i}.jpg").into(),
            width: 1,
            height: 1,
            bytes: 1,
            sha256: String::new(),
            split: None,
            excluded: None,
            phash: None,
        };
        Manifest {
            records: (0..n).map(rec).collect(),
        }
    }

    const RATIOS: config::Split = config::Split {
        train: 0.7,
        val: 0.15,
        test: 0.15,
    };

    fn counts(m: &Manifest, c: Class) -> [usize; 3] {
        let mut k = [0; 3];
        for r in m.records.iter().filter(|r| r.label == c) {
            k[slot(r.split.unwrap())] += 1;
        }
        k
    }

    #[test]
    fn stratified_deterministic_and_stable() {
        let mut a = manifest(300);
        assert_eq!(assign(&mut a, &RATIOS, 7), 300);
        assert_eq!(counts(&a, Class::Cat), targets(200, &RATIOS));
        assert_eq!(counts(&a, Class::Dog), targets(100, &RATIOS));
        let mut b = manifest(300);
        b.records.reverse();
        assign(&mut b, &RATIOS, 7);
        b.records.reverse();
        assert_eq!(a, b, "file order must not matter");
        let mut c = manifest(300);
        assign(&mut c, &RATIOS, 8);
        assert_ne!(a, c, "the seed must matter");
        let mut grown = manifest(330);
        grown.records[..300].clone_from_slice(&a.records);
        assert_eq!(assign(&mut grown, &RATIOS, 7), 30);
        assert_eq!(
            grown.records[..300],
            a.records[..],
            "old rows keep their split"
        );
        assert_eq!(assign(&mut grown, &RATIOS, 7), 0);
    }

    fn held(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn held_out_breeds_go_to_test_and_the_rest_keeps_the_ratios() {
        let held = held(&["breed2", "breed5"]);
        let mut m = manifest(600);
        assert_eq!(assign_holding_out(&mut m, &RATIOS, 7, &held), 600);
        for r in &m.records {
            if is_held_out(r, &held) {
                assert_eq!(r.split, Some(SplitName::Test), "{}", r.id);
            }
        }
        for c in Class::ALL {
            let rest: Vec<&Record> = m.records.iter().filter(|r| r.label == c).collect();
            let kept = rest.iter().filter(|r| !is_held_out(r, &held)).count();
            let unseen = rest.len() - kept;
            assert!(unseen > 0, "{c} has held-out photos in this fixture");
            let mut want = targets(kept, &RATIOS);
            want[2] += unseen;
            assert_eq!(counts(&m, c), want, "{c}");
        }
        let mut again = m.clone();
        assert_eq!(assign_holding_out(&mut again, &RATIOS, 7, &held), 0);
        assert_eq!(again, m, "a second pass changes nothing");
    }

    #[test]
    fn photos_without_breed_are_never_held_out_and_moves_are_counted() {
        let mut m = manifest(300);
        assign(&mut m, &RATIOS, 7);
        let held = held(&["breed3"]);
        let in_train = |m: &Manifest| {
            let r = m
                .records
                .iter()
                .filter(|r| r.split != Some(SplitName::Test));
            r.filter(|r| is_held_out(r, &held)).count()
        };
        let before = in_train(&m);
        assert!(before > 0);
        assert_eq!(assign_holding_out(&mut m, &RATIOS, 7, &held), before);
        assert_eq!(in_train(&m), 0);
        let unbred = m.records.iter().filter(|r| r.breed_name.is_none());
        assert!(unbred.clone().all(|r| !is_held_out(r, &held)));
        let mut fresh = manifest(300);
        assign_holding_out(&mut fresh, &RATIOS, 7, &BTreeSet::new());
        let mut plain = manifest(300);
        assign(&mut plain, &RATIOS, 7);
        assert_eq!(fresh, plain, "nothing held out: the plain split");
    }

    #[test]
    fn near_copies_end_in_one_split_and_nothing_else_moves() {
        let mut m = manifest(300);
        assign(&mut m, &RATIOS, 7);
        let before = m.clone();
        let by_split = |s: SplitName| {
            let r = before.records.iter().position(|r| r.split == Some(s));
            r.unwrap()
        };
        let (tr, va, te) = (
            by_split(SplitName::Train),
            by_split(SplitName::Val),
            by_split(SplitName::Test),
        );
        let other = |s: SplitName, not: usize| {
            let mut r = (0..300).filter(|&i| i != not && before.records[i].split == Some(s));
            r.next().unwrap()
        };
        let (te2, tr2) = (other(SplitName::Test, te), other(SplitName::Train, tr));
        // A pair across splits, and a triple of which two are in test.
        let mut groups = vec![vec![tr, va], vec![te, te2, tr2]];
        groups.iter_mut().for_each(|g| g.sort());
        let old = vec![true; 300];
        let moved = unite_groups(&mut m, &groups, 7, &BTreeSet::new(), &old);
        for g in &groups {
            let s = m.records[g[0]].split;
            assert!(g.iter().all(|&i| m.records[i].split == s), "{g:?}");
        }
        let changed: Vec<usize> = (0..300)
            .filter(|&i| m.records[i].split != before.records[i].split)
            .collect();
        assert_eq!(changed.len(), moved);
        assert!(changed
            .iter()
            .all(|i| groups.iter().flatten().any(|j| j == i)));
        assert_eq!(moved, 2, "one of the pair and the triple's train photo");
        let mut again = m.clone();
        assert_eq!(
            unite_groups(&mut again, &groups, 7, &BTreeSet::new(), &old),
            0
        );
    }

    #[test]
    fn a_new_photo_joins_its_old_copy_which_stays() {
        let mut m = manifest(10);
        assign(&mut m, &RATIOS, 7);
        let old_split = m.records[0].split;
        let other = SplitName::ALL.into_iter().find(|s| Some(*s) != old_split);
        m.records[1].split = other;
        let had = [true, false, true, true, true, true, true, true, true, true];
        assert_eq!(
            unite_groups(&mut m, &[vec![0, 1]], 7, &BTreeSet::new(), &had),
            0
        );
        assert_eq!(m.records[1].split, old_split);
    }

    #[test]
    fn targets_add_up() {
        for n in [0, 1, 2, 7, 1050] {
            assert_eq!(targets(n, &RATIOS).iter().sum::<usize>(), n);
        }
        let [train, val, test] = targets(1050, &RATIOS);
        assert!(
            val.abs_diff(158) <= 1 && test.abs_diff(158) <= 1 && train >= 733,
            "{train}"
        );
    }
}
