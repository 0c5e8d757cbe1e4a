//! Notebooks `04_embeddings` and `05_transfer`: the embeddings of a run (the activations
//! of its penultimate linear layer for every photo), their t-SNE and UMAP maps, and how
//! well each space separates cats from dogs.
//!
//! Files, in the run folder: `embeddings.json` (vectors with id, label, split, breed),
//! `projections.json` (both maps), `separation.{json,csv}` and `figures/`. They are
//! computed once; retraining replaces the whole run folder, so they never go stale.

use super::data::manifest;
use super::runs::{run_record, Model};
use super::Shown;
use crate::config::Config;
use crate::data::{Manifest, SplitName};
use crate::embed::{
    embed_run, has_projector, write_projector, EmbeddingRecord, EmbeddingSet, Projections,
    SpaceScore, EMBEDDINGS_FILE, PROJECTIONS_FILE, SEPARATION_FILE,
};
use crate::labels::features;
use crate::models::backbone;
use crate::plot::{bar_chart, scatter, Figure, Table};
use crate::train::LoadedRun;
use anyhow::{Context, Result};
use polars::prelude::df;
use tch::Tensor;

/// Which 2-D map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// t-SNE (local neighbourhoods kept, distances between clusters not meaningful).
    Tsne,
    /// UMAP (local neighbourhoods and more of the global layout).
    Umap,
}

/// What colours the points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourBy {
    /// Cat or dog.
    Class,
    /// Breed (the most frequent ones; the rest grey).
    Breed,
}

fn run_dir(cfg: &Config, model: Model) -> std::path::PathBuf {
    cfg.runs_dir().join(model.run_name())
}

/// True when the run's head trains on cached backbone features (then its embeddings come
/// from the same cached features instead of running the backbone on every photo again).
fn uses_features(run: &LoadedRun) -> bool {
    let c = &run.record.model.config.transfer;
    run.record.model.kind == crate::models::transfer::KIND && c.unfreeze_blocks == 0 && !c.augment
}

/// Embeddings `(N, D)` of the records of `split`, in [`Manifest::split`] order.
fn split_vectors(cfg: &Config, m: &Manifest, run: &LoadedRun, split: SplitName) -> Result<Tensor> {
    let records = m.split(split);
    if uses_features(run) {
        let kind = backbone::Kind::of(&run.record.model.config)?;
        let pass = features::load_or_compute_for(cfg, m, run.device, kind)?;
        let x = pass.features_of(&records)?.to_device(run.device);
        let _guard = tch::no_grad_guard();
        return Ok(run.net.embed(&x, false).to_device(tch::Device::Cpu));
    }
    let (size, shorter) = run.sizes();
    let cached = crate::data::cache::load_or_build(cfg, m, size, shorter)?;
    run.embeddings(&cached.get(split).images)
}

/// Computes the embeddings of every (not excluded) photo with the run's best weights and
/// writes `embeddings.json` into the run folder.
pub fn compute_embeddings(cfg: &Config, model: Model) -> Result<EmbeddingSet> {
    run_record(cfg, model)?;
    let dir = run_dir(cfg, model);
    let run = LoadedRun::open(&dir)?;
    let m = manifest(cfg)?;
    let mut records = Vec::new();
    for split in SplitName::ALL {
        let vectors = split_vectors(cfg, &m, &run, split)?;
        for (r, i) in m.split(split).into_iter().zip(0..) {
            records.push(EmbeddingRecord {
                id: r.id.clone(),
                label: r.label,
                split,
                breed: r.breed_name.clone().unwrap_or_default(),
                vector: Vec::<f32>::try_from(vectors.get(i))?,
            });
        }
    }
    let set = EmbeddingSet::new(model.run_name(), records)?;
    set.save(&dir.join(EMBEDDINGS_FILE))?;
    Ok(set)
}

