//! The font bundled for bitmap rendering: plotters' bitmap backend draws text only with a
//! registered font, and the machines running the lab may have none installed.

use anyhow::{anyhow, Result};
use plotters::style::{register_font, FontStyle};
use std::sync::OnceLock;

/// DejaVu Sans (Bitstream Vera licence, see `assets/DejaVuSans.LICENSE`).
const DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The family name every chart uses; SVG viewers resolve it to their own sans-serif font.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the bundled font under [`FAMILY`] once per process.
pub(crate) fn ensure_registered() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok());
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the bundled font assets/DejaVuSans.ttf is not a valid TrueType font; restore it from git"))
    }
}
