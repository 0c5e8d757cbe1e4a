//! Code on the page: notebooks `03_cnn` and `05_transfer` show the model definition and the
//! training step as lab5 compiles them, cut out of the source files embedded in the crate
//! with `include_str!` (so the text shown is the code the kernel runs, never a copy that
//! drifts). An item is found by name with `syn` (a full Rust parser), not by matching
//! braces, and shown with its doc comment as a highlighted `rust` block.
//!
//! The same finder ([`find_item`]) checks the `*Code:*` lines under every notebook section
//! (`tests/code_lines.rs`): each names a file and items of it, which must exist.

use anyhow::{bail, Context, Result};
use syn::spanned::Spanned;

/// The source files a notebook can show, by their path from the project root, embedded
/// when lab5 is compiled.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("lab5/src/models/cnn.rs", include_str!("../models/cnn.rs")),
    (
        "lab5/src/models/transfer.rs",
        include_str!("../models/transfer.rs"),
    ),
    (
        "lab5/src/train/trainer.rs",
        include_str!("../train/trainer.rs"),
    ),
    (
        "lab5/src/train/transfer.rs",
        include_str!("../train/transfer.rs"),
    ),
];

/// One item cut out of a source file: its doc comment and attributes, signature and whole
/// body, as written (indentation of its first line removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceItem {
    /// The name it was asked by: `fit`, or `Type::method` for an item of an `impl` or a
    /// `trait`.
    pub name: String,
    /// First line (1-based, the first doc comment or attribute line).
    pub first_line: usize,
    /// Last line (1-based, the closing brace or semicolon).
    pub last_line: usize,
    /// The text of those lines.
    pub text: String,
}

