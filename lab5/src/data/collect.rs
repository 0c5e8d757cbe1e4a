//! `lab5 collect`: fills `data/raw/{cat,dog}` from The Cat API / The Dog API up to the
//! per-class target, resumably.
//!
//! Search pages are read one at a time; the new images of a page are downloaded by a
//! bounded pool of threads, each checked ([`images::inspect`]), de-duplicated by SHA-256
//! across the whole data set and stored atomically; the manifest is saved after every
//! batch. A re-run skips ids already recorded and takes files an interrupted run left
//! on disk without downloading them again.

use crate::config::{Config, Images};
use crate::data::api::{ApiItem, Catalog, SearchPage};
use crate::data::conflicts::Conflict;
use crate::data::http::{Http, Url};
use crate::data::images::{self, ImageInfo, Reason, RejectedItem, Rejection};
use crate::data::keys::DOTENV;
use crate::data::store::{write_conflicts_and_hashes, write_split, Housekeeping, Store};
use crate::data::{Class, Origin, Record};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Options of [`collect_with`].
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Images per class; `None` means `data.per_class` from the config.
    pub per_class: Option<usize>,
    /// Classes to collect.
    pub classes: Vec<Class>,
    /// Draw progress bars on stderr (the CLI does; notebooks do not).
    pub progress: bool,
    /// Set to true from another thread to stop after the running downloads.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            per_class: None,
            classes: Class::ALL.to_vec(),
            progress: false,
            cancel: None,
        }
    }
}

/// What happened for one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    /// The class.
    pub class: Class,
    /// No key was found: results were random and repeating.
    pub keyless: bool,
    /// Wanted images.
    pub target: usize,
    /// Images of this class before the run.
    pub before: usize,
    /// Images of this class after the run.
    pub after: usize,
    /// Search requests sent.
    pub searches: usize,
    /// Items the searches returned.
    pub offered: usize,
    /// Offered ids already in the data set or seen earlier in this run.
    pub repeats: usize,
    /// Images requested from their url.
    pub requested: usize,
    /// Images downloaded and stored.
    pub downloaded: usize,
    /// Bytes of the downloaded images.
    pub downloaded_bytes: u64,
    /// Complete files of an interrupted run taken without downloading again.
    pub resumed: usize,
    /// Downloads whose content was already in the data set.
    pub duplicates: usize,
    /// Rejections by reason.
    pub rejected: BTreeMap<Reason, usize>,
    /// Every rejected item in detail (also written to `data/rejected.csv`).
    pub rejections: Vec<RejectedItem>,
    /// The API had no more images to offer.
    pub exhausted: bool,
    /// `api.request_budget` was spent before the target was reached.
    pub budget_spent: bool,
}

/// What a collect run did.
#[derive(Debug, Clone, Serialize)]
pub struct CollectReport {
    /// One entry per class.
    pub classes: Vec<ClassReport>,
    /// Retries of all requests (timeouts, 429, 5xx, cut bodies).
    pub retries: usize,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Leftovers of earlier runs that were cleaned up.
    pub housekeeping: Housekeeping,
    /// Rows that got a split in this run.
    pub newly_split: usize,
    /// Rows that had a split and moved to the split of their near-copies.
    pub near_copies_moved: usize,
    /// Contents under both labels (the same image from both APIs): both rows are kept
    /// out of training.
    pub label_conflicts: Vec<Conflict>,
    /// Rows of an older manifest that got their perceptual hash in this run.
    pub hashes_added: usize,
    /// The run was cancelled before the targets were reached.
    pub cancelled: bool,
    /// `data/rejected.csv`: every refused item of this run.
    pub rejected_file: PathBuf,
}

struct Ctx<'a> {
    cfg: &'a Config,
    http: Http,
    pool: rayon::ThreadPool,
    opts: &'a CollectOptions,
    target: usize,
    requested: AtomicUsize,
}

