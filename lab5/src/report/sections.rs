//! The sections of the report, each built from what an earlier step left on disk (the
//! manifest, the backbone pass, the run folders, the comparison). A part whose input is
//! missing becomes a note saying what to run, so the report always renders.

use super::html::{Block, Section};
use crate::config::Config;
use crate::data::{Class, SplitName};
use crate::labels::audit::Audit;
use crate::plot::{escape, Note, Table};
use crate::views::{self, ColourBy, Model, Projection};
use anyhow::Result;

/// A block, or a note naming what is missing.
fn block<B: Into<Block>>(what: &str, r: Result<B>) -> Block {
    match r {
        Ok(b) => b.into(),
        Err(e) => Block::Note(Note(format!("No {what}: {e:#}"))),
    }
}

fn section(id: &str, title: &str, blocks: Vec<Block>) -> Section {
    Section {
        id: id.into(),
        title: title.into(),
        blocks,
    }
}

/// The verdict of the comparison, first thing a reader sees.
pub(crate) fn summary(cfg: &Config) -> Section {
    let verdict = crate::compare::load(cfg).map(|c| {
        let items: String = c
            .verdict
            .iter()
            .map(|s| format!("<li>{}</li>\n", escape(s)))
            .collect();
        Block::Html(format!("<ul class=\"verdict\">\n{items}</ul>\n"))
    });
    section("summary", "Summary", vec![block("comparison yet", verdict)])
}

/// Counts per class and split, and sample photos of each class.
pub(crate) fn data(cfg: &Config) -> Section {
    let (n, cols) = (cfg.report.sample_photos, cfg.report.grid_cols);
    let mut blocks = vec![block("data set", views::counts_table(cfg))];
    if n > 0 {
        for class in Class::ALL {
            blocks.push(block(
                "sample photos",
                views::sample_grid(cfg, class, n, cols),
            ));
        }
    }
    section("data", "Data", blocks)
}

/// The zero-shot label check: its summary and the flagged photos.
pub(crate) fn labels(cfg: &Config) -> Section {
    let blocks = match label_check(cfg) {
        Ok(audit) => label_blocks(cfg, &audit),
        Err(e) => vec![block::<Table>("label check", Err(e))],
    };
    section(
        "labels",
        "Label check (zero-shot, EfficientNet-Lite0)",
        blocks,
    )
}

fn label_check(cfg: &Config) -> Result<Audit> {
    let manifest = views::manifest(cfg)?;
    let device = crate::runtime::init(cfg)?;
    Audit::run(cfg, &manifest, device)
}

fn label_blocks(cfg: &Config, audit: &Audit) -> Vec<Block> {
    let summary = audit.summary().to_frame().map(Table);
    let mut blocks = vec![block("label-check summary", summary)];
    let (max, cols) = (cfg.report.flagged_photos, cfg.report.grid_cols);
    if audit.flagged().is_empty() {
        let n = audit.rows.len();
        let note = format!("The label check flagged none of the {n} photos.");
        blocks.push(Block::Note(Note(note)));
    } else if max > 0 {
        blocks.push(block("flagged photos", audit.flagged_grid(max, cols)));
    }
    blocks.extend(label_check_ablation(cfg));
    blocks
}

/// The saved label-check ablation (`lab5 ablate --label-check`): sentences, table and
/// chart, or a note saying how to make it.
fn label_check_ablation(cfg: &Config) -> Vec<Block> {
    match crate::ablation::label_check::load(cfg) {
        Ok(study) => vec![
            Block::Text("**Does the label check matter?**".into()),
            block("label-check ablation", study.to_html().map(Block::Html)),
            block("label-check ablation chart", study.chart()),
        ],
        Err(e) => vec![block::<Table>("label-check ablation", Err(e))],
    }
}

