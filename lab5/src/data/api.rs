//! The Cat API / The Dog API: `GET /images/search` pages, parsed and validated into
//! [`ApiItem`]s. Errors name the key variable, never the key.

use crate::config::{self, Config};
use crate::data::http::{Fetched, Http, Url};
use crate::data::images::{Reason, Rejection};
use crate::data::keys::{self, ApiKey};
use crate::data::{Class, Origin};
use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Longest server message quoted in an error.
const MAX_MESSAGE: usize = 200;
/// Longest accepted image url.
const MAX_URL: usize = 2048;
/// Longest accepted API id (longer ids are rejected; shorter unsafe ones are hashed).
const MAX_ID: usize = 512;

/// One image offered by the API.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiItem {
    /// The API's id (may be unsafe as a file name; see `images::file_id`).
    pub id: String,
    /// Where the image is downloaded from.
    pub url: String,
    /// First breed's id (cat ids are strings, dog ids integers, both kept as text).
    pub breed_id: Option<String>,
    /// First breed's name.
    pub breed_name: Option<String>,
}

/// One page of search results.
#[derive(Debug, Clone)]
pub(crate) struct SearchPage {
    /// Valid items, or why an item was rejected.
    pub items: Vec<Result<ApiItem, Rejection>>,
    /// `Pagination-Count`: images matching the search (only with a key and ASC/DESC).
    pub total: Option<usize>,
    /// `Pagination-Limit`: the page size the server applied.
    pub limit: Option<usize>,
}

/// The search endpoint of one API.
pub(crate) struct Catalog<'a> {
    http: &'a Http,
    settings: &'a config::Api,
    host: &'a config::ApiHost,
    key: Option<ApiKey>,
    class: Class,
}

impl<'a> Catalog<'a> {
    /// The API of `class`, with its key looked up (environment, then `.env`).
    pub(crate) fn new(cfg: &'a Config, class: Class, http: &'a Http) -> Result<Self> {
        let host = match class {
            Class::Cat => &cfg.api.cat,
            Class::Dog => &cfg.api.dog,
        };
        let key = keys::lookup(&host.key_env, &cfg.base_dir)?;
        Ok(Catalog {
            http,
            settings: &cfg.api,
            host,
            key,
            class,
        })
    }

    /// `The Cat API` or `The Dog API`.
    pub(crate) fn name(&self) -> &'static str {
        match self.class {
            Class::Cat => "The Cat API",
            Class::Dog => "The Dog API",
        }
    }

    /// `cat-api` or `dog-api`.
    pub(crate) fn origin(&self) -> Origin {
        match self.class {
            Class::Cat => Origin::CatApi,
            Class::Dog => Origin::DogApi,
        }
    }

    /// The name of the environment variable the key is read from (never the key).
    pub(crate) fn key_var(&self) -> &str {
        &self.host.key_env
    }

    /// Whether a key was found (without one, results are random and repeat).
    pub(crate) fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Requests page `page` of the search; fatal problems (bad key, unreachable host,
    /// malformed answer) are errors that say what to do.
    pub(crate) fn search(&self, page: usize) -> Result<SearchPage> {
        let url = self.search_url(page)?;
        let fetched = self.http.get(&url, self.key.as_ref()).map_err(|r| {
            anyhow::anyhow!(
                "cannot reach {} at {}: {} ({}). Check the network or `{}`, then run \
                 `lab5 collect` again: it resumes where it stopped",
                self.name(),
                self.host.base_url,
                self.scrub(&r.detail),
                r.reason,
                self.config_key("base_url")
            )
        })?;
        self.check_status(&fetched)?;
        let items = parse_items(&fetched.body)
            .with_context(|| format!("{} answered {url} with an unexpected body", self.name()))?;
        Ok(SearchPage {
            items,
            total: header_number(&fetched, "pagination-count"),
            limit: header_number(&fetched, "pagination-limit"),
        })
    }

    fn config_key(&self, field: &str) -> String {
        format!("api.{}.{field}", self.class.name())
    }

    fn search_url(&self, page: usize) -> Result<Url> {
        let base = self.host.base_url.trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}/images/search"))
            .with_context(|| format!("`{}` is not a valid URL", self.config_key("base_url")))?;
        let s = self.settings;
        let order = if self.has_key() {
            s.order.as_str()
        } else {
            "RANDOM"
        };
        url.query_pairs_mut()
            .append_pair("limit", &s.page_size.to_string())
            .append_pair("page", &page.to_string())
            .append_pair("order", order)
            .append_pair("has_breeds", if s.has_breeds { "1" } else { "0" })
            .append_pair("mime_types", &s.mime_types)
            .append_pair("size", &s.size);
        Ok(url)
    }

    fn check_status(&self, f: &Fetched) -> Result<()> {
        let var = &self.host.key_env;
        let msg = self.server_message(f);
        match f.status {
            200..=299 => Ok(()),
            401 | 403 if self.has_key() => bail!(
                "{} refused the key in {var} (HTTP {}{msg}). Check the value of {var} in \
                 the environment or in the project's .env file",
                self.name(),
                f.status
            ),
            401 | 403 => bail!(
                "{} requires an API key (HTTP {}{msg}): set {var} in the environment or \
                 in the project's .env file",
                self.name(),
                f.status
            ),
            s => bail!("{} answered HTTP {s}{msg}", self.name()),
        }
    }

    /// `: <message>` from a JSON or text error body, scrubbed of the key and shortened.
    fn server_message(&self, f: &Fetched) -> String {
        let text = String::from_utf8_lossy(&f.body);
        let json = serde_json::from_str::<Value>(&text).ok();
        let msg = json
            .as_ref()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string());
        let msg: String = self.scrub(&msg).chars().take(MAX_MESSAGE).collect();
        if msg.is_empty() {
            msg
        } else {
            format!(": {msg}")
        }
    }

    fn scrub(&self, text: &str) -> String {
        match &self.key {
            Some(k) => k.scrub(text),
            None => text.to_string(),
        }
    }
}

