//! Code on the page: notebooks `03_cnn` and `05_transfer` show the model definition and the
//! training step as lab5 compiles them, cut out of the source files embedded in the crate
//! with `include_str!` (so the text shown is the code the kernel runs, never a copy that
//! drifts). An item is found by name with `syn` (a full Rust parser), not by matching
//! braces, and shown with its doc comment as HTML: monospace, keywords, strings, numbers
//! and comments coloured by a small lexer of our own ([`SourceCode::html`]; a fenced
//! Markdown block would show in the text font, since Jupyter and nbconvert style `pre`
//! in an output with the output's font).
//!
//! The same finder ([`find_item`]) checks the `*Code:*` lines under every notebook section
//! (`tests/code_lines.rs`): each names a file and items of it, which must exist.

use crate::plot::escape;
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
///
/// Errors: `file` is not embedded (the error lists the files that are).
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
/// `lab5/src/models/cnn.rs`), each under a line naming its file and lines, to show in a
/// notebook as highlighted code.
///
/// Errors: `file` is not embedded, or an item is missing or ambiguous ([`find_item`]).
pub fn source_code(file: &str, items: &[&str]) -> Result<SourceCode> {
    let src = embedded(file)?;
    let items = items
        .iter()
        .map(|name| find_item(src, name).with_context(|| format!("showing `{file}`")))
        .collect::<Result<Vec<_>>>()?;
    Ok(SourceCode {
        file: file.to_string(),
        items,
    })
}

/// Items of one of lab5's source files, shown as highlighted code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCode {
    /// The file, from the project root.
    pub file: String,
    /// The items, in the order asked.
    pub items: Vec<SourceItem>,
}

/// How the code shows: monospace, unwrapped, with a bar on its left.
const PRE_STYLE: &str = "font-family:var(--jp-code-font-family,monospace);\
     font-size:var(--jp-code-font-size,13px);line-height:1.35;white-space:pre;overflow-x:auto;\
     background:#f7f7f7;padding:0.5em 0.8em;margin:0.2em 0 1em;border-left:3px solid #1976d2";

impl SourceCode {
    /// Per item a line naming file, lines and item, then the code in a fenced `rust` block.
    pub fn markdown(&self) -> String {
        let blocks: Vec<String> = self
            .items
            .iter()
            .map(|item| {
                let fence = "`".repeat(longest_backtick_run(&item.text).max(2) + 1);
                format!(
                    "{}\n\n{fence}rust\n{}\n{fence}",
                    self.caption(item, |s| format!("`{s}`")),
                    item.text
                )
            })
            .collect();
        blocks.join("\n\n")
    }

    /// The same as HTML on one line (line breaks as `&#10;`): per item the caption and a
    /// `<pre>` block, its keywords, strings, numbers and comments coloured ([`highlight`]).
    pub fn html(&self) -> String {
        self.items
            .iter()
            .map(|item| {
                let caption = self.caption(item, |s| format!("<code>{}</code>", escape(s)));
                let code = highlight(&item.text).replace('\n', "&#10;");
                format!("<p style=\"margin:0.6em 0 0.2em\">{caption}</p><pre style=\"{PRE_STYLE}\">{code}</pre>")
            })
            .collect()
    }

    /// "`file`, lines a–b: `item`", with `code` marking file and item.
    fn caption(&self, item: &SourceItem, code: impl Fn(&str) -> String) -> String {
        format!(
            "{}, lines {}–{}: {}",
            code(&self.file),
            item.first_line,
            item.last_line,
            code(&item.name)
        )
    }

    /// Shows the code inline in an evcxr notebook: `text/html` (highlighted, monospace; a
    /// Markdown code block in an output shows in the text font) and the Markdown as
    /// `text/plain`.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.html()
        );
        // evcxr ends a block at a line `EVCXR_END_CONTENT`: indent such a line
        let plain = self
            .markdown()
            .replace("\nEVCXR_END_CONTENT", "\n EVCXR_END_CONTENT");
        println!("EVCXR_BEGIN_CONTENT text/plain\n{plain}\nEVCXR_END_CONTENT");
    }
}