/// One model: metrics, gap, learning curves, confusion matrix, ROC, mistakes, the
/// robustness check, maps.
pub(crate) fn model(cfg: &Config, model: Model) -> Section {
    let mut blocks = vec![
        block("over-fitting figures", views::gap(cfg, model)),
        block("metrics", views::metrics_table(cfg, model)),
        block("learning curves", views::learning_curves(cfg, model)),
        block(
            "confusion matrix",
            views::confusion(cfg, model, SplitName::Test),
        ),
        block("ROC curves", views::roc(cfg, model)),
    ];
    let (n, cols) = (cfg.report.mistakes, cfg.report.grid_cols);
    if n > 0 {
        blocks.push(block("mistakes", views::mistakes(cfg, model, n, cols)));
    }
    blocks.extend(robustness_blocks(cfg, model));
    blocks.extend(embedding_blocks(cfg, model));
    section(model.run_name(), model.title(), blocks)
}

/// The saved robustness check of a model: headline, table, chart and one photo under
/// every corruption, or a note saying how to make it.
fn robustness_blocks(cfg: &Config, model: Model) -> Vec<Block> {
    match views::saved_robustness(cfg, model) {
        Ok(v) => vec![
            Block::Text(v.headline()),
            Block::Table(v.table),
            Block::Figure(v.chart),
            Block::Figure(v.examples),
        ],
        Err(e) => vec![block::<Table>("robustness check", Err(e))],
    }
}

/// The separation scores and both 2-D maps of a model's embeddings.
fn embedding_blocks(cfg: &Config, model: Model) -> Vec<Block> {
    let mut blocks = vec![block(
        "separation scores",
        views::separation_table(cfg, model),
    )];
    for map in [Projection::Tsne, Projection::Umap] {
        let fig = views::embedding_map(cfg, model, map, ColourBy::Class);
        blocks.push(block("embedding map", fig));
    }
    blocks
}

/// The comparison table, verdict and bars.
pub(crate) fn comparison(cfg: &Config) -> Section {
    let blocks = match crate::compare::load(cfg) {
        Ok(c) => {
            let mut b = vec![block("comparison table", c.table())];
            b.extend(c.charts().map_or_else(
                |e| vec![block::<Table>("comparison charts", Err(e))],
                |figs| figs.into_iter().map(|(_, f)| Block::Figure(f)).collect(),
            ));
            let breeds = c.breeds().and_then(|b| b.to_html()).map(Block::Html);
            b.push(block("per-breed scores", breeds));
            b
        }
        Err(e) => vec![block::<Table>("comparison", Err(e))],
    };
    section("comparison", "CNN vs transfer learning", blocks)
}

/// The effective configuration, folded away.
pub(crate) fn settings(cfg: &Config) -> Section {
    let html = format!(
        "<details>\n<summary>config.json as used</summary>\n<pre>{}</pre>\n</details>\n",
        escape(&cfg.to_pretty_json())
    );
    section("settings", "Settings", vec![Block::Html(html)])
}

/// One crib entry as HTML: the question, its answer, its follow-ups as a list.
fn crib_html(e: &crate::theory::crib::Entry) -> String {
    let items: String = e
        .follow_ups
        .iter()
        .map(|(q, a)| format!("<li><em>{}</em> {}</li>\n", escape(q), escape(a)))
        .collect();
    format!(
        "<h3>{}</h3>\n<p>{}</p>\n<ul>\n{items}</ul>\n",
        escape(&e.question),
        escape(&e.answer)
    )
}

/// Appendix: the theory crib page of notebook `00_theory` (each course question in two
/// sentences, with the follow-ups a teacher asks).
pub(crate) fn theory(cfg: &Config) -> Section {
    let html =
        crate::theory::crib::entries(cfg).map(|es| Block::Html(es.iter().map(crib_html).collect()));
    section(
        "theory",
        "Appendix: theory crib",
        vec![block("theory crib", html)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_appendix_holds_the_nine_crib_answers() {
        let cfg = Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let s = theory(&cfg);
        let [Block::Html(html)] = s.blocks.as_slice() else {
            panic!("{:?}", s.blocks)
        };
        assert_eq!(html.matches("<h3>").count(), 9, "{html}");
        assert!(
            html.contains("<li><em>") && html.contains("94×94"),
            "{html}"
        );
    }
}
