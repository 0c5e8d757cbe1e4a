//! How a notebook cell shows its result, and how it shows a failure.
//!
//! The evcxr kernel (0.22) reports an error returned with `?` at the top of a cell, and a
//! panic, as plain stderr text, and answers Jupyter that the cell *succeeded*; it also
//! runs the cells queued behind a failed one ("Run All" goes on). So the notebooks end a
//! cell with the lab5 call itself, without `?`: evcxr then shows the cell's last value
//! through [`Inline::evcxr_display`], which shows an `Ok` value inline and an `Err` as a
//! red error block. [`show_panics`] (run by [`super::setup`]) does the same for panics.
//!
//! Every block carries, next to its `text/html` and `text/plain` forms, an
//! [`ERROR_MIME`] form (`{"kind", "message", "causes"}`) by which
//! `scripts/check_notebook.py` (run by `make notebooks` and the notebook tests) finds
//! failed cells in an executed notebook.

use super::{Note, RobustnessView, Shown, SourceCode};
use crate::ablation::label_check::LabelCheckAblation;
use crate::compare::{BreedErrors, Comparison};
use crate::plot::{escape, Figure, Table};
use serde_json::json;

/// MIME type of the machine-readable form of an error block.
pub const ERROR_MIME: &str = "application/vnd.lab5.error+json";

/// Set by evcxr in the process that runs the cells.
const EVCXR_RUNTIME_VAR: &str = "EVCXR_IS_RUNTIME";

/// Whether this process runs a notebook's cells (evcxr's runtime process).
fn in_kernel() -> bool {
    std::env::var_os(EVCXR_RUNTIME_VAR).is_some()
}

/// What the block adds under every failure: the kernel does not stop "Run All".
const RUN_ALL_NOTE: &str = "The Rust kernel does not stop \u{201c}Run All\u{201d} at a failed \
     cell: fix this one first, later cells may fail because of it.";

/// A value a notebook cell shows inline: evcxr calls `evcxr_display` on a cell's last
/// value when that value has such a method. Implemented for every value a lab5 cell
/// returns, and for `anyhow::Result` of them, so that a cell can end with the call
/// itself (`learning_curves(&cfg, Model::Cnn)`, no `?`) and show either its value or its
/// error as a block.
pub trait Inline {
    /// Prints the value in evcxr's rich-output protocol.
    fn evcxr_display(&self);
}

impl<T: Inline> Inline for anyhow::Result<T> {
    /// The value, or the error (with its causes) as a red block.
    fn evcxr_display(&self) {
        match self {
            Ok(value) => value.evcxr_display(),
            Err(e) => show_error(e),
        }
    }
}

/// Nothing to show (a cell that only acts, such as training).
impl Inline for () {
    fn evcxr_display(&self) {}
}

/// Implements [`Inline`] through the type's own `evcxr_display`.
macro_rules! inline_via_inherent {
    ($($t:ty),*) => {$(
        impl Inline for $t {
            fn evcxr_display(&self) {
                <$t>::evcxr_display(self)
            }
        }
    )*};
}

inline_via_inherent!(
    Figure,
    Table,
    Note,
    Shown,
    Comparison,
    RobustnessView,
    SourceCode,
    BreedErrors,
    LabelCheckAblation
);

/// What kind of failure a block shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A call returned an error.
    Error,
    /// Code panicked.
    Panic,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Error => "error",
            Kind::Panic => "panic",
        }
    }

    fn heading(self) -> &'static str {
        match self {
            Kind::Error => "This cell failed",
            Kind::Panic => "This cell panicked (a bug in lab5 or in the cell's code)",
        }
    }
}

/// Shows `e` (its message, then each cause) as an error block.
pub(crate) fn show_error(e: &anyhow::Error) {
    let causes: Vec<String> = e.chain().skip(1).map(|c| c.to_string()).collect();
    print!("{}", error_block(Kind::Error, &e.to_string(), &causes));
}

/// In a notebook kernel, shows `e` as an error block (see [`show_error`]); elsewhere
/// nothing (the caller reports the error).
pub(crate) fn show_error_in_kernel(e: &anyhow::Error) {
    if in_kernel() {
        show_error(e);
    }
}

/// The error block in evcxr's rich-output protocol: `text/html`, `text/plain` and
/// [`ERROR_MIME`] forms of one failure.
fn error_block(kind: Kind, message: &str, causes: &[String]) -> String {
    let data = json!({ "kind": kind.name(), "message": message, "causes": causes });
    // evcxr ends a block at a line `EVCXR_END_CONTENT`: no payload line may be one. The
    // HTML and the JSON are single lines; the text indents every line it did not start.
    let indent = |s: &str| s.replace('\n', "\n  ");
    let mut plain = format!("{}: {}", kind.heading(), indent(message));
    for c in causes {
        plain.push_str(&format!("\n  caused by: {}", indent(c)));
    }
    plain.push_str(&format!("\n{RUN_ALL_NOTE}"));
    format!(
        "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT\n\
         EVCXR_BEGIN_CONTENT text/plain\n{plain}\nEVCXR_END_CONTENT\n\
         EVCXR_BEGIN_CONTENT {ERROR_MIME}\n{data}\nEVCXR_END_CONTENT\n",
        error_html(kind, message, causes)
    )
}

