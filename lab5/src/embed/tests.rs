//! Projection tests on synthetic embeddings shaped like the real ones: two classes, each
//! made of several sub-clusters (breeds), in 128 dimensions.

use super::project::{project, scores_table};
use super::run::SEPARATION_CSV;
use super::*;
use crate::config::Embed;
use crate::data::{Class, SplitName};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

/// Dimension of the synthetic embeddings (the models' embedding size).
const DIM: usize = 128;
/// Sub-clusters ("breeds") per class.
const BREEDS: usize = 5;

fn gauss(rng: &mut StdRng) -> f32 {
    let (u, v): (f64, f64) = (
        rng.random_range(f64::EPSILON..1.0),
        rng.random_range(0.0..1.0),
    );
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

fn around(centre: &[f32], sd: f32, rng: &mut StdRng) -> Vec<f32> {
    centre.iter().map(|c| c + sd * gauss(rng)).collect()
}

/// `n` vectors, half per class; breed spread `breed_sd`, point noise `noise_sd`.
fn synthetic(
    n: usize,
    breed_sd: f32,
    noise_sd: f32,
    seed: u64,
) -> (Vec<Vec<f32>>, Vec<String>, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let classes: Vec<Vec<f32>> = (0..2).map(|_| around(&[0.0; DIM], 1.0, &mut rng)).collect();
    let breeds: Vec<Vec<f32>> = (0..2 * BREEDS)
        .map(|b| around(&classes[b / BREEDS], breed_sd, &mut rng))
        .collect();
    let (mut v, mut labels, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let b = (i % 2) * BREEDS + (i / 2) % BREEDS;
        v.push(around(&breeds[b], noise_sd, &mut rng));
        labels.push(["cat", "dog"][i % 2].to_string());
        names.push(format!("breed {b}"));
    }
    (v, labels, names)
}

fn cfg() -> Embed {
    Embed {
        tsne_perplexity: 30.0,
        tsne_theta: 0.5,
        tsne_epochs: 500,
        umap_neighbors: 15,
        umap_min_dist: 0.1,
        umap_epochs: 200,
        knn_k: 5,
        seed: 42,
    }
}

#[test]
fn both_maps_keep_two_separated_classes_apart_and_repeat_exactly() {
    let (v, labels, _) = synthetic(300, 0.4, 0.5, 1);
    let p = project(&v, &cfg()).unwrap();
    let scores = p.scores(&v, &labels, 5).unwrap();
    for s in &scores {
        assert!(s.scores.knn_accuracy > 0.95, "{}: {:?}", s.space, s.scores);
        assert!(s.scores.silhouette > 0.2, "{}: {:?}", s.space, s.scores);
    }
    let again = project(&v, &cfg()).unwrap();
    assert_eq!(p.tsne, again.tsne, "t-SNE is not repeatable");
    assert_eq!(p.umap, again.umap, "UMAP is not repeatable");
    let other_seed = project(&v, &Embed { seed: 7, ..cfg() }).unwrap();
    assert_ne!(p.umap, other_seed.umap, "the seed has no effect on UMAP");
}

#[test]
fn small_sets_lower_the_perplexity_and_tiny_sets_are_refused() {
    let (v, _, _) = synthetic(20, 0.4, 0.5, 2);
    assert_eq!(tsne(&v, &cfg()).unwrap().len(), 20);
    assert_eq!(umap(&v, &cfg()).unwrap().len(), 20);
    assert!(tsne(&v[..3], &cfg()).is_err());
    assert!(umap(&v[..3], &cfg()).is_err());
}

#[test]
fn scores_table_and_projections_file_round_trip() {
    let (v, labels, _) = synthetic(60, 0.4, 0.5, 3);
    let p = project(
        &v,
        &Embed {
            tsne_epochs: 250,
            ..cfg()
        },
    )
    .unwrap();
    let table = scores_table(&p.scores(&v, &labels, 5).unwrap()).unwrap();
    assert_eq!(table.0.height(), 3);
    assert!(table.to_html().contains("original 128-d"));
    let path = std::env::temp_dir().join(format!("lab5-proj-{}/maps.json", std::process::id()));
    p.save(&path).unwrap();
    let back = Projections::load(&path).unwrap();
    let close = |a: &[(f64, f64)], b: &[(f64, f64)]| {
        a.iter()
            .zip(b)
            .all(|(p, q)| (p.0 - q.0).abs() < 1e-9 && (p.1 - q.1).abs() < 1e-9)
    };
    assert!(
        close(&back.tsne, &p.tsne) && close(&back.umap, &p.umap) && back.tsne.len() == p.tsne.len()
    );
    std::fs::write(&path, b"{\"tsne\": 3}").unwrap();
    assert!(Projections::load(&path)
        .unwrap_err()
        .to_string()
        .contains("not a projections file"));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

fn record(i: usize, vector: Vec<f32>) -> EmbeddingRecord {
    let label = if i.is_multiple_of(2) {
        Class::Cat
    } else {
        Class::Dog
    };
    EmbeddingRecord {
        id: format!("img{i:04}"),
        label,
        split: SplitName::Train,
        breed: "x".into(),
        vector,
    }
}

#[test]
fn embedding_set_saves_loads_and_rejects_bad_content() {
    let (v, _, _) = synthetic(10, 0.4, 0.5, 4);
    let set = EmbeddingSet::new(
        "cnn",
        v.into_iter()
            .enumerate()
            .map(|(i, x)| record(i, x))
            .collect(),
    )
    .unwrap();
    let path =
        std::env::temp_dir().join(format!("lab5-emb-{}/embeddings.json", std::process::id()));
    set.save(&path).unwrap();
    let back = EmbeddingSet::load(&path).unwrap();
    assert_eq!(back, set);
    assert_eq!(
        (
            back.labels()[1].as_str(),
            back.records
                .iter()
                .filter(|r| r.split == SplitName::Train)
                .count()
        ),
        ("dog", 10)
    );
    let mut bad = set.clone();
    bad.records[3].vector[0] = f32::NAN;
    assert!(EmbeddingSet::new("cnn", bad.records.clone()).is_err());
    bad.records[3] = record(2, vec![0.0; DIM]);
    assert!(EmbeddingSet::new("cnn", bad.records)
        .unwrap_err()
        .to_string()
        .contains("repeated"));
    assert!(EmbeddingSet::new(
        "cnn",
        vec![record(0, vec![1.0; 3]), record(1, vec![1.0; 4])]
    )
    .is_err());
    std::fs::write(&path, b"not json").unwrap();
    assert!(EmbeddingSet::load(&path).is_err());
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

/// The speed target: t-SNE + UMAP of 2,100 x 128 embeddings with the default settings.
/// Run with `cargo test --release -p lab5 embed::tests::speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn speed_of_both_maps_on_2100_vectors() {
    let (v, labels, breeds) = synthetic(2100, 0.6, 3.5, 5);
    let c = Embed {
        tsne_epochs: 1000,
        ..cfg()
    };
    let start = Instant::now();
    let p = project(&v, &c).unwrap();
    println!(
        "t-SNE {:.2} s, UMAP {:.2} s, total {:.2} s",
        p.tsne_secs,
        p.umap_secs,
        start.elapsed().as_secs_f64()
    );
    for s in p.scores(&v, &labels, 5).unwrap() {
        println!(
            "{:>16}: kNN {:.4}  silhouette {:.4}",
            s.space, s.scores.knn_accuracy, s.scores.silhouette
        );
    }
    let dir = std::env::temp_dir().join("lab5-plot-gallery");
    crate::plot::scatter(&p.tsne, &labels, "t-SNE of synthetic embeddings")
        .unwrap()
        .save(&dir.join("tsne_class"))
        .unwrap();
    crate::plot::scatter(&p.umap, &breeds, "UMAP of synthetic embeddings by breed")
        .unwrap()
        .save(&dir.join("umap_breed"))
        .unwrap();
    assert!(p.tsne_secs + p.umap_secs < 30.0);
}

#[test]
fn embed_run_writes_maps_scores_and_charts_into_the_run_folder() {
    let (v, _, _) = synthetic(80, 0.4, 0.5, 6);
    let records = v.into_iter().enumerate().map(|(i, x)| EmbeddingRecord {
        breed: format!("b{}", i % 4),
        ..record(i, x)
    });
    let set = EmbeddingSet::new("cnn", records.collect()).unwrap();
    let run = std::env::temp_dir().join(format!("lab5-embed-run-{}", std::process::id()));
    assert!(embed_run(&run, &cfg())
        .unwrap_err()
        .to_string()
        .contains("run the embed step first"));
    set.save(&run.join(EMBEDDINGS_FILE)).unwrap();
    let out = embed_run(
        &run,
        &Embed {
            tsne_epochs: 300,
            ..cfg()
        },
    )
    .unwrap();
    assert_eq!(
        (out.maps.tsne.len(), out.scores.len(), out.figures.len()),
        (80, 3, 4)
    );
    assert!(
        out.scores.iter().all(|s| s.scores.knn_accuracy > 0.95),
        "{:?}",
        out.scores
    );
    for f in [
        PROJECTIONS_FILE,
        SEPARATION_FILE,
        SEPARATION_CSV,
        "figures/umap_breed.png",
        "figures/tsne_class.svg",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(run.join(SEPARATION_CSV)).unwrap();
    assert!(csv.starts_with("space,knn_accuracy,silhouette\noriginal 128-d,"));
    std::fs::remove_dir_all(&run).unwrap();
}
