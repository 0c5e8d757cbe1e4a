//! A small HTML document model for the report: sections of blocks (text, tables,
//! figures, notes), rendered to one self-contained page: figures are inline SVG (their
//! photos are data URIs already), the style sheet is inline, and nothing is linked.

use crate::plot::{escape, Figure, Note, Shown, Table};
use anyhow::Result;
use std::path::Path;

/// The page's style sheet (inline: the report must open offline and alone).
const STYLE: &str = "body{font-family:'DejaVu Sans',Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:0.2em}h2{border-bottom:2px solid #ddd;padding-bottom:0.2em;margin-top:2em}
.sub{color:#666}nav ol{columns:2}
table.lab5{border-collapse:collapse;margin:1em 0;font-size:0.92em}
table.lab5 th,table.lab5 td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}
table.lab5 th{background:#f0f0f0}table.lab5 td:first-child,table.lab5 th:first-child{text-align:left}
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto;display:block}
pre{background:#f6f6f6;padding:0.8em;overflow-x:auto;font-size:0.85em}
.note{background:#fffbe6;border-left:4px solid #e6c200;padding:0.5em 1em}
ul.verdict li{margin:0.3em 0}";

/// One piece of a section.
#[derive(Debug, Clone)]
pub(crate) enum Block {
    /// Plain text with light Markdown (paragraphs, `**bold**`, fenced code).
    Text(String),
    /// HTML made by this crate (already escaped).
    Html(String),
    /// A table.
    Table(Table),
    /// A chart, inline as SVG.
    Figure(Figure),
    /// A note: why something is missing, or a short remark.
    Note(Note),
}

impl From<Shown> for Block {
    fn from(s: Shown) -> Block {
        match s {
            Shown::Figure(f) => Block::Figure(f),
            Shown::Table(t) => Block::Table(t),
            Shown::Note(n) => Block::Note(n),
        }
    }
}

impl From<Figure> for Block {
    fn from(f: Figure) -> Block {
        Block::Figure(f)
    }
}

impl From<Table> for Block {
    fn from(t: Table) -> Block {
        Block::Table(t)
    }
}

impl From<Note> for Block {
    fn from(n: Note) -> Block {
        Block::Note(n)
    }
}

/// A titled part of the report.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    /// Anchor id (`[a-z0-9-]`).
    pub id: String,
    /// Heading.
    pub title: String,
    /// Contents in order.
    pub blocks: Vec<Block>,
}

/// The whole report.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// Page title and main heading.
    pub title: String,
    /// Line under the heading (date, data, config).
    pub subtitle: String,
    /// The sections, in order.
    pub sections: Vec<Section>,
}

/// `**bold**` and `` `code` `` inside one escaped paragraph.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(text).split("**").enumerate() {
        let part = code_spans(part);
        if i % 2 == 1 {
            out.push_str(&format!("<strong>{part}</strong>"));
        } else {
            out.push_str(&part);
        }
    }
    out
}

fn code_spans(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return text.to_string(); // unbalanced: leave as it is
    }
    let wrap = |(i, p): (usize, &&str)| {
        if i % 2 == 1 {
            format!("<code>{p}</code>")
        } else {
            p.to_string()
        }
    };
    parts.iter().enumerate().map(wrap).collect()
}

/// Light Markdown to HTML: fenced blocks become `<pre>`, the rest paragraphs.
pub(crate) fn markdown(text: &str) -> String {
    let mut out = String::new();
    for (i, chunk) in text.split("```").enumerate() {
        if i % 2 == 1 {
            let body = chunk.split_once('\n').map_or(chunk, |(_, rest)| rest);
            out.push_str(&format!("<pre>{}</pre>\n", escape(body.trim_end())));
            continue;
        }
        for para in chunk.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
            out.push_str(&format!("<p>{}</p>\n", inline(para)));
        }
    }
    out
}

/// The SVG element of a figure, without an XML prolog (it is inlined in HTML).
fn inline_svg(svg: &str) -> &str {
    match (svg.trim_start().starts_with("<?xml"), svg.find("<svg")) {
        (true, Some(start)) => &svg[start..],
        _ => svg,
    }
}

impl Block {
    fn to_html(&self) -> String {
        match self {
            Block::Text(t) => markdown(t),
            Block::Html(h) => h.clone(),
            Block::Table(t) => t.to_html(),
            Block::Figure(f) => format!(
                "<figure role=\"img\" aria-label=\"{}\">\n{}\n</figure>\n",
                escape(f.title()),
                inline_svg(f.svg())
            ),
            Block::Note(n) => format!("<div class=\"note\">{}</div>\n", markdown(&n.0)),
        }
    }
}

impl Document {
    /// The page as one HTML string.
    pub(crate) fn to_html(&self) -> String {
        let mut html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n<h1>{t}</h1>\n<p class=\"sub\">{}</p>\n",
            escape(&self.subtitle),
            t = escape(&self.title),
        );
        html.push_str(&self.contents());
        for s in &self.sections {
            html.push_str(&format!(
                "<section id=\"{}\">\n<h2>{}</h2>\n",
                s.id,
                escape(&s.title)
            ));
            s.blocks.iter().for_each(|b| html.push_str(&b.to_html()));
            html.push_str("</section>\n");
        }
        html.push_str("</body>\n</html>\n");
        html
    }

    fn contents(&self) -> String {
        let items: String = self
            .sections
            .iter()
            .map(|s| format!("<li><a href=\"#{}\">{}</a></li>\n", s.id, escape(&s.title)))
            .collect();
        format!("<nav>\n<ol>\n{items}</ol>\n</nav>\n")
    }

    /// Writes the page to `path` atomically.
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        crate::util::write_atomic(path, self.to_html().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_and_formats_paragraphs_bold_code_and_fences() {
        let html = markdown("**Gap: 3 < 5** and `x`\n\nsecond & last\n```text\na <b>\n```");
        assert_eq!(
            html,
            "<p><strong>Gap: 3 &lt; 5</strong> and <code>x</code></p>\n<p>second &amp; last</p>\n<pre>a &lt;b&gt;</pre>\n"
        );
    }

    #[test]
    fn svg_prolog_is_dropped_for_inlining() {
        assert_eq!(
            inline_svg("<?xml version=\"1.0\"?>\n<svg a>x</svg>"),
            "<svg a>x</svg>"
        );
        assert_eq!(inline_svg("<svg b></svg>"), "<svg b></svg>");
    }

    #[test]
    fn document_links_only_to_its_own_sections() {
        let doc = Document {
            title: "T <1>".into(),
            subtitle: "s".into(),
            sections: vec![Section {
                id: "data".into(),
                title: "Data".into(),
                blocks: vec![Block::Note(Note("none yet".into()))],
            }],
        };
        let html = doc.to_html();
        assert!(html.contains("<title>T &lt;1&gt;</title>"));
        assert!(html.contains("<a href=\"#data\">Data</a>"));
        assert!(html.contains("<section id=\"data\">"));
        assert!(html.contains("<div class=\"note\"><p>none yet</p>"));
        assert_eq!(html.matches("href=").count(), 1);
    }
}
