//! The report of the whole lab: one self-contained HTML page (`runs/<date>/report.html`)
//! with every table and chart of the runs: data counts and sample photos, the label
//! check, per model the metrics, gap, learning curves, confusion matrix, ROC curves,
//! most confident mistakes, the robustness check (when measured) and embedding maps, and
//! the comparison with its verdict and bars; an appendix with the theory crib page. Charts are inline SVG; the page links to nothing outside itself.
//!
//! In a notebook, `lab5::report::build(&cfg)?` shows the page inline;
//! `lab5::report::write(&cfg)?` saves it and returns the path.

mod html;
mod sections;

pub(crate) use html::Document;

use crate::config::Config;
use crate::views::Model;
use anyhow::Result;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// File name of the report inside `runs/<date>/`.
pub(crate) const REPORT_FILE: &str = "report.html";

/// Builds the report from the files of the data folder and the runs folder.
pub(crate) fn build(cfg: &Config) -> Result<Document> {
    let (date, time) = utc_now();
    let sections = vec![
        sections::summary(cfg),
        sections::data(cfg),
        sections::labels(cfg),
        sections::model(cfg, Model::Cnn),
        sections::model(cfg, Model::Transfer),
        sections::comparison(cfg),
        sections::settings(cfg),
        sections::theory(cfg),
    ];
    Ok(Document {
        title: "lab5: cats vs dogs, CNN from scratch vs transfer learning".into(),
        subtitle: format!(
            "generated {date} {time} UTC from {} and {}",
            cfg.data_dir().display(),
            cfg.runs_dir().display()
        ),
        sections,
    })
}

/// `runs/<YYYY-MM-DD>/report.html` for today (UTC).
pub(crate) fn report_path(cfg: &Config) -> PathBuf {
    cfg.runs_dir().join(utc_now().0).join(REPORT_FILE)
}

/// Builds the report and writes it to [`report_path`]; returns the path.
pub(crate) fn write(cfg: &Config) -> Result<PathBuf> {
    let path = report_path(cfg);
    build(cfg)?.save(&path)?;
    Ok(path)
}

/// Today's date (`YYYY-MM-DD`) and time (`HH:MM`) in UTC.
pub(crate) fn utc_now() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let (h, min) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    (format!("{y:04}-{m:02}-{d:02}"), format!("{h:02}:{min:02}"))
}

/// Year, month, day of a count of days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn days_since_epoch_become_calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
