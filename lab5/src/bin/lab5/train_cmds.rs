//! `lab5 audit`, `lab5 train`, `lab5 ablate`, `lab5 evaluate`, `lab5 predict`, `lab5 explain`,
//! `lab5 robustness`.

use clap::Args;
use lab5::Config;
use std::path::PathBuf;

/// Arguments of `lab5 audit`.
#[derive(Args)]
pub struct AuditArgs {
    /// Mark flagged images as excluded in the manifest (reversible with --undo).
    #[arg(long)]
    pub apply: bool,
    /// Clear every exclusion made by --apply.
    #[arg(long, conflicts_with = "apply")]
    pub undo: bool,
}

/// Arguments of `lab5 train`.
#[derive(Args)]
pub struct TrainArgs {
    /// `cnn` or `transfer`.
    #[arg(value_parser = ["cnn", "transfer"])]
    pub model: String,
    /// Reuse a finished run trained with the same settings and data instead of training
    /// again (the default trains, replacing the run only when training succeeds).
    #[arg(long)]
    pub reuse: bool,
}

/// Arguments of `lab5 ablate`.
#[derive(Args)]
pub struct AblateArgs {
    /// Train every variant again, even when its run is current.
    #[arg(long)]
    pub force: bool,
    /// Instead of the recipe's variants: does the label check matter? The transfer head
    /// trained with and without the photos the label check flags (seconds, on the cached
    /// backbone features), both scored on the same test photos.
    #[arg(long)]
    pub label_check: bool,
    /// With --label-check: the CNN too, at the ablation budget (SLOW: two CNN trainings,
    /// minutes to hours on a CPU).
    #[arg(long, requires = "label_check")]
    pub cnn: bool,
}

/// Runs `lab5 ablate`: the recipe and its variants (config `ablation`), then the table;
/// with `--label-check`, the label check's ablation instead.
pub fn ablate(cfg: &Config, a: AblateArgs) -> anyhow::Result<()> {
    if a.label_check {
        use lab5::ablation::label_check;
        let study = label_check::run(cfg, a.cnn, a.force)?;
        println!("{}", study.to_markdown());
        println!("written to {}", label_check::dir(cfg).display());
        return Ok(());
    }
    let study = lab5::ablation::run(cfg, a.force)?;
    println!("{}", study.to_markdown());
    println!("written to {}", lab5::ablation::dir(cfg).display());
    Ok(())
}