/// The longest run of backticks in `s` (a fence must be longer than any run inside).
fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// What a piece of Rust source is, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// `// ...`, `/// ...`, `/* ... */`.
    Comment,
    /// A string, byte string, raw string or character literal.
    Str,
    /// A number literal.
    Number,
    /// A keyword ([`KEYWORDS`]).
    Keyword,
    /// Everything else.
    Plain,
}

/// The Rust keywords that are coloured.
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "dyn", "else", "enum", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
    "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while",
];

/// `code` as HTML, keywords, strings, numbers and comments in colour.
fn highlight(code: &str) -> String {
    tokens(code)
        .into_iter()
        .map(|(kind, text)| {
            let style = match kind {
                Token::Comment => "color:#3d7b7b;font-style:italic",
                Token::Str => "color:#ba2121",
                Token::Number => "color:#666666",
                Token::Keyword => "color:#008000;font-weight:bold",
                Token::Plain => return escape(text),
            };
            format!("<span style=\"{style}\">{}</span>", escape(text))
        })
        .collect()
}

/// `code` cut into tokens; their texts put together give `code` back.
fn tokens(code: &str) -> Vec<(Token, &str)> {
    let b = code.as_bytes();
    let (mut out, mut i, mut plain) = (Vec::new(), 0, 0);
    while i < b.len() {
        let Some((kind, end)) = token_at(code, i) else {
            i += 1;
            continue;
        };
        if plain < i {
            out.push((Token::Plain, &code[plain..i]));
        }
        out.push((kind, &code[i..end]));
        (i, plain) = (end, end);
    }
    if plain < b.len() {
        out.push((Token::Plain, &code[plain..]));
    }
    out
}

/// The token starting at byte `i` of `code` and its end, or `None` for plain text.
fn token_at(code: &str, i: usize) -> Option<(Token, usize)> {
    let b = code.as_bytes();
    let next = b.get(i + 1).copied();
    let ident = |c: u8| c == b'_' || c.is_ascii_alphanumeric();
    Some(match b[i] {
        b'/' if next == Some(b'/') => (
            Token::Comment,
            code[i..].find('\n').map_or(b.len(), |e| i + e),
        ),
        b'/' if next == Some(b'*') => (
            Token::Comment,
            code[i + 2..].find("*/").map_or(b.len(), |e| i + e + 4),
        ),
        b'"' => (Token::Str, quoted_end(b, i + 1, b'"')),
        b'\'' => (Token::Str, char_end(code, i)?),
        c if c.is_ascii_digit() => (Token::Number, number_end(b, i)),
        c if ident(c) => {
            if let Some(end) = prefixed_string_end(code, i) {
                return Some((Token::Str, end));
            }
            let end = i + b[i..].iter().take_while(|&&c| ident(c)).count();
            let kind = match KEYWORDS.contains(&&code[i..end]) {
                true => Token::Keyword,
                false => Token::Plain,
            };
            (kind, end)
        }
        _ => return None,
    })
}

/// The end of the number literal at `i`: digits, letters (`1e3`, `0x1f`, `2i64`), `_`, and a
/// `.` followed by a digit (`1.5`, not the range `1..`).
fn number_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        let c = b[i];
        let decimal_point = c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if !(c == b'_' || c.is_ascii_alphanumeric() || decimal_point) {
            break;
        }
        i += 1;
    }
    i
}

/// The end (after the closing quote) of a literal whose text starts at `from`, escapes
/// skipped.
fn quoted_end(b: &[u8], mut from: usize, quote: u8) -> usize {
    while from < b.len() {
        match b[from] {
            b'\\' => from += 2,
            c if c == quote => return from + 1,
            _ => from += 1,
        }
    }
    b.len()
}

/// The end of the character literal at `i` (`'a'`, `'\n'`, `'é'`), or `None` for a
/// lifetime or label (`'a`).
fn char_end(code: &str, i: usize) -> Option<usize> {
    let b = code.as_bytes();
    if b.get(i + 1) == Some(&b'\\') {
        return Some(quoted_end(b, i + 1, b'\''));
    }
    let c = code[i + 1..].chars().next()?;
    let after = i + 1 + c.len_utf8();
    (b.get(after) == Some(&b'\'')).then_some(after + 1)
}