fn header_number(f: &Fetched, name: &str) -> Option<usize> {
    f.header(name).and_then(|v| v.trim().parse().ok())
}

/// Parses a search body: a JSON list whose elements are checked one by one.
pub(crate) fn parse_items(body: &[u8]) -> Result<Vec<Result<ApiItem, Rejection>>> {
    let v: Value = serde_json::from_slice(body).context("the body is not JSON")?;
    let Some(list) = v.as_array() else {
        bail!("the body is not a JSON list of images");
    };
    Ok(list.iter().map(parse_item).collect())
}

fn parse_item(v: &Value) -> Result<ApiItem, Rejection> {
    let bad = |what: &str| Rejection::new(Reason::BadItem, what.to_string());
    let id = scalar_text(v.get("id")).ok_or_else(|| bad("item without an id"))?;
    if id.is_empty() || id.len() > MAX_ID || id.chars().any(char::is_control) {
        return Err(bad("item id is empty, too long or has control characters"));
    }
    let url = v
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("item without a url"))?;
    if url.len() > MAX_URL {
        return Err(bad("item url is too long"));
    }
    let breed = v.get("breeds").and_then(|b| b.get(0));
    Ok(ApiItem {
        id,
        url: url.to_string(),
        breed_id: breed.and_then(|b| scalar_text(b.get("id"))),
        breed_name: breed.and_then(|b| scalar_text(b.get("name"))),
    })
}

/// A JSON string or integer as text.
fn scalar_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_parsed_and_bad_ones_named() {
        let body = br#"[
            {"id":"abc","url":"https://x/a.jpg","width":1,"height":2,
             "breeds":[{"id":"abys","name":"Abyssinian"}]},
            {"id":7,"url":"https://x/b.jpg","breeds":[{"id":235,"name":"Husky"}]},
            {"id":"noturl"},
            {"url":"https://x/c.jpg","breeds":[]}
        ]"#;
        let items = parse_items(body).unwrap();
        let a = items[0].as_ref().unwrap();
        assert_eq!(a.breed_id.as_deref(), Some("abys"));
        let b = items[1].as_ref().unwrap();
        assert_eq!((b.id.as_str(), b.breed_id.as_deref()), ("7", Some("235")));
        assert_eq!(items[2].as_ref().unwrap_err().reason, Reason::BadItem);
        assert_eq!(items[3].as_ref().unwrap_err().reason, Reason::BadItem);
        assert!(parse_items(b"{\"message\":\"x\"}").is_err());
        assert!(parse_items(b"<html>").is_err());
    }
}