impl Ctx<'_> {
    fn cancelled(&self) -> bool {
        self.opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

impl<'a> Ctx<'a> {
    fn new(cfg: &'a Config, opts: &'a CollectOptions) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.api.concurrency)
            .build()
            .context("cannot start the download threads")?;
        Ok(Ctx {
            cfg,
            http: Http::new(&cfg.api)?,
            pool,
            opts,
            target: opts.per_class.unwrap_or(cfg.data.per_class),
            requested: AtomicUsize::new(0),
        })
    }
}

/// Collects images for `opts.classes`, then assigns splits to new rows. Errors (bad key,
/// unreachable API, disk full) keep everything stored so far; a re-run resumes.
pub fn collect_with(cfg: &Config, opts: &CollectOptions) -> Result<CollectReport> {
    let start = Instant::now();
    let ctx = Ctx::new(cfg, opts)?;
    let (mut store, mut housekeeping) = Store::open(&cfg.data_dir())?;
    let hashes_added = store.add_missing_hashes();
    let mut classes = Vec::new();
    for &class in &opts.classes {
        match collect_class(&ctx, &mut store, class) {
            Ok(rep) => classes.push(rep),
            Err(e) => {
                // The classes collected so far keep their list of refused items (a run
                // that fails before refusing anything, such as on a bad key, writes none).
                if classes.iter().any(|c| !c.rejections.is_empty()) {
                    write_rejected(store.data_dir(), &classes)?;
                }
                return Err(e);
            }
        }
    }
    if !ctx.cancelled() {
        for &class in &opts.classes {
            housekeeping.orphans += store.remove_orphans(class)?;
        }
    }
    let settled = store.settle(cfg)?;
    let rejected_file = write_rejected(store.data_dir(), &classes)?;
    Ok(CollectReport {
        classes,
        retries: ctx.http.retries_done(),
        seconds: start.elapsed().as_secs_f64(),
        housekeeping,
        newly_split: settled.newly_split,
        near_copies_moved: settled.near_copies_moved,
        label_conflicts: settled.label_conflicts,
        hashes_added,
        cancelled: ctx.cancelled(),
        rejected_file,
    })
}

/// Writes every refused item of `classes` to `data_dir/rejected.csv`; returns its path.
fn write_rejected(data_dir: &Path, classes: &[ClassReport]) -> Result<PathBuf> {
    let items: Vec<RejectedItem> = classes
        .iter()
        .flat_map(|c| c.rejections.iter().cloned())
        .collect();
    images::write_rejected(data_dir, &items)?;
    Ok(data_dir.join(images::REJECTED_FILE))
}

/// Items waiting to be downloaded, and the ids already seen in this run.
#[derive(Default)]
struct Queue {
    items: VecDeque<ApiItem>,
    seen: HashSet<String>,
    page: usize,
}

fn collect_class(ctx: &Ctx, store: &mut Store, class: Class) -> Result<ClassReport> {
    let api = Catalog::new(ctx.cfg, class, &ctx.http)?;
    let mut rep = ClassReport::new(class, ctx.target, store.count(class), !api.has_key());
    if !api.has_key() && ctx.opts.progress && store.count(class) < ctx.target {
        note_keyless(&api);
    }
    let mut queue = Queue::default();
    let bar = progress_bar(ctx, class, store.count(class));
    while store.count(class) < ctx.target && !ctx.cancelled() {
        if queue.items.is_empty() {
            if !search_more(ctx, &api, store, &mut queue, &mut rep)? {
                break;
            }
            continue;
        }
        let need = ctx.target - store.count(class);
        let batch: Vec<ApiItem> = queue.items.drain(..need.min(queue.items.len())).collect();
        download_batch(ctx, api.origin(), store, &batch, &mut rep, &bar)?;
        store.save()?;
    }
    bar.finish_and_clear();
    rep.after = store.count(class);
    Ok(rep)
}

