//! A real HTTP/1.1 server on 127.0.0.1 (plain `std::net`) that answers
//! `GET /{cat,dog}/v1/images/search` like The Cat API / The Dog API and serves real
//! photos from the pets folder under `/img/{cat,dog}/<index>`, with faults per item
//! (slow, cut, truncated, not an image, too large, 500s) and per search (429, 500, 401).

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How an image url answers.
#[derive(Debug, Clone)]
pub enum Body {
    /// The photo, correctly.
    Photo(PathBuf),
    /// HTTP 500 for the first `n` requests, then the photo.
    Fail500(usize, PathBuf),
    /// The first request stalls longer than the client timeout before any header.
    SlowOnce(PathBuf),
    /// Headers, then a few bytes now and then: never complete within the timeout.
    Trickle(PathBuf),
    /// First request: `Content-Length` of the whole photo, half of it, then close.
    CutOnce(PathBuf),
    /// A well-framed response carrying only the first half of the photo.
    Truncated(PathBuf),
    /// An HTML page sent as `image/jpeg`.
    Garbage,
    /// A `Content-Length` over the client's limit.
    Huge,
    /// No `Content-Length`; streams bytes far past the client's limit.
    HugeStream,
}

/// One image of the catalogue.
#[derive(Debug, Clone)]
pub struct Item {
    /// The id the API reports.
    pub id: String,
    /// What the image url does.
    pub body: Body,
    /// Replaces the url (e.g. `ftp://...`); `Some("")` leaves the url out of the JSON.
    pub url: Option<String>,
    /// `breeds[0]` as (id, name).
    pub breed: Option<(Value, String)>,
}

impl Item {
    /// A plain photo whose id is the file stem.
    pub fn photo(path: PathBuf) -> Item {
        let id = path.file_stem().unwrap().to_string_lossy().into_owned();
        Item {
            id,
            body: Body::Photo(path),
            url: None,
            breed: None,
        }
    }

    /// An item with a given id and behaviour.
    pub fn new(id: &str, body: Body) -> Item {
        Item {
            id: id.to_string(),
            body,
            url: None,
            breed: None,
        }
    }
}

/// Server-wide behaviour.
#[derive(Debug, Clone)]
pub struct Options {
    /// The key searches of The Cat API must carry (`None`: no key needed).
    pub cat_key: Option<String>,
    /// The key searches of The Dog API must carry (`None`: no key needed).
    pub dog_key: Option<String>,
    /// Most items per page, whatever `limit` asks.
    pub page_cap: usize,
    /// The first this many searches get 429 with `Retry-After: 1`.
    pub search_429: usize,
    /// `Retry-After` of those 429s as an HTTP-date this far ahead, instead of `1`.
    pub retry_after_date: Option<Duration>,
    /// The next this many searches get 500.
    pub search_500: usize,
    /// Random order with repeats and no pagination headers (like keyless use).
    pub random: bool,
    /// Delay before answering each image request.
    pub image_delay: Duration,
    /// How long a stalled response stalls.
    pub stall: Duration,
    /// Bytes sent for `Huge` / `HugeStream` (should exceed the client's limit).
    pub huge_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cat_key: None,
            dog_key: None,
            page_cap: 10,
            search_429: 0,
            retry_after_date: None,
            search_500: 0,
            random: false,
            image_delay: Duration::ZERO,
            stall: Duration::from_millis(2500),
            huge_bytes: 4 << 20,
        }
    }
}

struct State {
    opts: Options,
    cats: Vec<Item>,
    dogs: Vec<Item>,
    image_hits: Mutex<HashMap<String, usize>>,
    searches: Mutex<Vec<(Instant, u16)>>,
    key_on_images: AtomicUsize,
    rng: Mutex<u64>,
    stop: AtomicBool,
}

