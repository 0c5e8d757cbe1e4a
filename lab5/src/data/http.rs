//! A small blocking HTTP getter: per-request timeout plus a total deadline for the body,
//! retries with exponential back-off and jitter on timeouts, cut bodies, 429 (honouring
//! `Retry-After`, in seconds or as an HTTP-date) and 5xx, and a maximum body size enforced while streaming.

use crate::config;
use crate::data::images::{Reason, Rejection};
use crate::data::keys::ApiKey;
use anyhow::{Context, Result};
use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::redirect::Policy;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

pub(crate) use reqwest::Url;

/// The header carrying the API key.
pub(crate) const KEY_HEADER: &str = "x-api-key";
/// Redirects followed for image downloads (API requests follow none, so the key is
/// never sent to another host).
const MAX_REDIRECTS: usize = 5;
/// Read buffer while streaming a body.
const CHUNK: usize = 64 * 1024;
/// Smallest jitter factor applied to a back-off delay (the largest is 1).
const JITTER_MIN: f64 = 0.5;

/// A finished response: status, headers and the whole (size-checked) body.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Fetched {
    /// A header as text, when present and valid.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

enum Attempt {
    Done(Box<Fetched>),
    Retry(Rejection, Option<Duration>),
    Fail(Rejection),
}

/// The shared HTTP client with the retry policy from `config.api`.
pub(crate) struct Http {
    api_client: Client,
    file_client: Client,
    timeout: Duration,
    max_bytes: u64,
    retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    retried: AtomicUsize,
}

