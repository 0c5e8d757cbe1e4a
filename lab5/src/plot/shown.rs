//! What a notebook cell shows when it may have nothing to draw: a [`Note`] saying why, or a
//! [`Shown`] holding a figure, a table or such a note.

use super::{Figure, Table};
use std::fmt;

/// A short text shown instead of a result that cannot be computed yet (for example "no
/// trained run"), so that a notebook cell never fails for a missing optional input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note(pub String);

impl Note {
    /// Shows the note inline in an evcxr notebook as `text/markdown`.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/markdown\n{}\nEVCXR_END_CONTENT",
            self.0
        );
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A figure, a table, or a [`Note`] saying why there is none; shows whichever it holds.
#[derive(Debug, Clone)]
pub enum Shown {
    /// A chart.
    Figure(Figure),
    /// A table.
    Table(Table),
    /// Why there is no result, and how to get one.
    Note(Note),
}

impl Shown {
    /// Shows the figure or the note inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        match self {
            Shown::Figure(f) => f.evcxr_display(),
            Shown::Table(t) => t.evcxr_display(),
            Shown::Note(n) => n.evcxr_display(),
        }
    }
}
