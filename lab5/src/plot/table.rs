//! [`Table`]: a polars `DataFrame` that shows as an HTML table in notebooks and as plain
//! text in terminals.

use polars::prelude::{AnyValue, DataFrame};
use std::fmt;

/// Rows shown in the HTML form before the rest is summarised as "... N more rows".
const MAX_HTML_ROWS: usize = 200;

/// A table of results; the final value of a notebook cell shows as an HTML table.
#[derive(Debug, Clone)]
pub struct Table(pub DataFrame);

impl Table {
    /// The table as a self-contained HTML `<table>` (values escaped).
    pub(crate) fn to_html(&self) -> String {
        let df = &self.0;
        let mut html = String::from("<table class=\"lab5\">\n<thead><tr>");
        for name in df.get_column_names() {
            html.push_str(&format!("<th>{}</th>", escape(name.as_str())));
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        for row in 0..df.height().min(MAX_HTML_ROWS) {
            html.push_str(&html_row(df, row));
        }
        html.push_str("</tbody>\n</table>\n");
        if df.height() > MAX_HTML_ROWS {
            html.push_str(&format!(
                "<p>... {} more rows</p>\n",
                df.height() - MAX_HTML_ROWS
            ));
        }
        html
    }

    /// Shows the table inline in an evcxr notebook as `text/html`.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
    }
}

/// `items` as a verdict's bulleted list (`<ul class="verdict">`, escaped), then `table`:
/// the HTML of a judged result in notebooks and the report.
pub(crate) fn verdict_then_table(items: &[String], table: &Table) -> String {
    let items: String = items
        .iter()
        .map(|s| format!("<li>{}</li>\n", escape(s)))
        .collect();
    format!("<ul class=\"verdict\">\n{items}</ul>\n{}", table.to_html())
}

/// Shows `html` inline in an evcxr notebook as `text/html`; when it could not be made,
/// `text` and the error as plain text.
pub(crate) fn show_html(html: anyhow::Result<String>, text: &dyn fmt::Display) {
    match html {
        Ok(html) => println!("EVCXR_BEGIN_CONTENT text/html\n{html}\nEVCXR_END_CONTENT"),
        Err(e) => println!("{text}\n(table: {e:#})"),
    }
}

fn html_row(df: &DataFrame, row: usize) -> String {
    let mut tr = String::from("<tr>");
    for col in df.columns() {
        let cell = col.get(row).map(|v| cell_text(&v)).unwrap_or_default();
        tr.push_str(&format!("<td>{}</td>", escape(&cell)));
    }
    tr.push_str("</tr>\n");
    tr
}

/// A cell's text: strings without quotes, nulls empty, the rest as polars prints them.
fn cell_text(v: &AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => (*s).to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Escapes the five characters that are special in HTML text and attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
