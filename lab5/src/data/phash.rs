//! Near-copies of a photo: a perceptual hash of every photo (a 256-bit difference hash,
//! `image_hasher`'s gradient hash on a 16x16 grey thumbnail) and the groups of photos
//! whose hashes differ in at most `data.near_duplicate_distance` bits (Hamming distance).
//!
//! A resized, recompressed or slightly re-edited copy of a photo keeps almost every bit
//! of the hash; two different photos differ in about half of them (on the pets photos the
//! nearest unrelated pairs are ~25 bits apart, the copies at most a few). The split keeps
//! every group inside one split ([`crate::data::split`]), so no test photo has a twin the
//! model was trained on.

use crate::data::{Manifest, Record};
use anyhow::{bail, Result};
use image::DynamicImage;
use image_hasher::{HashAlg, HasherConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bits of the hash.
pub const BITS: u32 = 256;
/// Side of the grey thumbnail the hash compares neighbouring pixels of.
const SIDE: u32 = 16;
/// Bytes of the hash (stored as twice as many hex digits in the manifest).
const BYTES: usize = (BITS / 8) as usize;

/// A 256-bit perceptual hash (serialized as its 64 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct PHash([u8; BYTES]);

impl From<PHash> for String {
    fn from(h: PHash) -> String {
        h.to_hex()
    }
}

impl TryFrom<String> for PHash {
    type Error = String;
    fn try_from(s: String) -> Result<PHash, String> {
        PHash::from_hex(&s).ok_or_else(|| format!("{s:?} is not 64 hex digits"))
    }
}

impl PHash {
    /// The hash of a decoded image (as the person sees it: orientation applied).
    pub fn of(img: &DynamicImage) -> PHash {
        let hasher = HasherConfig::new()
            .hash_alg(HashAlg::Gradient)
            .hash_size(SIDE, SIDE)
            .to_hasher();
        let h = hasher.hash_image(img);
        let mut out = [0u8; BYTES];
        let b = h.as_bytes();
        out[..b.len().min(BYTES)].copy_from_slice(&b[..b.len().min(BYTES)]);
        PHash(out)
    }

    /// Number of bits in which two hashes differ.
    pub fn distance(&self, other: &PHash) -> u32 {
        self.0
            .iter()
            .zip(other.0.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    /// Lowercase hex (64 digits), as stored in the manifest.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses [`PHash::to_hex`]'s output.
    pub fn from_hex(s: &str) -> Option<PHash> {
        let v = hex::decode(s).ok()?;
        Some(PHash(v.try_into().ok()?))
    }
}

/// Photos whose hashes are within `max_distance` bits of each other, joined transitively
/// (a copy of a copy is in the same group). Only groups of two or more photos, each as
/// indices into `m.records` in ascending order; groups ordered by their first index.
/// Rows without a hash belong to no group.
pub fn groups(m: &Manifest, max_distance: u32) -> Vec<Vec<usize>> {
    components(m.records.len(), pairs(m, max_distance))
}

/// The connected components of the graph on `n` nodes with `edges`, leaving out single
/// nodes: each in ascending order, ordered by their first node (union-find).
pub(crate) fn components(
    n: usize,
    edges: impl IntoIterator<Item = (usize, usize)>,
) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n).collect();
    for (i, j) in edges {
        union(&mut parent, i, j);
    }
    let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        by_root.entry(find(&mut parent, i)).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = by_root.into_values().filter(|g| g.len() > 1).collect();
    out.sort();
    out
}

/// Pairs of photos within `max_distance` bits, as index pairs `(i, j)` with `i < j`.
pub fn pairs(m: &Manifest, max_distance: u32) -> Vec<(usize, usize)> {
    let r = &m.records;
    let mut out = Vec::new();
    for i in 0..r.len() {
        for j in i + 1..r.len() {
            if let (Some(a), Some(b)) = (r[i].phash, r[j].phash) {
                if a.distance(&b) <= max_distance {
                    out.push((i, j));
                }
            }
        }
    }
    out
}

/// The pairs of [`pairs`] whose two photos are in different splits (or one has none).
pub fn pairs_across_splits(m: &Manifest, max_distance: u32) -> Vec<(usize, usize)> {
    let split = |i: usize| m.records[i].split;
    pairs(m, max_distance)
        .into_iter()
        .filter(|&(i, j)| split(i) != split(j))
        .collect()
}

/// Fails when the split lets a near-copy of a photo into another split (both photos in
/// use), or when rows have no hash to tell (a manifest from an older lab5); the message
/// names a pair and says to run `lab5 import` (or `lab5 collect`), which splits again.
pub fn check_split(m: &Manifest, max_distance: u32) -> Result<()> {
    let again = "run `lab5 import` (or `lab5 collect`, or `lab5 run`) to add them and split again";
    let n = missing(m);
    if n > 0 {
        bail!(
            "{n} photos of the manifest have no perceptual hash (it was written by an older \
             lab5), so near-copies across train, val and test cannot be ruled out: {again}"
        );
    }
    let in_use = |i: usize| !m.records[i].is_excluded();
    let across = pairs_across_splits(m, max_distance);
    let mut leaks = across.iter().filter(|&&(i, j)| in_use(i) && in_use(j));
    if let Some(&(i, j)) = leaks.next() {
        let (a, b) = (&m.records[i], &m.records[j]);
        let split = |r: &Record| r.split.map_or("no split", |s| s.name());
        bail!(
            "{} pairs of near-copies are in different splits (data.near_duplicate_distance \
             {max_distance}), e.g. {} in {} and {} in {}: {again}",
            leaks.count() + 1,
            a.path.display(),
            split(a),
            b.path.display(),
            split(b)
        );
    }
    Ok(())
}

/// Rows that have no perceptual hash yet (a manifest written before lab5 stored them).
pub fn missing(m: &Manifest) -> usize {
    m.records.iter().filter(|r| r.phash.is_none()).count()
}

/// A one-line description of a row for reports: its path and where it came from.
pub fn describe(r: &Record) -> String {
    format!("{} (from {})", r.path.display(), r.url)
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{imageops::FilterType, RgbImage};

    /// A synthetic "photo": smooth gradients and a few blobs, so the hash has structure.
    pub(crate) fn scene(seed: u32, w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let s = seed as f32;
            let blob = ((fx * (3.0 + s)).sin() * (fy * (2.0 + 0.7 * s)).cos() * 120.0) as i32;
            let v = (128 + blob + (fx * 60.0) as i32).clamp(0, 255) as u8;
            image::Rgb([v, v.wrapping_add(30 * seed as u8), 255 - v])
        })
    }

    fn jpeg_round_trip(img: &RgbImage, q: u8) -> DynamicImage {
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, q)
            .encode_image(img)
            .unwrap();
        image::load_from_memory(&bytes).unwrap()
    }

    #[test]
    fn copies_are_near_and_other_photos_far() {
        let orig = scene(1, 320, 240);
        let h = PHash::of(&DynamicImage::ImageRgb8(orig.clone()));
        let small = image::imageops::resize(&orig, 160, 120, FilterType::Triangle);
        let recompressed = jpeg_round_trip(&orig, 40);
        for copy in [DynamicImage::ImageRgb8(small), recompressed] {
            let d = h.distance(&PHash::of(&copy));
            assert!(d <= 12, "a copy is {d} bits away");
        }
        let other = PHash::of(&DynamicImage::ImageRgb8(scene(4, 320, 240)));
        assert!(h.distance(&other) > 40, "{}", h.distance(&other));
        assert_eq!(PHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(h.to_hex().len(), 64);
        assert_eq!(PHash::from_hex("abc"), None);
    }

    #[test]
    fn groups_are_transitive_and_skip_rows_without_hash() {
        let mut rows = crate::data::split::tests::manifest(5);
        let bits = |n: usize| {
            let mut b = [0u8; BYTES];
            b.iter_mut().take(n).for_each(|x| *x = 0xFF);
            Some(PHash(b))
        };
        // 0 and 1 differ in 8 bits, 1 and 2 in 8 bits (0 and 2 in 16), 3 is far, 4 has none.
        let hashes = [bits(0), bits(1), bits(2), bits(20), None];
        for (r, h) in rows.records.iter_mut().zip(hashes) {
            r.phash = h;
        }
        assert_eq!(groups(&rows, 12), vec![vec![0, 1, 2]]);
        assert_eq!(pairs(&rows, 12), vec![(0, 1), (1, 2)]);
        assert!(groups(&rows, 7).is_empty());
        assert_eq!(missing(&rows), 1);
        let err = check_split(&rows, 12).unwrap_err().to_string();
        assert!(
            err.contains("1 photos") && err.contains("lab5 import"),
            "{err}"
        );
        rows.records[4].phash = bits(30);
        use crate::data::SplitName::{Test, Train};
        for (r, s) in rows
            .records
            .iter_mut()
            .zip([Train, Train, Test, Test, Test])
        {
            r.split = Some(s);
        }
        let err = check_split(&rows, 12).unwrap_err().to_string();
        assert!(
            err.contains("raw/x/id1.jpg in train and raw/x/id2.jpg in test"),
            "{err}"
        );
        rows.records[2].excluded = Some(crate::data::Exclusion::LabelCheck);
        check_split(&rows, 12).unwrap();
    }
}