/// Tells the CLI user that a key is missing and what that means (stderr).
fn note_keyless(api: &Catalog) {
    eprintln!(
        "lab5: no {} in the environment or {DOTENV}: asking {} without a key \
         (random, repeating results; set {0} for stable pages)",
        api.key_var(),
        api.name()
    );
}

fn progress_bar(ctx: &Ctx, class: Class, have: usize) -> ProgressBar {
    if !ctx.opts.progress {
        return ProgressBar::hidden();
    }
    let bar = crate::util::progress(ctx.target as u64, class.name());
    bar.set_position(have.min(ctx.target) as u64);
    bar
}

/// Requests the next page and queues its new items; false when the API has no more
/// images or the request budget is spent.
fn search_more(
    ctx: &Ctx,
    api: &Catalog,
    store: &Store,
    q: &mut Queue,
    rep: &mut ClassReport,
) -> Result<bool> {
    if rep.exhausted {
        return Ok(false);
    }
    if rep.searches >= ctx.cfg.api.request_budget {
        rep.budget_spent = true;
        return Ok(false);
    }
    let page = api.search(q.page)?;
    q.page += 1;
    rep.searches += 1;
    rep.exhausted = is_last_page(&page, q.page, ctx.cfg.api.page_size);
    enqueue(store, api.origin(), q, page, rep);
    Ok(true)
}

fn is_last_page(page: &SearchPage, pages_read: usize, page_size: usize) -> bool {
    let limit = page.limit.filter(|l| *l > 0).unwrap_or(page_size);
    page.items.is_empty() || page.total.is_some_and(|t| pages_read * limit >= t)
}

fn enqueue(store: &Store, origin: Origin, q: &mut Queue, page: SearchPage, rep: &mut ClassReport) {
    rep.offered += page.items.len();
    for item in page.items {
        match item {
            Err(r) => rep.reject(&r, "(item)"),
            Ok(it) => {
                let fresh = q.seen.insert(it.id.clone());
                if !fresh || store.has_id(&item_file_id(store, origin, &it.id)) {
                    rep.repeats += 1;
                } else {
                    q.items.push_back(it);
                }
            }
        }
    }
}

/// The file id of an API item: its id when safe as a file name, else a hash of it (see
/// [`images::file_id`]); when a row from another source (the other API, an imported
/// folder) already uses that id, the class name is appended, so the two stay apart and a
/// re-run maps the item to the same id again.
fn item_file_id(store: &Store, origin: Origin, raw: &str) -> String {
    let id = images::file_id(raw);
    match store.source_of(&id) {
        Some(other) if other != origin => {
            images::file_id(&format!("{id}_{}", class_of(origin).name()))
        }
        _ => id,
    }
}

/// What happened to one queued item.
enum Outcome {
    Added { record: Box<Record>, resumed: bool },
    Duplicate,
    Rejected(Rejection),
    Skipped,
}

fn download_batch(
    ctx: &Ctx,
    origin: Origin,
    store: &mut Store,
    batch: &[ApiItem],
    rep: &mut ClassReport,
    bar: &ProgressBar,
) -> Result<()> {
    let before = ctx.requested.load(Ordering::Relaxed);
    let shared: &Store = store;
    let outcomes: Vec<Result<Outcome>> = ctx.pool.install(|| {
        let fetch = |it| fetch_one(ctx, shared, origin, it);
        batch.par_iter().map(fetch).collect()
    });
    rep.requested += ctx.requested.load(Ordering::Relaxed) - before;
    for (item, outcome) in batch.iter().zip(outcomes) {
        match outcome? {
            Outcome::Added { record, resumed } => {
                rep.count_added(&record, resumed);
                bar.inc(1);
                store.add(*record);
            }
            Outcome::Duplicate => rep.duplicates += 1,
            Outcome::Rejected(r) => rep.reject(&r, &item.id),
            Outcome::Skipped => {}
        }
    }
    Ok(())
}