/// The running server; dropping it stops accepting connections.
pub struct PetServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl PetServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start(opts: Options, cats: Vec<Item>, dogs: Vec<Item>) -> PetServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            opts,
            cats,
            dogs,
            image_hits: Mutex::default(),
            searches: Mutex::default(),
            key_on_images: AtomicUsize::new(0),
            rng: Mutex::new(0x9E37_79B9_7F4A_7C15),
            stop: AtomicBool::new(false),
        });
        let st = state.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &st);
                });
            }
        });
        PetServer {
            addr,
            state,
            accept: Some(accept),
        }
    }

    /// Base URL of one API, e.g. `http://127.0.0.1:PORT/cat/v1`.
    pub fn base_url(&self, class: &str) -> String {
        format!("http://{}/{class}/v1", self.addr)
    }

    /// Requests for the image of item `id` of `class`.
    pub fn hits(&self, class: &str, id: &str) -> usize {
        let h = self.state.image_hits.lock().unwrap();
        h.get(&format!("{class}:{id}")).copied().unwrap_or(0)
    }

    /// All image requests so far.
    pub fn total_hits(&self) -> usize {
        self.state.image_hits.lock().unwrap().values().sum()
    }

    /// Time and status of every search request.
    pub fn searches(&self) -> Vec<(Instant, u16)> {
        self.state.searches.lock().unwrap().clone()
    }

    /// Image requests that carried an `x-api-key` header (must stay 0).
    pub fn key_on_images(&self) -> usize {
        self.state.key_on_images.load(Ordering::SeqCst)
    }

    /// Stops accepting connections (answers in flight finish).
    pub fn stop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for PetServer {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Request {
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok(Request {
        path: path.to_string(),
        query,
        headers,
    })
}

fn handle(mut stream: TcpStream, st: &State) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let req = read_request(&stream)?;
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [class @ ("cat" | "dog"), "v1", "images", "search"] => search(&mut stream, st, class, &req),
        ["img", class @ ("cat" | "dog"), idx] => image(&mut stream, st, class, idx, &req),
        _ => respond(&mut stream, 404, "text/plain", &[], b"not found"),
    }
}

fn respond(
    s: &mut TcpStream,
    status: u16,
    ctype: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    s.flush()
}

fn search(s: &mut TcpStream, st: &State, class: &str, req: &Request) -> std::io::Result<()> {
    let status = search_status(st, class, req);
    st.searches.lock().unwrap().push((Instant::now(), status));
    match status {
        401 => {
            let got = req.headers.get("x-api-key").cloned().unwrap_or_default();
            let msg =
                json!({ "message": format!("AUTHENTICATION_ERROR - invalid api key '{got}'") });
            respond(s, 401, "application/json", &[], msg.to_string().as_bytes())
        }
        429 => respond(
            s,
            429,
            "application/json",
            &[("Retry-After", retry_after(st))],
            b"{\"message\":\"slow down\"}",
        ),
        500 => respond(s, 500, "text/plain", &[], b"internal error"),
        _ => search_page(s, st, class, req),
    }
}

/// `1` (seconds), or an HTTP-date `retry_after_date` ahead.
fn retry_after(st: &State) -> String {
    match st.opts.retry_after_date {
        None => "1".into(),
        Some(ahead) => httpdate::fmt_http_date(std::time::SystemTime::now() + ahead),
    }
}

fn search_status(st: &State, class: &str, req: &Request) -> u16 {
    let key = if class == "cat" {
        &st.opts.cat_key
    } else {
        &st.opts.dog_key
    };
    if let Some(k) = key {
        if req.headers.get("x-api-key") != Some(k) {
            return 401;
        }
    }
    let n = st.searches.lock().unwrap().len();
    if n < st.opts.search_429 {
        429
    } else if n < st.opts.search_429 + st.opts.search_500 {
        500
    } else {
        200
    }
}

fn search_page(s: &mut TcpStream, st: &State, class: &str, req: &Request) -> std::io::Result<()> {
    let items = if class == "cat" { &st.cats } else { &st.dogs };
    let num = |k: &str, d: usize| req.query.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let limit = num("limit", 1).min(st.opts.page_cap).max(1);
    let page = num("page", 0);
    let port = s.local_addr()?.port();
    let json_of = |i: usize| item_json(&items[i], class, i, port);
    if st.opts.random {
        let picks: Vec<Value> = (0..limit)
            .map(|_| json_of(next_rand(st) % items.len()))
            .collect();
        return respond(
            s,
            200,
            "application/json",
            &[],
            Value::Array(picks).to_string().as_bytes(),
        );
    }
    let from = (page * limit).min(items.len());
    let to = (from + limit).min(items.len());
    let list: Vec<Value> = (from..to).map(json_of).collect();
    let headers = [
        ("Pagination-Count", items.len().to_string()),
        ("Pagination-Page", page.to_string()),
        ("Pagination-Limit", limit.to_string()),
    ];
    respond(
        s,
        200,
        "application/json",
        &headers,
        Value::Array(list).to_string().as_bytes(),
    )
}