/// Arguments of `lab5 evaluate`.
#[derive(Args)]
pub struct EvaluateArgs {
    /// The run folder, e.g. runs/cnn. Without it: both runs (runs/cnn and
    /// runs/transfer, current for the config) side by side, leaving out photos whose bytes
    /// are in the lab's data set.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// An ImageFolder directory (DIR/cat, DIR/dog). Default without --run:
    /// paths.other_collection.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Arguments of `lab5 explain`.
#[derive(Args)]
pub struct ExplainArgs {
    /// The run folder, e.g. runs/cnn or runs/transfer.
    #[arg(long)]
    pub run: PathBuf,
    /// Folder for the PNG files (default: <run>/explain).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Photo files (JPEG, PNG or WebP).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Arguments of `lab5 predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// The run folder, e.g. runs/cnn.
    #[arg(long)]
    pub run: PathBuf,
    /// Image files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Arguments of `lab5 robustness`.
#[derive(Args)]
pub struct RobustnessArgs {
    /// The run folder, e.g. runs/cnn.
    #[arg(long)]
    pub run: PathBuf,
    /// Keep a saved result measured with the same suite, seed, weights and data instead
    /// of measuring again.
    #[arg(long)]
    pub reuse: bool,
}

/// Runs `lab5 audit`.
pub fn audit(cfg: &Config, a: AuditArgs) -> anyhow::Result<()> {
    use lab5::data::Manifest;
    use lab5::labels::audit;
    let manifest_path = Manifest::path_in(&cfg.data_dir());
    let mut manifest = Manifest::load_or_empty(&cfg.data_dir())?;
    if manifest.records.is_empty() {
        anyhow::bail!(
            "no manifest at {}: run `lab5 import` or `lab5 collect` first",
            manifest_path.display()
        );
    }
    if a.undo {
        let n = audit::undo(&mut manifest);
        manifest.save(&manifest_path)?;
        println!("cleared {n} exclusion(s) in {}", manifest_path.display());
        return Ok(());
    }
    let device = lab5::runtime::init(cfg)?;
    let report = audit::Audit::run(cfg, &manifest, device)?;
    report.save_csv(&audit::csv_path(cfg))?;
    print!("{}", report.summary());
    print_flagged(cfg, &report)?;
    if a.apply {
        let n = audit::apply(&mut manifest, &report);
        manifest.save(&manifest_path)?;
        println!("excluded {n} more image(s) from training; `lab5 audit --undo` restores them");
    }
    Ok(())
}

/// Flagged photos listed in the terminal at most (all are in `audit.csv` and the grid).
const FLAGGED_LISTED: usize = 30;
/// Flagged photos drawn in `audit-flagged.png` at most, and the grid's columns.
const FLAGGED_DRAWN: usize = 48;
const GRID_COLS: usize = 8;

fn print_flagged(cfg: &Config, report: &lab5::labels::audit::Audit) -> anyhow::Result<()> {
    let flagged = report.flagged();
    println!("wrote {}", lab5::labels::audit::csv_path(cfg).display());
    if flagged.is_empty() {
        return Ok(());
    }
    for r in flagged.iter().take(FLAGGED_LISTED) {
        let z = r.zero_shot;
        let (c, d, n) = (z.p_cat, z.p_dog, z.p_neither);
        println!(
            "  {:<18} {:<6} cat {c:.3} dog {d:.3} neither {n:.3}  {}",
            r.verdict.name(),
            r.label.name(),
            r.path.display()
        );
    }
    if flagged.len() > FLAGGED_LISTED {
        println!("  ... {} more in the CSV", flagged.len() - FLAGGED_LISTED);
    }
    let (svg, png) = report
        .flagged_grid(FLAGGED_DRAWN, GRID_COLS)?
        .save(&cfg.data_dir().join("audit-flagged"))?;
    println!(
        "photos of the flagged images: {} ({})",
        png.display(),
        svg.display()
    );
    Ok(())
}

/// Runs `lab5 train`: trains, prints one line per epoch, records `runs/<model>/`.
pub fn train(cfg: &Config, a: TrainArgs) -> anyhow::Result<()> {
    match a.model.as_str() {
        "cnn" => lab5::train::train_cnn(cfg, !a.reuse).map(|_| ()),
        "transfer" => lab5::train::train_transfer(cfg, !a.reuse).map(|_| ()),
        other => unreachable!("clap's value_parser allows cnn or transfer, not {other:?}"),
    }
}

/// Runs `lab5 evaluate`: with `--run`, metrics of that run on an ImageFolder directory,
/// printed and saved in the run; without, both models on the directory (default
/// `paths.other_collection`) beside their test accuracy.
pub fn evaluate(cfg: &Config, a: EvaluateArgs) -> anyhow::Result<()> {
    lab5::runtime::init(cfg)?;
    match (a.run, a.data) {
        (Some(run), Some(data)) => evaluate_run(cfg, &run, &data),
        (Some(_), None) => {
            anyhow::bail!("--run needs --data DIR (an ImageFolder: DIR/cat, DIR/dog)")
        }
        (None, data) => evaluate_both(cfg, data),
    }
}

/// `lab5 evaluate --data DIR` without `--run`: both models side by side.
fn evaluate_both(cfg: &Config, data: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = match (data, &cfg.paths.other_collection) {
        (Some(d), _) => d,
        (None, Some(d)) => cfg.resolve(d),
        (None, None) => anyhow::bail!("no collection to evaluate on: give --data DIR (an ImageFolder: DIR/cat, DIR/dog) or set paths.other_collection in the config"),
    };
    let e = lab5::views::evaluate_collection(cfg, &dir)?;
    for m in &e.models {
        for (path, why) in &m.collection.skipped {
            eprintln!("skipped {}: {why}", path.display());
        }
    }
    println!("both models on {}\n\n{}\n", dir.display(), e.to_markdown());
    for line in e.verdict() {
        println!("{line}");
    }
    for m in &e.models {
        println!("saved {}", m.collection.saved_to.display());
    }
    Ok(())
}

/// `lab5 evaluate --run RUN --data DIR`.
fn evaluate_run(cfg: &Config, run: &std::path::Path, data: &std::path::Path) -> anyhow::Result<()> {
    let (e, in_data_set) = lab5::views::evaluate_run_on(cfg, run, data)?;
    if in_data_set > 0 {
        eprintln!(
            "left out {in_data_set} photo{} whose bytes are in the lab's data set ({}): scores on photos the model may have trained on say nothing about new ones",
            if in_data_set == 1 { "" } else { "s" },
            lab5::data::Manifest::path_in(&cfg.data_dir()).display()
        );
    }
    for (path, why) in &e.skipped {
        eprintln!("skipped {}: {why}", path.display());
    }
    if !e.left_out.is_empty() {
        eprintln!(
            "not taken (no class folder, or hidden): {}",
            e.left_out.join(", ")
        );
    }
    let m = &e.metrics;
    println!(
        "{} on {} ({} images, {} skipped)",
        run.display(),
        data.display(),
        m.n,
        e.skipped.len()
    );
    println!(
        "accuracy {:.2} %  precision {:.2} %  recall {:.2} %  f1 {:.4}",
        100.0 * m.accuracy,
        100.0 * m.precision,
        100.0 * m.recall,
        m.f1
    );
    println!("roc_auc {:.4}  log_loss {:.4}  confusion [[cat->cat, cat->dog], [dog->cat, dog->dog]] = {:?}", m.roc_auc, m.log_loss, m.confusion);
    println!("saved {}", e.saved_to.display());
    Ok(())
}

/// Runs `lab5 predict`: one line per file on stdout (`FILE: LABEL (p = P)`); files that
/// cannot be predicted get an error line on stderr and make the exit status non-zero.
pub fn predict(cfg: &Config, a: PredictArgs) -> anyhow::Result<()> {
    lab5::runtime::init(cfg)?;
    let results = lab5::train::predict(&a.run, &a.images)?;
    report_per_file(&a.images, results, "predicted", |p| {
        format!("{} (p = {:.3})", p.label, p.probability)
    })
}

/// Prints `FILE: <shown result>` on stdout for each file that worked and `FILE: error: ...`
/// on stderr for each that did not; fails naming how many could not be `verb` (e.g.
/// "predicted").
fn report_per_file<T>(
    files: &[std::path::PathBuf],
    results: Vec<anyhow::Result<T>>,
    verb: &str,
    show: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut failed = 0;
    for (path, r) in files.iter().zip(results) {
        match r {
            Ok(v) => println!("{}: {}", path.display(), show(&v)),
            Err(e) => {
                failed += 1;
                let _ = std::io::stdout().flush();
                eprintln!("{}: error: {e:#}", path.display());
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} file(s) could not be {verb} (see the lines above)",
            files.len()
        );
    }
    Ok(())
}

/// Runs `lab5 explain`: one PNG per photo (the photo, its "dog" and "cat" Grad-CAM
/// maps); files that cannot be read get an error line on stderr and make the exit status
/// non-zero.
pub fn explain(cfg: &Config, a: ExplainArgs) -> anyhow::Result<()> {
    lab5::runtime::init(cfg)?;
    let out = a.out.clone().unwrap_or_else(|| a.run.join("explain"));
    let results = lab5::explain::write_overlays(&a.run, &a.images, &out, &cfg.explain)?;
    report_per_file(&a.images, results, "explained", |png| {
        png.display().to_string()
    })
}

/// Runs `lab5 robustness`: the run's test accuracy under every corruption and severity,
/// printed, saved as `robustness.json` and charted in the run folder.
pub fn robustness(cfg: &Config, a: RobustnessArgs) -> anyhow::Result<()> {
    let (r, reused) = lab5::robustness::check_or_reuse(cfg, &a.run, !a.reuse)?;
    println!("{r}");
    let stem = lab5::robustness::chart_stem(&a.run);
    let how = if reused { "kept" } else { "wrote" };
    println!(
        "{how} {} and {}.{{svg,png}}",
        lab5::robustness::result_path(&a.run).display(),
        stem.display()
    );
    Ok(())
}
