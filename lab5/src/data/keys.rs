//! API keys: read from the environment variable named in the config, else from a `.env`
//! file in the project folder, and kept in a type that never prints its value.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Name of the optional file of `NAME=value` lines in the project folder.
pub(crate) const DOTENV: &str = ".env";
/// What a key prints as.
const MASK: &str = "***";

/// An API key. `Debug` and `Display` print `***`; only [`ApiKey::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ApiKey(String);

impl ApiKey {
    /// Wraps a key after checking it is printable ASCII without spaces; `var` (the
    /// variable's name, never the value) is used in the error message.
    pub(crate) fn new(value: &str, var: &str) -> Result<Self> {
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
            bail!(
                "{var} does not hold a valid API key (it must be printable ASCII without \
                 spaces); fix it in the environment or in {DOTENV}"
            );
        }
        Ok(ApiKey(value.to_string()))
    }

    /// The secret itself, for the request header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `***` (for server messages
    /// that might echo it).
    pub(crate) fn scrub(&self, text: &str) -> String {
        text.replace(&self.0, MASK)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

/// The key named `var`: from the environment, else from `project_dir/.env`; `None` when
/// neither has a non-empty value.
pub(crate) fn lookup(var: &str, project_dir: &Path) -> Result<Option<ApiKey>> {
    let value = match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        Ok(_) | Err(std::env::VarError::NotPresent) => read_dotenv(&project_dir.join(DOTENV), var)?,
        Err(std::env::VarError::NotUnicode(_)) => {
            bail!("environment variable {var} is not valid UTF-8; set it to the API key")
        }
    };
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| ApiKey::new(&v, var))
        .transpose()
}

/// The value of `var` in a `.env` file (`NAME=value`, optional `export `, quotes and
/// `#` comments); `None` when the file or the name is absent.
pub(crate) fn read_dotenv(path: &Path, var: &str) -> Result<Option<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(parse_line)
        .filter(|(name, _)| *name == var)
        .map(|(_, value)| value)
        .next_back())
}

fn parse_line(line: &str) -> Option<(&str, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (name, value) = line.split_once('=')?;
    Some((name.trim(), unquote(value.trim())))
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.split(q).next()) {
            return inner.to_string();
        }
    }
    v.split(" #").next().unwrap_or(v).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_never_prints() {
        let k = ApiKey::new("live_s3cr3t", "CAT_API_KEY").unwrap();
        assert_eq!(format!("{k} {k:?}"), "*** ***");
        assert_eq!(k.scrub("bad key live_s3cr3t!"), "bad key ***!");
        let err = ApiKey::new("with space", "CAT_API_KEY")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CAT_API_KEY") && !err.contains("with space"),
            "{err}"
        );
    }

    #[test]
    fn dotenv_lines_parse() {
        let dir = std::env::temp_dir().join(format!("lab5-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "# keys\nexport A_KEY=\"q1\"\nB_KEY = plain # note\nC_KEY='s q'\nbroken\n";
        std::fs::write(dir.join(DOTENV), text).unwrap();
        let get = |v| read_dotenv(&dir.join(DOTENV), v).unwrap();
        assert_eq!(get("A_KEY").as_deref(), Some("q1"));
        assert_eq!(get("B_KEY").as_deref(), Some("plain"));
        assert_eq!(get("C_KEY").as_deref(), Some("s q"));
        assert_eq!(get("D_KEY"), None);
        assert!(lookup("LAB5_UNSET_TEST_VAR_C_KEY", &dir).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