fn next_rand(st: &State) -> usize {
    let mut x = st.rng.lock().unwrap();
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    (*x >> 11) as usize
}

fn item_json(it: &Item, class: &str, idx: usize, port: u16) -> Value {
    let mut v = json!({ "id": it.id, "width": 500, "height": 375, "breeds": [] });
    match it.url.as_deref() {
        Some("") => {}
        Some(u) => v["url"] = json!(u),
        None => v["url"] = json!(format!("http://127.0.0.1:{port}/img/{class}/{idx}")),
    }
    if let Some((id, name)) = &it.breed {
        v["breeds"] = json!([{ "id": id, "name": name }]);
    }
    v
}

fn image(
    s: &mut TcpStream,
    st: &State,
    class: &str,
    idx: &str,
    req: &Request,
) -> std::io::Result<()> {
    let items = if class == "cat" { &st.cats } else { &st.dogs };
    let Some(it) = idx.parse::<usize>().ok().and_then(|i| items.get(i)) else {
        return respond(s, 404, "text/plain", &[], b"no such image");
    };
    if req.headers.contains_key("x-api-key") {
        st.key_on_images.fetch_add(1, Ordering::SeqCst);
    }
    let n = {
        let mut h = st.image_hits.lock().unwrap();
        let c = h.entry(format!("{class}:{}", it.id)).or_default();
        *c += 1;
        *c
    };
    std::thread::sleep(st.opts.image_delay);
    serve_body(s, st, &it.body, n)
}

fn serve_body(s: &mut TcpStream, st: &State, body: &Body, hit: usize) -> std::io::Result<()> {
    let jpeg = "image/jpeg";
    match body {
        Body::Photo(p) => respond(s, 200, jpeg, &[], &std::fs::read(p)?),
        Body::Fail500(n, p) if hit > *n => respond(s, 200, jpeg, &[], &std::fs::read(p)?),
        Body::Fail500(..) => respond(s, 500, "text/plain", &[], b"oops"),
        Body::SlowOnce(p) => {
            if hit == 1 {
                std::thread::sleep(st.opts.stall);
            }
            respond(s, 200, jpeg, &[], &std::fs::read(p)?)
        }
        Body::Trickle(p) => trickle(s, st, &std::fs::read(p)?),
        Body::CutOnce(p) if hit > 1 => respond(s, 200, jpeg, &[], &std::fs::read(p)?),
        Body::CutOnce(p) => cut(s, &std::fs::read(p)?),
        Body::Truncated(p) => {
            let b = std::fs::read(p)?;
            respond(s, 200, jpeg, &[], &b[..b.len() / 2])
        }
        Body::Garbage => respond(
            s,
            200,
            jpeg,
            &[],
            b"<html><body>Sorry, try later</body></html>",
        ),
        Body::Huge => huge(s, Some(st.opts.huge_bytes)),
        Body::HugeStream => huge(s, None),
    }
}

fn trickle(s: &mut TcpStream, st: &State, b: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        b.len()
    );
    s.write_all(head.as_bytes())?;
    let until = Instant::now() + st.opts.stall * 4;
    for chunk in b.chunks(64) {
        if Instant::now() > until {
            break;
        }
        s.write_all(chunk)?;
        s.flush()?;
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn cut(s: &mut TcpStream, b: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        b.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(&b[..b.len() / 2])?;
    s.flush()?;
    s.shutdown(std::net::Shutdown::Both)
}

fn huge(s: &mut TcpStream, declared: Option<usize>) -> std::io::Result<()> {
    let total = declared.unwrap_or(64 << 20);
    let head = match declared {
        Some(n) => {
            format!("HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {n}\r\n\r\n")
        }
        None => {
            "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n".to_string()
        }
    };
    s.write_all(head.as_bytes())?;
    let chunk = vec![0xAB_u8; 64 << 10];
    let mut sent = 0;
    while sent < total {
        s.write_all(&chunk)?;
        sent += chunk.len();
    }
    Ok(())
}