/// Installs the `ring` TLS provider once for the process (later calls are no-ops).
pub(crate) fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn build_client(timeout: Duration, redirects: Policy) -> Result<Client> {
    install_tls_provider();
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(redirects)
        .user_agent(concat!("lab5/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot create the HTTP client")
}

impl Http {
    /// A client with the timeouts, size limit and retry policy of `api`.
    pub(crate) fn new(api: &config::Api) -> Result<Self> {
        let timeout = Duration::from_secs(api.timeout_secs);
        Ok(Http {
            api_client: build_client(timeout, Policy::none())?,
            file_client: build_client(timeout, Policy::limited(MAX_REDIRECTS))?,
            timeout,
            max_bytes: api.max_image_bytes,
            retries: api.retries,
            backoff: Duration::from_millis(api.backoff_ms),
            max_backoff: Duration::from_millis(api.max_backoff_ms),
            retried: AtomicUsize::new(0),
        })
    }

    /// How many retries all requests of this client needed so far.
    pub(crate) fn retries_done(&self) -> usize {
        self.retried.load(Ordering::Relaxed)
    }

    /// GETs `url` (http or https only), retrying transient failures. With `key`, the
    /// request carries the key header and follows no redirects. Any final status other
    /// than 429/5xx is returned as [`Fetched`] for the caller to judge.
    pub(crate) fn get(&self, url: &Url, key: Option<&ApiKey>) -> Result<Fetched, Rejection> {
        check_scheme(url)?;
        let mut attempt = 0;
        loop {
            let (why, hint) = match self.attempt(url, key) {
                Attempt::Done(f) => return Ok(*f),
                Attempt::Fail(r) => return Err(r),
                Attempt::Retry(why, hint) => (why, hint),
            };
            if attempt >= self.retries {
                let tries = attempt + 1;
                return Err(Rejection::new(
                    why.reason,
                    format!("{} ({tries} tries)", why.detail),
                ));
            }
            std::thread::sleep(self.delay(attempt, hint));
            self.retried.fetch_add(1, Ordering::Relaxed);
            attempt += 1;
        }
    }

    fn attempt(&self, url: &Url, key: Option<&ApiKey>) -> Attempt {
        let deadline = Instant::now() + self.timeout;
        let mut resp = match self.request(url, key).send() {
            Ok(r) => r,
            Err(e) => return transient(&e),
        };
        let status = resp.status().as_u16();
        if status == 429 || resp.status().is_server_error() {
            let why = Rejection::new(Reason::HttpStatus, format!("HTTP {status}"));
            return Attempt::Retry(why, retry_after(resp.headers()));
        }
        match self.read_body(&mut resp, deadline) {
            Ok(body) => {
                let headers = resp.headers().clone();
                Attempt::Done(Box::new(Fetched {
                    status,
                    headers,
                    body,
                }))
            }
            Err(a) => a,
        }
    }

    /// A GET on the API client (key header, no redirects) or the file client.
    fn request(&self, url: &Url, key: Option<&ApiKey>) -> reqwest::blocking::RequestBuilder {
        match key {
            Some(k) => self
                .api_client
                .get(url.clone())
                .header(KEY_HEADER, key_value(k)),
            None => self.file_client.get(url.clone()),
        }
    }

    /// Reads the body, stopping past `max_bytes` or at the deadline.
    fn read_body(&self, resp: &mut Response, deadline: Instant) -> Result<Vec<u8>, Attempt> {
        if let Some(n) = resp.content_length().filter(|n| *n > self.max_bytes) {
            return Err(self.too_large(n));
        }
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
        let mut chunk = vec![0u8; CHUNK];
        loop {
            if Instant::now() > deadline {
                let msg = format!("body not complete after {:?}", self.timeout);
                return Err(Attempt::Retry(Rejection::new(Reason::Timeout, msg), None));
            }
            let n = resp.read(&mut chunk).map_err(|e| read_error(&e))?;
            if n == 0 {
                return Ok(body);
            }
            if (body.len() + n) as u64 > self.max_bytes {
                return Err(self.too_large((body.len() + n) as u64));
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }

    fn too_large(&self, n: u64) -> Attempt {
        let msg = format!("body of {n} bytes or more, limit {}", self.max_bytes);
        Attempt::Fail(Rejection::new(Reason::TooLarge, msg))
    }

    /// Back-off before retry `attempt` (0-based): `Retry-After` when the server sent it,
    /// else `backoff * 2^attempt` with jitter; never more than `max_backoff`.
    fn delay(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        if let Some(h) = hint {
            return h.min(self.max_backoff);
        }
        let exp = self.backoff.saturating_mul(1u32 << attempt.min(16));
        let jitter = JITTER_MIN + (1.0 - JITTER_MIN) * rand::random::<f64>();
        exp.min(self.max_backoff).mul_f64(jitter)
    }
}

fn key_value(key: &ApiKey) -> HeaderValue {
    // ApiKey::new only admits printable ASCII, which is always a valid header value.
    let mut v = HeaderValue::from_str(key.expose()).unwrap_or(HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

fn check_scheme(url: &Url) -> Result<(), Rejection> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(Rejection::new(
            Reason::BadUrl,
            format!("scheme {other:?} in {url}"),
        )),
    }
}

fn transient(e: &reqwest::Error) -> Attempt {
    let reason = if e.is_timeout() {
        Reason::Timeout
    } else {
        Reason::Network
    };
    Attempt::Retry(Rejection::new(reason, error_chain(e)), None)
}

fn read_error(e: &std::io::Error) -> Attempt {
    let timed_out = e.kind() == std::io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|i| i.downcast_ref::<reqwest::Error>())
            .is_some_and(|r| r.is_timeout());
    let reason = if timed_out {
        Reason::Timeout
    } else {
        Reason::Network
    };
    Attempt::Retry(
        Rejection::new(reason, format!("reading body: {}", error_chain(e))),
        None,
    )
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// `Retry-After` in either form of RFC 9110: delay-seconds, or an HTTP-date (the time
/// until then; zero when it is past). Anything else is ignored (back-off applies).
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    parse_retry_after(h.get(RETRY_AFTER)?.to_str().ok()?, SystemTime::now())
}

fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let secs = |v: &str| parse_retry_after(v, now);
        assert_eq!(secs(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            secs("Sun, 06 Nov 1994 08:49:42 GMT"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(secs("Sun, 06 Nov 1994 08:40:00 GMT"), Some(Duration::ZERO));
        assert_eq!(secs("soon"), None);
        assert_eq!(secs("-1"), None);
    }
}