/// The end of a byte, byte-string or raw-string literal at `i` (`b'x'`, `b"x"`, `r"x"`,
/// `r#"x"#`, `br"x"`), or `None` when `i` starts an identifier.
fn prefixed_string_end(code: &str, i: usize) -> Option<usize> {
    let b = code.as_bytes();
    let rest = &code[i..];
    if rest.starts_with("b'") {
        return char_end(code, i + 1);
    }
    if rest.starts_with("b\"") {
        return Some(quoted_end(b, i + 2, b'"'));
    }
    let raw = rest.strip_prefix("br").or_else(|| rest.strip_prefix('r'))?;
    let hashes = raw.bytes().take_while(|&c| c == b'#').count();
    if raw.as_bytes().get(hashes) != Some(&b'"') {
        return None;
    }
    let body = i + (rest.len() - raw.len()) + hashes + 1;
    let close = format!("\"{}", "#".repeat(hashes));
    Some(
        code[body..]
            .find(&close)
            .map_or(b.len(), |e| body + e + close.len()),
    )
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
        assert!(fit.text.contains("opt.backward_step(&b.loss)"));
        // notebook 03 shows the loss helper next to the loop
        let loss = real("lab5/src/train/trainer.rs", "batch_loss");
        assert!(
            loss.text.contains("mixed_loss(logits, y, m, smoothed)"),
            "{}",
            loss.text
        );
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
    fn source_code_shows_file_lines_and_code_as_markdown_and_html() {
        let shown = source_code("lab5/src/models/cnn.rs", &["conv_block", "features"]).unwrap();
        let block = real("lab5/src/models/cnn.rs", "conv_block");
        let caption = format!(
            "`lab5/src/models/cnn.rs`, lines {}–{}: `conv_block`",
            block.first_line, block.last_line
        );
        let md = shown.markdown();
        assert!(md.starts_with(&format!("{caption}\n\n```rust\n")), "{md}");
        assert!(md.contains(&block.text));
        assert_eq!(md.matches("```rust\n").count(), 2);
        let html = shown.html();
        assert!(!html.contains('\n'), "one line");
        assert_eq!(html.matches("<pre style=").count(), 2);
        assert!(html.contains("<code>conv_block</code>"));
        assert!(
            html.contains("<span style=\"color:#008000;font-weight:bold\">fn</span> conv_block(")
        );
        let e = source_code("lab5/src/lib.rs", &["x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not embed `lab5/src/lib.rs`"), "{e}");
        let e = source_code("lab5/src/models/cnn.rs", &["gone"]).unwrap_err();
        assert!(format!("{e:#}").contains("no item `gone`"), "{e:#}");
        assert_eq!(longest_backtick_run("a ```` b ` c"), 4);
    }

    #[test]
    fn tokens_give_the_source_back_and_colour_what_they_should() {
        for (file, src) in EMBEDDED {
            let back: String = tokens(src).iter().map(|(_, t)| *t).collect();
            assert!(back == *src, "{file}: the tokens lose text");
        }
        let code =
            "fn f<'a>(x: &'a str) -> char { let s = \"// not a comment\"; /* c */ '\\n' } // <b>\n\
                    let r = r#\"raw \"q\" \"#; let n = 1_000.5e3; let b = b'x'; let z = x2 + 'é';";
        let kinds = |k: Token| -> Vec<&str> {
            tokens(code)
                .into_iter()
                .filter(|(t, _)| *t == k)
                .map(|(_, s)| s)
                .collect()
        };
        assert_eq!(
            kinds(Token::Keyword),
            ["fn", "let", "let", "let", "let", "let"]
        );
        assert_eq!(
            kinds(Token::Str),
            [
                "\"// not a comment\"",
                "'\\n'",
                "r#\"raw \"q\" \"#",
                "b'x'",
                "'é'"
            ]
        );
        assert_eq!(kinds(Token::Comment), ["/* c */", "// <b>"]);
        assert_eq!(kinds(Token::Number), ["1_000.5e3"]);
        let range = tokens("0..=n");
        assert_eq!(range[..2], [(Token::Number, "0"), (Token::Plain, "..=")]);
        assert!(highlight("// <b>").contains("&lt;b&gt;"));
        // a lifetime stays plain text, and `x2` is a name, not a number
        assert!(kinds(Token::Plain).concat().contains("'a"));
    }
}
