//! Which breeds fail: both models' test accuracy per breed (the manifest's `breed_name`;
//! photos without a breed as one group per class), each with its 95 % Wilson interval,
//! and the breeds each model calls the other species most often. Every photo of a breed
//! has the breed's class, so each mistake on a breed is a photo of it called the other
//! species. Built from the runs' `predictions.csv` with
//! [`crate::train::breeds::per_breed`].

use crate::data::{Class, Manifest};
use crate::plot::{bar_chart_wide, shorten_to, show_html, verdict_then_table, Figure, Table};
use crate::train::breeds::{breeds_by_id, per_breed, BreedAccuracy, GroupAccuracy, NO_BREED};
use crate::train::record::Scored;
use anyhow::Result;
use polars::prelude::df;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Characters of a breed name under its bars (longer names are cut).
const CATEGORY_CHARS: usize = 16;

/// One breed's test photos and how each model did on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreedRow {
    /// Breed name as in the manifest, or [`crate::train::breeds::NO_BREED`].
    pub breed: String,
    /// The class of its photos.
    pub class: Class,
    /// The CNN's right answers on its test photos.
    pub cnn: GroupAccuracy,
    /// The transfer model's.
    pub transfer: GroupAccuracy,
}

impl BreedRow {
    /// Mistakes of both models together (the table's order).
    fn mistakes(&self) -> usize {
        self.cnn.mistakes() + self.transfer.mistakes()
    }

    /// The breed's name, or for photos without one `(no breed: cats)`.
    pub fn name(&self) -> String {
        if self.breed == NO_BREED {
            format!("(no breed: {}s)", self.class)
        } else {
            self.breed.clone()
        }
    }

    /// Test photos of the breed (the larger count, should the runs differ).
    pub fn photos(&self) -> usize {
        self.cnn.n.max(self.transfer.n)
    }
}

/// Both models' test accuracy per breed (`comparison.json` → `breeds`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreedErrors {
    /// Every breed of the test split: most mistakes of both models first, then most
    /// photos, then class and name.
    pub rows: Vec<BreedRow>,
    /// Breeds named per model in [`BreedErrors::worst`] and drawn in the chart
    /// (`report.worst_breeds`).
    pub shown: usize,
}

/// Which model's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The CNN trained from scratch.
    Cnn,
    /// The transfer model.
    Transfer,
}

impl Side {
    fn of(self, r: &BreedRow) -> &GroupAccuracy {
        match self {
            Side::Cnn => &r.cnn,
            Side::Transfer => &r.transfer,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Side::Cnn => "CNN",
            Side::Transfer => "transfer model",
        }
    }
}

impl BreedErrors {
    /// Both runs' test predictions (`predictions.csv` rows; other splits are skipped)
    /// grouped by the breeds of `manifest`; `shown` breeds per model in the lists.
    pub fn of_test(
        manifest: &Manifest,
        cnn: &[Scored],
        transfer: &[Scored],
        shown: usize,
    ) -> BreedErrors {
        let breed_of = breeds_by_id(manifest);
        let mut rows: BTreeMap<(Class, String), BreedRow> = BTreeMap::new();
        let mut put = |groups: Vec<BreedAccuracy>, side: Side| {
            for g in groups {
                let row = rows
                    .entry((g.class, g.breed.clone()))
                    .or_insert_with(|| BreedRow {
                        breed: g.breed,
                        class: g.class,
                        cnn: GroupAccuracy::default(),
                        transfer: GroupAccuracy::default(),
                    });
                match side {
                    Side::Cnn => row.cnn = g.score,
                    Side::Transfer => row.transfer = g.score,
                }
            }
        };
        put(per_breed(&breed_of, cnn), Side::Cnn);
        put(per_breed(&breed_of, transfer), Side::Transfer);
        let mut rows: Vec<BreedRow> = rows.into_values().collect();
        rows.sort_by(|a, b| {
            (b.mistakes(), b.photos())
                .cmp(&(a.mistakes(), a.photos()))
                .then_with(|| (a.class, &a.breed).cmp(&(b.class, &b.breed)))
        });
        BreedErrors { rows, shown }
    }

