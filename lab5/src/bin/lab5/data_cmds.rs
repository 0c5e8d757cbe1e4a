//! `lab5 collect`, `lab5 import`, `lab5 summary`.

use clap::Args;
use lab5::data::collect::{collect_with, CollectOptions};
use lab5::data::import::{import_folder_with, ImportOptions};
use lab5::data::{summary, Class, Manifest};
use lab5::Config;
use std::path::PathBuf;

/// How `lab5 collect` finds the API keys (shown by `lab5 collect --help`).
const KEYS_HELP: &str = "\
API keys: each API's key is read from the environment variable named by
`api.cat.key_env` / `api.dog.key_env` (default CAT_API_KEY, DOG_API_KEY), else from a
`.env` file (NAME=value lines) next to the config file. Keys are never printed. Without
a key the APIs answer with random, repeating images: collect de-duplicates them and
keeps asking until the target or `api.request_budget` searches per class.

Re-running resumes: images already recorded are not downloaded again. Files go to
data/raw/{cat,dog}/ and rows to data/manifest.csv (with a train/val/test split).";

/// Arguments of `lab5 collect`.
#[derive(Args)]
#[command(after_help = KEYS_HELP)]
pub struct CollectArgs {
    /// Target images per class, counting those already in the data set (default:
    /// `data.per_class` from the config).
    #[arg(long)]
    pub per_class: Option<usize>,
    /// Collect only this class (`cat` or `dog`); default both.
    #[arg(long, value_parser = parse_class)]
    pub class: Option<Class>,
    /// Print the report as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `lab5 import` expects (shown by `lab5 import --help`).
const IMPORT_HELP: &str = "\
DIR holds one folder per class (cat or cats, dog or dogs) of JPEG, PNG or WebP files;
other folders are ignored. An optional DIR/labels.csv with columns id,species,breed
(id = file name without extension) gives breeds. Every file is decoded and hashed:
broken files are rejected with a reason, content already in the data set is skipped,
and importing again changes nothing.

A folder labelled with `lab5 label` is imported from its labels.csv instead: when that
file has a `path` column, each cat or dog line names a photo (relative to DIR, or
absolute) and its class; neither lines are not imported.";

/// Arguments of `lab5 import`.
#[derive(Args)]
#[command(after_help = IMPORT_HELP)]
pub struct ImportArgs {
    /// The ImageFolder directory, or a folder labelled by `lab5 label` (default:
    /// `data.folder` from the config).
    pub dir: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_class(s: &str) -> Result<Class, String> {
    Class::parse(s).ok_or_else(|| format!("{s:?} is not a class: use cat or dog"))
}

/// Runs `lab5 collect`: downloads, then prints the report and the data-set summary.
pub fn collect(cfg: &Config, a: CollectArgs) -> anyhow::Result<()> {
    let opts = CollectOptions {
        per_class: a.per_class,
        classes: a.class.map_or(Class::ALL.to_vec(), |c| vec![c]),
        progress: !a.json,
        cancel: None,
    };
    let report = collect_with(cfg, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print!("{report}");
    summary(cfg)
}

/// Runs `lab5 import`: imports the folder, then prints the report and the summary.
pub fn import(cfg: &Config, a: ImportArgs) -> anyhow::Result<()> {
    let dir = a.dir.unwrap_or_else(|| cfg.resolve(&cfg.data.folder));
    let report = import_folder_with(cfg, &dir, &ImportOptions { progress: !a.json })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print!("{report}");
    summary(cfg)
}

/// Runs `lab5 summary`: counts per class and split, sources, sizes, breeds.
pub fn summary(cfg: &Config) -> anyhow::Result<()> {
    let data_dir = cfg.data_dir();
    let path = Manifest::path_in(&data_dir);
    if !path.is_file() {
        anyhow::bail!(
            "no data set yet ({} is missing): run `lab5 collect` or `lab5 import DIR` first",
            path.display()
        );
    }
    let m = Manifest::load(&path)?;
    println!("data set {}:", data_dir.display());
    print!(
        "{}",
        summary::summarize(&m, cfg.data.near_duplicate_distance)
    );
    Ok(())
}