fn class_of(origin: Origin) -> Class {
    match origin {
        Origin::DogApi => Class::Dog,
        _ => Class::Cat,
    }
}

/// A checked image file in `data/raw`.
struct Stored {
    id: String,
    path: PathBuf,
    info: ImageInfo,
    bytes: u64,
    sha256: String,
}

/// Takes one item: from a file an interrupted run left, else by downloading it.
fn fetch_one(ctx: &Ctx, store: &Store, origin: Origin, item: &ApiItem) -> Result<Outcome> {
    if ctx.cancelled() {
        return Ok(Outcome::Skipped);
    }
    let id = item_file_id(store, origin, &item.id);
    if let Some(outcome) = resume_from_disk(store, origin, item, &id, &ctx.cfg.images)? {
        return Ok(outcome);
    }
    ctx.requested.fetch_add(1, Ordering::Relaxed);
    let (bytes, info) = match download_checked(&ctx.http, &item.url, &ctx.cfg.images) {
        Ok(x) => x,
        Err(r) => return Ok(Outcome::Rejected(r)),
    };
    let sha256 = images::sha256_hex(&bytes);
    if !store.claim_sha(&sha256, class_of(origin)) {
        return Ok(Outcome::Duplicate);
    }
    let path = images::store(store.data_dir(), class_of(origin), &id, &info, &bytes)?;
    let bytes = bytes.len() as u64;
    Ok(added(
        origin,
        item,
        Stored {
            id,
            path,
            info,
            bytes,
            sha256,
        },
        false,
    ))
}

/// Downloads `url` and checks that the body is an image.
fn download_checked(
    http: &Http,
    url: &str,
    policy: &Images,
) -> Result<(Vec<u8>, ImageInfo), Rejection> {
    let parsed =
        Url::parse(url).map_err(|e| Rejection::new(Reason::BadUrl, format!("{url:?}: {e}")))?;
    let fetched = http.get(&parsed, None)?;
    if fetched.status != 200 {
        let msg = format!("HTTP {} for {url}", fetched.status);
        return Err(Rejection::new(Reason::HttpStatus, msg));
    }
    let info = images::inspect(&fetched.body, policy)?;
    Ok((fetched.body, info))
}

/// A file named like this item from an interrupted run: taken when it is a valid image
/// with new content, else removed (and downloaded again when invalid).
fn resume_from_disk(
    store: &Store,
    origin: Origin,
    item: &ApiItem,
    id: &str,
    policy: &Images,
) -> Result<Option<Outcome>> {
    let Some(path) = images::find_stored(store.data_dir(), class_of(origin), id) else {
        return Ok(None);
    };
    let full = store.data_dir().join(&path);
    let bytes = std::fs::read(&full).with_context(|| format!("cannot read {}", full.display()))?;
    let sha256 = images::sha256_hex(&bytes);
    match images::inspect(&bytes, policy) {
        Ok(info) if store.claim_sha(&sha256, class_of(origin)) => {
            let (id, bytes) = (id.to_string(), bytes.len() as u64);
            Ok(Some(added(
                origin,
                item,
                Stored {
                    id,
                    path,
                    info,
                    bytes,
                    sha256,
                },
                true,
            )))
        }
        valid => {
            std::fs::remove_file(&full)
                .with_context(|| format!("cannot remove {}", full.display()))?;
            Ok(valid.is_ok().then_some(Outcome::Duplicate))
        }
    }
}

fn added(origin: Origin, item: &ApiItem, s: Stored, resumed: bool) -> Outcome {
    let record = Record {
        id: s.id,
        label: class_of(origin),
        breed_id: item.breed_id.clone(),
        breed_name: item.breed_name.clone(),
        source: origin,
        url: item.url.clone(),
        path: s.path,
        width: s.info.width,
        height: s.info.height,
        bytes: s.bytes,
        sha256: s.sha256,
        split: None,
        excluded: None,
        phash: Some(s.info.phash),
    };
    Outcome::Added {
        record: Box::new(record),
        resumed,
    }
}