/// Embeddings, t-SNE and UMAP maps and separation scores of `model`'s run: loaded when
/// the run folder has them, computed (and saved) when it does not or when `force`; with
/// the files of TensorBoard's Embedding Projector in the run's TensorBoard folder
/// ([`write_projector`]). Shows the separation table. Fails with what to run when the run is missing or was
/// trained with other settings or data.
pub fn embed(cfg: &Config, model: Model, force: bool) -> Result<Table> {
    run_record(cfg, model)?;
    let dir = run_dir(cfg, model);
    let done = dir.join(PROJECTIONS_FILE).is_file() && dir.join(SEPARATION_FILE).is_file();
    if done && !force {
        println!(
            "reusing the maps in {} (force = true computes them again)",
            dir.display()
        );
        if !has_projector(&dir) {
            let set = EmbeddingSet::load(&dir.join(EMBEDDINGS_FILE))?;
            println!("{}", write_projector(cfg, &dir, &set)?);
        }
        return separation_table(cfg, model);
    }
    if force || !dir.join(EMBEDDINGS_FILE).is_file() {
        let set = compute_embeddings(cfg, model)?;
        println!("{} embeddings of {} values", set.len(), set.dim);
    }
    let maps = embed_run(&dir, &cfg.embed)?;
    let (t, u) = (maps.maps.tsne_secs, maps.maps.umap_secs);
    println!(
        "t-SNE {t:.1} s, UMAP {u:.1} s; maps, scores and charts in {}",
        dir.display()
    );
    println!("{}", write_projector(cfg, &dir, &maps.set)?);
    maps.table()
}

/// The saved separation scores of the run: k-NN accuracy and silhouette per space.
/// Fails (naming the cell or command to run) when there is no current run of `model` or
/// when its embeddings have not been mapped yet.
pub(crate) fn separation_scores(cfg: &Config, model: Model) -> Result<Vec<SpaceScore>> {
    let path = mapped_run(cfg, model)?.join(SEPARATION_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid", path.display()))
}

/// The folder of the current run of `model` once its embedding maps exist; else an error
/// saying which cell or command to run (training first, then embedding).
fn mapped_run(cfg: &Config, model: Model) -> Result<std::path::PathBuf> {
    run_record(cfg, model)?;
    let dir = run_dir(cfg, model);
    let files = [EMBEDDINGS_FILE, PROJECTIONS_FILE, SEPARATION_FILE];
    if files.iter().all(|f| dir.join(f).is_file()) {
        return Ok(dir);
    }
    anyhow::bail!(
        "no embedding maps of {} yet: run {} first",
        dir.display(),
        model.how_to_embed()
    )
}

/// The separation scores as a table (space, k-NN accuracy, silhouette; 3 decimals).
pub fn separation_table(cfg: &Config, model: Model) -> Result<Table> {
    let scores = separation_scores(cfg, model)?;
    let col = |f: fn(&SpaceScore) -> f64| -> Vec<String> {
        scores.iter().map(|s| format!("{:.3}", f(s))).collect()
    };
    Ok(Table(df!(
        "space" => scores.iter().map(|s| s.space.clone()).collect::<Vec<_>>(),
        "k-NN accuracy" => col(|s| s.scores.knn_accuracy),
        "silhouette" => col(|s| s.scores.silhouette),
    )?))
}

/// The separation scores as bars: k-NN accuracy and silhouette of each space.
pub fn separation_chart(cfg: &Config, model: Model) -> Result<Figure> {
    let scores = separation_scores(cfg, model)?;
    let categories = vec!["k-NN accuracy".to_string(), "silhouette".to_string()];
    let series: Vec<(String, Vec<f64>)> = scores
        .iter()
        .map(|s| {
            (
                s.space.clone(),
                vec![s.scores.knn_accuracy, s.scores.silhouette],
            )
        })
        .collect();
    let title = format!("{}: class separation of the embeddings", model.title());
    bar_chart(&title, "score", &categories, &series)
}

/// The saved t-SNE or UMAP map of the run's embeddings, coloured by class or breed.
pub fn embedding_map(cfg: &Config, model: Model, map: Projection, by: ColourBy) -> Result<Shown> {
    let dir = mapped_run(cfg, model)?;
    let set = EmbeddingSet::load(&dir.join(EMBEDDINGS_FILE))?;
    let maps = Projections::load(&dir.join(PROJECTIONS_FILE))?;
    let (points, method) = match map {
        Projection::Tsne => (&maps.tsne, "t-SNE"),
        Projection::Umap => (&maps.umap, "UMAP"),
    };
    let (groups, what) = match by {
        ColourBy::Class => (set.labels(), "class"),
        ColourBy::Breed => (named_breeds(&set), "breed"),
    };
    let title = format!("{}: {method} of the embeddings by {what}", model.title());
    Ok(Shown::Figure(scatter(points, &groups, &title)?))
}

/// Breeds of the set, `(unknown)` where the source gave none.
fn named_breeds(set: &EmbeddingSet) -> Vec<String> {
    let name = |b: String| {
        if b.is_empty() {
            crate::data::summary::UNKNOWN_BREED.into()
        } else {
            b
        }
    };
    set.breeds().into_iter().map(name).collect()
}
