//! Data: the API client and downloader, folder import, the manifest and its splits,
//! the preprocessing cache and the batch loader. The label check, which needs a model,
//! is [`crate::labels`].

pub(crate) mod api;
pub mod cache;
pub mod collect;
pub mod conflicts;
pub(crate) mod folder;
pub mod holdout;
pub(crate) mod http;
pub mod images;
pub mod import;
pub(crate) mod keys;
pub mod loader;
pub(crate) mod manifest;
pub mod phash;
pub(crate) mod preprocess;
pub mod split;
pub(crate) mod store;
pub mod summary;

pub use manifest::{Class, Exclusion, Manifest, Origin, Record, SplitName};

/// True when `id` can be used as a file name: non-empty, at most 128 characters of
/// `[A-Za-z0-9_-]` (so no `..`, no separators, nothing hidden).
pub(crate) fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    #[test]
    fn safe_ids() {
        assert!(super::is_safe_id("abys_01-X"));
        for bad in ["", "../x", "a/b", ".hidden", "a b", "ü"] {
            assert!(!super::is_safe_id(bad), "{bad}");
        }
    }
}