    /// The breeds `side` calls the other species most often: at most `shown` breeds with
    /// at least one mistake, most mistakes first, then the lower accuracy.
    pub fn worst(&self, side: Side) -> Vec<&BreedRow> {
        let mut v: Vec<&BreedRow> = self
            .rows
            .iter()
            .filter(|r| side.of(r).mistakes() > 0)
            .collect();
        let acc = |r: &BreedRow| side.of(r).accuracy.unwrap_or(1.0);
        v.sort_by(|a, b| {
            side.of(b)
                .mistakes()
                .cmp(&side.of(a).mistakes())
                .then_with(|| acc(a).total_cmp(&acc(b)))
        });
        v.truncate(self.shown);
        v
    }

    /// One sentence per model: the breeds it calls the other species most often, with
    /// how many of their test photos.
    pub fn sentences(&self) -> Vec<String> {
        [Side::Cnn, Side::Transfer]
            .map(|side| {
                let worst = self.worst(side);
                let total: usize = self.rows.iter().map(|r| side.of(r).mistakes()).sum();
                if worst.is_empty() {
                    return format!(
                        "The {} calls no test photo the other species.",
                        side.title()
                    );
                }
                let items: Vec<String> = worst
                    .iter()
                    .map(|r| {
                        let g = side.of(r);
                        format!("{} ({} of {} test photos)", r.name(), g.mistakes(), g.n)
                    })
                    .collect();
                let noun = if total == 1 { "mistake" } else { "mistakes" };
                format!(
                    "The {} calls the other species most often on: {} ({total} {noun} in all).",
                    side.title(),
                    items.join(", ")
                )
            })
            .into()
    }

    /// Every breed as a table: `breed`, `class`, `photos`, each model's right answers and
    /// accuracy with its 95 % Wilson interval (`86.7 % [70.3, 94.7]`).
    pub fn table(&self) -> Result<Table> {
        let text =
            |f: &dyn Fn(&BreedRow) -> String| -> Vec<String> { self.rows.iter().map(f).collect() };
        let count = |f: &dyn Fn(&BreedRow) -> usize| -> Vec<u64> {
            self.rows.iter().map(|r| f(r) as u64).collect()
        };
        Ok(Table(df!(
            "breed" => text(&|r| r.breed.clone()),
            "class" => text(&|r| r.class.name().to_string()),
            "photos" => count(&|r| r.photos()),
            "CNN right" => count(&|r| r.cnn.correct),
            "CNN accuracy [95 % CI]" => text(&|r| r.cnn.shown()),
            "transfer right" => count(&|r| r.transfer.correct),
            "transfer accuracy [95 % CI]" => text(&|r| r.transfer.shown()),
        )?))
    }

    /// The lists, then the table, as HTML (what a notebook cell and the report show).
    pub fn to_html(&self) -> Result<String> {
        Ok(verdict_then_table(&self.sentences(), &self.table()?))
    }

    /// Shows the lists and the table inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        show_html(self.to_html(), &self.sentences().join("\n"));
    }

    /// The lists and the table as Markdown.
    pub(crate) fn to_markdown(&self) -> String {
        let mut md = String::from("## Per breed (test split)\n\n");
        for s in self.sentences() {
            md.push_str(&format!("- {s}\n"));
        }
        md.push_str("\n| breed | class | photos | CNN | transfer |\n|---|---|---:|---:|---:|\n");
        for r in &self.rows {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.breed,
                r.class,
                r.photos(),
                r.cnn.shown(),
                r.transfer.shown()
            ));
        }
        md
    }

    /// Both models' test accuracy (%) on the breeds with the most mistakes (at most
    /// `shown`; every breed when no model errs), one group per breed.
    ///
    /// # Errors
    /// A comparison without test photos.
    pub fn chart(&self) -> Result<Figure> {
        let mut picked: Vec<&BreedRow> = self.rows.iter().filter(|r| r.mistakes() > 0).collect();
        if picked.is_empty() {
            picked = self.rows.iter().collect();
        }
        picked.truncate(self.shown);
        let categories: Vec<String> = picked
            .iter()
            .map(|r| {
                let name = shorten_to(&r.name(), CATEGORY_CHARS);
                format!("{name}\n{} photos", r.photos())
            })
            .collect();
        let series: Vec<(String, Vec<f64>)> = [Side::Cnn, Side::Transfer]
            .iter()
            .map(|&side| {
                let v = picked
                    .iter()
                    .map(|r| 100.0 * side.of(r).accuracy.unwrap_or(0.0))
                    .collect();
                (side.title().to_string(), v)
            })
            .collect();
        let title = "Test accuracy on the breeds with the most mistakes";
        bar_chart_wide(title, "accuracy, %", &categories, &series)
    }
}