/// Finds the item `name` in the Rust source `src`: a top-level item (fn, struct, enum,
/// trait, const, static, type alias, module, `macro_rules!`), also inside inline modules,
/// or with `Type::name` an item of an `impl Type` / `impl Trait for Type` block or of
/// `trait Type`.
///
/// Errors: `src` does not parse, `name` is not a name or a `Type::name` path, no item has
/// that name, or several do (the error gives their lines).
pub fn find_item(src: &str, name: &str) -> Result<SourceItem> {
    let file = syn::parse_file(src).context("the source does not parse as Rust")?;
    let (owner, item) = match name.split("::").collect::<Vec<_>>()[..] {
        [item] => (None, item),
        [owner, item] => (Some(owner), item),
        _ => bail!("`{name}` is neither an item name nor `Type::item`"),
    };
    if syn::parse_str::<syn::Ident>(item).is_err() || owner.is_some_and(|o| o.is_empty()) {
        bail!("`{name}` is neither an item name nor `Type::item`");
    }
    let mut spans = Vec::new();
    collect_spans(&file.items, owner, item, &mut spans);
    let lines = |s: &proc_macro2::Span| format!("{}-{}", s.start().line, s.end().line);
    match &spans[..] {
        [] => bail!("no item `{name}` in this source"),
        [span] => Ok(cut(src, name, *span)),
        many => bail!(
            "{} items are named `{name}` (lines {}): name one by `Type::{item}`",
            many.len(),
            many.iter().map(lines).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The spans of the items of `items` (and of their inline modules) named `item`, of the
/// top level when `owner` is `None`, else of the `impl owner` and `trait owner` blocks.
fn collect_spans(
    items: &[syn::Item],
    owner: Option<&str>,
    item: &str,
    found: &mut Vec<proc_macro2::Span>,
) {
    for it in items {
        if let syn::Item::Mod(syn::ItemMod {
            content: Some((_, inner)),
            ..
        }) = it
        {
            collect_spans(inner, owner, item, found);
        }
        match owner {
            None if item_name(it).is_some_and(|n| n == item) => found.push(it.span()),
            None => {}
            Some(owner) => found.extend(member_spans(it, owner, item)),
        }
    }
}

/// The name a top-level item declares, if it declares one.
fn item_name(it: &syn::Item) -> Option<String> {
    let ident = match it {
        syn::Item::Fn(f) => &f.sig.ident,
        syn::Item::Struct(s) => &s.ident,
        syn::Item::Enum(e) => &e.ident,
        syn::Item::Union(u) => &u.ident,
        syn::Item::Trait(t) => &t.ident,
        syn::Item::Type(t) => &t.ident,
        syn::Item::Const(c) => &c.ident,
        syn::Item::Static(s) => &s.ident,
        syn::Item::Mod(m) => &m.ident,
        syn::Item::Macro(m) => m.ident.as_ref()?,
        _ => return None,
    };
    Some(ident.to_string())
}

/// The spans of the members named `item` of `it` when `it` is an `impl` of a type named
/// `owner` (the last segment of its path) or `trait owner`.
fn member_spans(it: &syn::Item, owner: &str, item: &str) -> Vec<proc_macro2::Span> {
    match it {
        syn::Item::Impl(imp) if type_name(&imp.self_ty).is_some_and(|n| n == owner) => imp
            .items
            .iter()
            .filter(|m| impl_member_name(m).is_some_and(|n| n == item))
            .map(|m| m.span())
            .collect(),
        syn::Item::Trait(t) if t.ident == owner => t
            .items
            .iter()
            .filter(|m| trait_member_name(m).is_some_and(|n| n == item))
            .map(|m| m.span())
            .collect(),
        _ => Vec::new(),
    }
}

/// The last path segment of a type (`Cnn` of `super::Cnn`), if it is a path.
fn type_name(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// The name an `impl` member declares.
fn impl_member_name(m: &syn::ImplItem) -> Option<String> {
    Some(match m {
        syn::ImplItem::Fn(f) => f.sig.ident.to_string(),
        syn::ImplItem::Const(c) => c.ident.to_string(),
        syn::ImplItem::Type(t) => t.ident.to_string(),
        _ => return None,
    })
}

/// The name a `trait` member declares.
fn trait_member_name(m: &syn::TraitItem) -> Option<String> {
    Some(match m {
        syn::TraitItem::Fn(f) => f.sig.ident.to_string(),
        syn::TraitItem::Const(c) => c.ident.to_string(),
        syn::TraitItem::Type(t) => t.ident.to_string(),
        _ => return None,
    })
}

/// The whole lines of `src` the span covers, without the first line's indentation.
fn cut(src: &str, name: &str, span: proc_macro2::Span) -> SourceItem {
    let (first_line, last_line) = (span.start().line, span.end().line);
    let lines: Vec<&str> = src
        .lines()
        .skip(first_line - 1)
        .take(last_line + 1 - first_line)
        .collect();
    let indent = lines[0].len() - lines[0].trim_start().len();
    let text: Vec<&str> = lines
        .iter()
        .map(|l| match l.get(..indent) {
            Some(lead) if lead.trim().is_empty() => &l[indent..],
            _ => l.trim_start(),
        })
        .collect();
    SourceItem {
        name: name.to_string(),
        first_line,
        last_line,
        text: text.join("\n"),
    }
}

/// The embedded text of `file` (a path of [`EMBEDDED`]).
pub fn embedded(file: &str) -> Result<&'static str> {
    EMBEDDED
        .iter()
        .find(|(path, _)| *path == file)
        .map(|(_, text)| *text)
        .with_context(|| {
            let known: Vec<&str> = EMBEDDED.iter().map(|(p, _)| *p).collect();
            format!(
                "lab5 does not embed `{file}`; it embeds {} (views::source::EMBEDDED)",
                known.join(", ")
            )
        })
}

/// The items `items` of the embedded source `file` (a path of [`EMBEDDED`], such as
/// `lab5/src/models/cnn.rs`), each with its file and lines, in a `rust` block the notebook
/// highlights.
///
/// Errors: `file` is not embedded, or an item is missing or ambiguous ([`find_item`]).
pub fn source_code(file: &str, items: &[&str]) -> Result<SourceCode> {
    let src = embedded(file)?;
    let mut md = Vec::new();
    for name in items {
        let item = find_item(src, name).with_context(|| format!("showing `{file}`"))?;
        let fence = "`".repeat(longest_backtick_run(&item.text).max(2) + 1);
        md.push(format!(
            "`{file}`, lines {}–{}: `{name}`\n\n{fence}rust\n{}\n{fence}",
            item.first_line, item.last_line, item.text
        ));
    }
    Ok(SourceCode {
        markdown: md.join("\n\n"),
    })
}

/// Items of lab5's source as Markdown: per item a line naming its file and lines, then a
/// fenced `rust` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCode {
    /// The Markdown text.
    pub markdown: String,
}

impl SourceCode {
    /// Shows the code inline in an evcxr notebook as `text/markdown` (Jupyter and
    /// nbconvert highlight the fenced blocks), with the same text as `text/plain`.
    pub fn evcxr_display(&self) {
        for mime in ["text/markdown", "text/plain"] {
            println!(
                "EVCXR_BEGIN_CONTENT {mime}\n{}\nEVCXR_END_CONTENT",
                self.markdown
            );
        }
    }
}

/// The longest run of backticks in `s` (a fence must be longer than any run inside).
fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The item `name` of the real embedded `file`.
    fn real(file: &str, name: &str) -> SourceItem {
        find_item(embedded(file).unwrap(), name).unwrap()
    }

    #[test]
    fn a_function_comes_whole_with_its_doc_comment() {
        let src = embedded("lab5/src/train/trainer.rs").unwrap();
        let fit = real("lab5/src/train/trainer.rs", "fit");
        // the whole body: the text parses alone as the function, and its lines are those
        // of the file from the first doc line to the closing brace
        let parsed: syn::ItemFn = syn::parse_str(&fit.text).expect("the cut parses alone");
        assert_eq!(parsed.sig.ident, "fit");
        assert!(fit.text.starts_with("/// "), "{}", fit.text);
        assert!(fit.text.contains("opt.backward_step(&loss)"));
        assert!(fit.text.ends_with("\n}"), "{}", fit.text);
        let lines: Vec<&str> = src.lines().collect();
        assert!(
            !lines[fit.first_line - 2].starts_with("///"),
            "doc cut short"
        );
        assert_eq!(lines[fit.last_line - 1], "}");
        assert!(lines[fit.first_line..fit.last_line]
            .iter()
            .any(|l| l.starts_with("pub fn fit(")));
    }

    #[test]
    fn methods_are_found_through_their_impl_and_lose_its_indentation() {
        let new = real("lab5/src/models/transfer.rs", "Head::new");
        let parsed: syn::ImplItemFn = syn::parse_str(&new.text).expect("the cut parses alone");
        assert_eq!(parsed.sig.ident, "new");
        assert!(new.text.starts_with("fn new("), "{}", new.text);
        assert!(new.text.ends_with("\n}"), "{}", new.text);
        // a method of `impl Trait for Type` too, with its doc comment
        let logits = real("lab5/src/models/cnn.rs", "Cnn::logits");
        assert!(
            logits.text.starts_with("/// In evaluation"),
            "{}",
            logits.text
        );
        assert!(logits.text.contains("\nfn logits("), "{}", logits.text);
        let parsed: syn::ImplItemFn = syn::parse_str(&logits.text).unwrap();
        assert_eq!(parsed.sig.ident, "logits");
        // a struct, and the transfer model's head
        let head = real("lab5/src/models/transfer.rs", "Head");
        let parsed: syn::ItemStruct = syn::parse_str(&head.text).unwrap();
        assert_eq!(parsed.fields.len(), 4);
    }

    #[test]
    fn missing_ambiguous_and_malformed_names_are_errors() {
        let src = embedded("lab5/src/models/cnn.rs").unwrap();
        let err = |name: &str| find_item(src, name).unwrap_err().to_string();
        assert_eq!(err("no_such_fn"), "no item `no_such_fn` in this source");
        assert!(err("Cnn::no_such_method").starts_with("no item"));
        assert!(err("a::b::c").contains("neither an item name"));
        assert!(err("not a name").contains("neither an item name"));
        let twice = "mod a { fn f() {} }\nfn f() {}\n";
        let e = find_item(twice, "f").unwrap_err().to_string();
        assert!(e.contains("2 items are named `f` (lines 1-1, 2-2)"), "{e}");
        let e = find_item("fn f( {", "f").unwrap_err().to_string();
        assert!(e.contains("does not parse"), "{e}");
    }

    #[test]
    fn source_code_shows_fenced_rust_with_file_and_lines() {
        let shown = source_code("lab5/src/models/cnn.rs", &["conv_block", "features"]).unwrap();
        let block = real("lab5/src/models/cnn.rs", "conv_block");
        let head = format!(
            "`lab5/src/models/cnn.rs`, lines {}–{}: `conv_block`\n\n```rust\n",
            block.first_line, block.last_line
        );
        assert!(shown.markdown.starts_with(&head), "{}", shown.markdown);
        assert!(shown.markdown.contains(&block.text));
        assert_eq!(shown.markdown.matches("```rust\n").count(), 2);
        let e = source_code("lab5/src/lib.rs", &["x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not embed `lab5/src/lib.rs`"), "{e}");
        let e = source_code("lab5/src/models/cnn.rs", &["gone"]).unwrap_err();
        assert!(format!("{e:#}").contains("no item `gone`"), "{e:#}");
        assert_eq!(longest_backtick_run("a ```` b ` c"), 4);
    }
}