impl ClassReport {
    fn new(class: Class, target: usize, before: usize, keyless: bool) -> Self {
        ClassReport {
            class,
            keyless,
            target,
            before,
            after: before,
            searches: 0,
            offered: 0,
            repeats: 0,
            requested: 0,
            downloaded: 0,
            downloaded_bytes: 0,
            resumed: 0,
            duplicates: 0,
            rejected: BTreeMap::new(),
            rejections: Vec::new(),
            exhausted: false,
            budget_spent: false,
        }
    }

    fn count_added(&mut self, r: &Record, resumed: bool) {
        if resumed {
            self.resumed += 1;
        } else {
            self.downloaded += 1;
            self.downloaded_bytes += r.bytes;
        }
    }

    fn reject(&mut self, r: &Rejection, id: &str) {
        *self.rejected.entry(r.reason).or_default() += 1;
        self.rejections.push(RejectedItem {
            label: self.class,
            item: id.to_string(),
            reason: r.reason,
            detail: r.detail.clone(),
        });
    }

    /// Total rejections.
    pub(crate) fn rejected_total(&self) -> usize {
        self.rejected.values().sum()
    }
}

/// `1.2 MB`-style size.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `3 not a decodable image, 1 url is not http(s)` (or `none`).
pub(crate) fn reasons_line(rejected: &BTreeMap<Reason, usize>) -> String {
    if rejected.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = rejected.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.join(", ")
}

impl std::fmt::Display for ClassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (c, n) = (self.class, self.after);
        writeln!(f, "{c}: {n} of {} (had {})", self.target, self.before)?;
        self.fmt_counts(f)?;
        let rejected = reasons_line(&self.rejected);
        writeln!(f, "  rejected {}: {rejected}", self.rejected_total())?;
        images::write_examples(f, "    ", &self.rejections)?;
        self.fmt_notes(f)
    }
}

impl ClassReport {
    fn fmt_counts(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self;
        write!(f, "  searches {}, offered {}", s.searches, s.offered)?;
        write!(f, ", repeats {}, requested {}", s.repeats, s.requested)?;
        let size = human_bytes(s.downloaded_bytes);
        write!(f, ", downloaded {} ({size})", s.downloaded)?;
        writeln!(
            f,
            ", resumed from disk {}, duplicates {}",
            s.resumed, s.duplicates
        )
    }

    fn fmt_notes(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.keyless {
            writeln!(
                f,
                "  note: no API key, so results were random and repeating"
            )?;
        }
        if self.after < self.target && self.exhausted {
            writeln!(f, "  note: the API had no more images to offer")?;
        }
        if self.after < self.target && self.budget_spent {
            writeln!(
                f,
                "  note: api.request_budget was spent; run again or raise it"
            )?;
        }
        Ok(())
    }
}

impl std::fmt::Display for CollectReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let got: usize = self.classes.iter().map(|c| c.downloaded).sum();
        let rate = got as f64 / self.seconds.max(f64::EPSILON);
        writeln!(
            f,
            "collect: {got} images downloaded in {:.1} s ({rate:.1} images/s), {} retries",
            self.seconds, self.retries
        )?;
        for c in &self.classes {
            write!(f, "{c}")?;
        }
        write!(f, "{}", self.housekeeping)?;
        if self.cancelled {
            writeln!(f, "cancelled: run `lab5 collect` again to resume")?;
        }
        if self.classes.iter().any(|c| !c.rejections.is_empty()) {
            writeln!(f, "every refused item: {}", self.rejected_file.display())?;
        }
        write_conflicts_and_hashes(f, "", &self.label_conflicts, self.hashes_added)?;
        write_split(f, "", self.newly_split, self.near_copies_moved)
    }
}