/// `s` escaped for HTML on one line (its line breaks as character references, which the
/// block's `white-space: pre-wrap` still shows as breaks).
fn html_line(s: &str) -> String {
    escape(s).replace('\n', "&#10;")
}

/// The block as HTML on one line: heading, message, causes, and the note on "Run All".
fn error_html(kind: Kind, message: &str, causes: &[String]) -> String {
    let causes: String = causes
        .iter()
        .map(|c| format!("<li>{}</li>", html_line(c)))
        .collect();
    let causes = if causes.is_empty() {
        String::new()
    } else {
        format!("<div>caused by:</div><ul style=\"margin:0.2em 0\">{causes}</ul>")
    };
    format!(
        "<div class=\"lab5-error\" style=\"border-left:6px solid #c62828;background:#fdecea;\
         color:#3e0000;padding:0.6em 1em;font-family:var(--jp-code-font-family,monospace);\
         white-space:pre-wrap\"><div style=\"font-weight:bold;color:#c62828\">&#x2716; {}</div>\
         <div style=\"font-weight:bold;margin:0.3em 0\">{}</div>{causes}\
         <div style=\"font-style:italic;margin-top:0.4em\">{}</div></div>",
        kind.heading(),
        html_line(message),
        escape(RUN_ALL_NOTE)
    )
}

/// In a notebook kernel (evcxr's runtime process), makes every later panic show an error
/// block, after the usual `thread '…' panicked at …` line on stderr (without the
/// backtrace the default hook adds under `RUST_BACKTRACE`, which evcxr sets). Elsewhere
/// (the command line, tests) it does nothing. Installing again replaces the hook, so
/// running the setup cell twice still shows one block per panic.
pub(crate) fn show_panics() {
    if !in_kernel() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let message = panic_message(info.payload());
        let location = info
            .location()
            .map(|l| l.to_string())
            .unwrap_or_else(|| "an unknown place".into());
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        eprintln!("thread '{name}' panicked at {location}:\n{message}");
        let message = format!("{message} (at {location})");
        print!("{}", error_block(Kind::Panic, &message, &[]));
    }));
}

/// The text of a panic's payload (`panic!` with a literal or with a format).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a text message)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    /// The payload of each `EVCXR_BEGIN_CONTENT <mime>` block of `out`, by MIME type.
    fn blocks(out: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let mut lines = out.lines();
        while let Some(line) = lines.next() {
            let mime = line.strip_prefix("EVCXR_BEGIN_CONTENT ").expect("a block");
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|l| *l != "EVCXR_END_CONTENT")
                .collect();
            found.push((mime.to_string(), body.join("\n")));
        }
        found
    }

    #[test]
    fn an_error_block_has_html_text_and_json_forms() {
        let e = Err::<(), _>(anyhow::anyhow!("no such file <x>"))
            .context("no data set yet: run get_data")
            .unwrap_err();
        let causes: Vec<String> = e.chain().skip(1).map(|c| c.to_string()).collect();
        let out = error_block(Kind::Error, &e.to_string(), &causes);
        let b = blocks(&out);
        let mimes: Vec<&str> = b.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(mimes, ["text/html", "text/plain", ERROR_MIME]);
        assert!(
            b[0].1.contains("no data set yet: run get_data"),
            "{}",
            b[0].1
        );
        assert!(
            b[0].1.contains("no such file &lt;x&gt;"),
            "escaped: {}",
            b[0].1
        );
        assert!(b[1].1.starts_with("This cell failed: no data set yet"));
        let data: serde_json::Value = serde_json::from_str(&b[2].1).unwrap();
        assert_eq!(data["kind"], "error");
        assert_eq!(data["message"], "no data set yet: run get_data");
        assert_eq!(data["causes"], json!(["no such file <x>"]));
    }

    #[test]
    fn a_message_cannot_end_a_block_early() {
        let msg = "line one\nEVCXR_END_CONTENT\nline three";
        let out = error_block(Kind::Panic, msg, &[]);
        let b = blocks(&out);
        assert_eq!(b.len(), 3, "{out}");
        assert!(b[0]
            .1
            .contains("line one&#10;EVCXR_END_CONTENT&#10;line three"));
        assert!(b[1]
            .1
            .contains("line one\n  EVCXR_END_CONTENT\n  line three"));
        let data: serde_json::Value = serde_json::from_str(&b[2].1).unwrap();
        assert_eq!(data["message"], msg);
        assert_eq!(data["kind"], "panic");
    }

    #[test]
    fn panic_payloads_become_text() {
        assert_eq!(panic_message(&"static text"), "static text");
        assert_eq!(panic_message(&String::from("formatted 3")), "formatted 3");
        assert_eq!(panic_message(&42_u32), "(a panic without a text message)");
    }
}
