//! `lab5 collect` against a real loopback server that speaks The Cat API / The Dog API
//! and serves real photos from the pets folder, with every fault of the issue: 429 with
//! `Retry-After`, 500s, slow and cut responses, truncated and non-image bodies, bodies over
//! the size limit, the same image under two ids, an id with `../`, bad or missing keys,
//! a killed run and a vanished server.

mod support;

use lab5::data::collect::{collect_with, CollectOptions};
use lab5::data::images::file_id;
use lab5::data::Class;
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::pets_server::{Body, Item, Options, PetServer};
use support::project::{
    assert_no_secret, check_consistent, class_counts, files_under, photos, text, Project,
};

const CAT_VAR: &str = "LAB5_TEST_CAT_KEY";
const DOG_VAR: &str = "LAB5_TEST_DOG_KEY";
const CAT_KEY: &str = "live_cat_9f8e7d6c5b4aSECRET";
const DOG_KEY: &str = "live_dog_1a2b3c4d5e6fSECRET";

/// Config edits pointing both APIs at `server`, with small timeouts and back-offs.
fn edits(server: &PetServer, per_class: usize) -> Vec<(&'static str, Value)> {
    vec![
        ("api.cat.base_url", json!(server.base_url("cat"))),
        ("api.dog.base_url", json!(server.base_url("dog"))),
        ("api.cat.key_env", json!(CAT_VAR)),
        ("api.dog.key_env", json!(DOG_VAR)),
        ("api.page_size", json!(8)),
        ("api.concurrency", json!(4)),
        ("api.timeout_secs", json!(1)),
        ("api.retries", json!(2)),
        ("api.backoff_ms", json!(10)),
        ("api.max_backoff_ms", json!(300)),
        ("api.max_image_bytes", json!(2_000_000)),
        ("api.request_budget", json!(40)),
        ("data.per_class", json!(per_class)),
    ]
}

fn keyed() -> Options {
    Options {
        cat_key: Some(CAT_KEY.into()),
        dog_key: Some(DOG_KEY.into()),
        ..Options::default()
    }
}

fn dotenv() -> String {
    format!("# test keys\n{CAT_VAR}={CAT_KEY}\nexport {DOG_VAR}=\"{DOG_KEY}\"\n")
}

fn report(o: &std::process::Output) -> Value {
    let (out, err) = text(o);
    assert!(o.status.success(), "collect failed:\n{out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

fn cat_items_with_faults() -> Vec<Item> {
    let good = photos("cat", 0, 30);
    let f = photos("cat", 30, 8);
    let with_url = |id: &str, url: &str, p| Item {
        url: Some(url.into()),
        ..Item::new(id, Body::Photo(p))
    };
    let mut items = vec![
        Item::photo(good[0].clone()),
        Item::new("same-as-first", Body::Photo(good[0].clone())),
        Item::new("../../escape", Body::Photo(f[0].clone())),
        Item::new("flaky500", Body::Fail500(2, f[1].clone())),
        Item::new("slow-once", Body::SlowOnce(f[2].clone())),
        Item::new("cut-once", Body::CutOnce(f[3].clone())),
        Item::new("truncated", Body::Truncated(f[4].clone())),
        Item::new("html", Body::Garbage),
        Item::new("huge", Body::Huge),
        Item::new("huge-stream", Body::HugeStream),
        with_url("ftp", "ftp://127.0.0.1/x.jpg", f[5].clone()),
        with_url("no-url", "", f[6].clone()),
        Item::new("trickle", Body::Trickle(f[7].clone())),
    ];
    for p in &good[1..] {
        items.push(Item {
            breed: Some((json!("abys"), "Abyssinian".into())),
            ..Item::photo(p.clone())
        });
    }
    items
}

fn dog_items() -> Vec<Item> {
    let mut items: Vec<Item> = photos("dog", 0, 25)
        .into_iter()
        .enumerate()
        .map(|(i, p)| Item {
            breed: Some((json!(100 + i), format!("Breed {i}"))),
            ..Item::photo(p)
        })
        .collect();
    items.insert(
        1,
        Item::new(
            "dog-that-is-a-cat",
            Body::Photo(photos("cat", 0, 1)[0].clone()),
        ),
    );
    items
}

#[test]
fn collect_survives_every_fault_and_keeps_the_data_set_consistent() {
    let opts = Options {
        search_429: 1,
        search_500: 1,
        ..keyed()
    };
    let server = PetServer::start(opts, cat_items_with_faults(), dog_items());
    let p = Project::new("collect-faults", &edits(&server, 20));
    p.write_env(&dotenv());
    let t = Instant::now();
    let out = p.run(&["collect", "--json"], &[]);
    let r = report(&out);
    eprintln!("faults run: {:.1} s", t.elapsed().as_secs_f64());
    let (cat, dog) = (&r["classes"][0], &r["classes"][1]);
    assert_eq!(
        (cat["after"].as_u64(), dog["after"].as_u64()),
        (Some(20), Some(20)),
        "{r:#}"
    );
    let rej = &cat["rejected"];
    for (reason, n) in [
        ("not-image", 2),
        ("too-large", 2),
        ("bad-url", 1),
        ("bad-item", 1),
        ("timeout", 1),
    ] {
        assert_eq!(rej[reason].as_u64(), Some(n), "{reason}: {r:#}");
    }
    // data/rejected.csv lists every refused item, with the same reasons.
    let mut listed = csv::Reader::from_path(p.data_dir().join("rejected.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = listed.records().map(Result::unwrap).collect();
    for row in &rows {
        assert_eq!(&row[0], "cat", "{row:?}");
        assert!(!row[1].is_empty() && !row[1].contains('"'), "{row:?}");
    }
    let mut reasons: Vec<String> = rows.iter().map(|x| x[2].to_string()).collect();
    reasons.sort();
    let expected = [
        "bad-item",
        "bad-url",
        "not-image",
        "not-image",
        "timeout",
        "too-large",
        "too-large",
    ];
    assert_eq!(reasons, expected, "{r:#}");
    assert_eq!(cat["duplicates"].as_u64(), Some(1), "{r:#}");
    assert_eq!(
        dog["duplicates"].as_u64(),
        Some(0),
        "the same bytes under the other label are no duplicate: {r:#}"
    );
    let conflicts = r["label_conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "a cat photo served as a dog: {r:#}");
    assert!(r["retries"].as_u64().unwrap() >= 8, "{r:#}");
    let m = check_consistent(&p);
    assert_eq!(class_counts(&m), (20, 20));
    assert!(m.records.iter().all(|r| r.split.is_some()));
    let escaped = m
        .records
        .iter()
        .find(|r| r.url.ends_with("/img/cat/2"))
        .expect("escape item stored");
    assert_eq!(escaped.id, file_id("../../escape"));
    assert!(m
        .records
        .iter()
        .any(|r| r.breed_id.as_deref() == Some("abys")));
    assert!(m
        .records
        .iter()
        .any(|r| r.breed_id.as_deref() == Some("100")));
    for (id, tries) in [("flaky500", 3), ("slow-once", 2), ("cut-once", 2)] {
        assert!(
            m.records.iter().any(|r| r.id == id),
            "{id} must be stored after its retries: {r:#}"
        );
        assert_eq!(server.hits("cat", id), tries, "{id}");
    }
    for id in ["truncated", "html", "huge", "huge-stream", "trickle"] {
        assert!(!m.records.iter().any(|r| r.id == id), "{id} was stored");
    }
    assert_eq!(server.hits("cat", "huge"), 1, "a size rejection is final");
    let s = server.searches();
    assert_eq!((s[0].1, s[1].1), (429, 500));
    assert!(
        s[1].0 - s[0].0 >= Duration::from_millis(280),
        "Retry-After (capped) was not honoured"
    );
    assert_eq!(
        server.key_on_images(),
        0,
        "the key must only go to the API host"
    );
    assert_no_secret(&p, &[&out], CAT_KEY);
    assert_no_secret(&p, &[&out], DOG_KEY);
}

#[test]
fn bad_or_missing_key_gives_a_clear_error_naming_the_variable_only() {
    let server = PetServer::start(
        keyed(),
        photos("cat", 0, 3).into_iter().map(Item::photo).collect(),
        vec![],
    );
    let p = Project::new("collect-badkey", &edits(&server, 2));
    let wrong = "sk-WRONG-secret-4242";
    let bad = p.run(&["collect", "--class", "cat"], &[(CAT_VAR, wrong)]);
    let (_, err) = text(&bad);
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(
        err.contains(CAT_VAR) && err.contains("refused the key"),
        "{err}"
    );
    assert_no_secret(&p, &[&bad], wrong);
    let missing = p
        .command(&["collect", "--class", "cat"], &[])
        .env_remove(CAT_VAR)
        .output()
        .unwrap();
    let (_, err) = text(&missing);
    assert_eq!(missing.status.code(), Some(1), "{err}");
    assert!(
        err.contains(CAT_VAR) && err.contains("requires an API key"),
        "{err}"
    );
    assert_eq!(server.total_hits(), 0);
    let written = files_under(&p.data_dir());
    assert!(written.is_empty(), "a refused key wrote {written:?}");
}

#[test]
fn killed_collect_resumes_without_downloading_again() {
    let cats: Vec<Item> = photos("cat", 100, 40)
        .into_iter()
        .map(Item::photo)
        .collect();
    let dogs: Vec<Item> = photos("dog", 100, 40)
        .into_iter()
        .map(Item::photo)
        .collect();
    let opts = Options {
        image_delay: Duration::from_millis(60),
        ..keyed()
    };
    let server = PetServer::start(opts, cats, dogs);
    let mut e = edits(&server, 30);
    e.push(("api.concurrency", json!(2)));
    let p = Project::new("collect-kill", &e);
    p.write_env(&dotenv());
    let mut child = p
        .command(&["collect"], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.total_hits() < 14 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let recorded: Vec<String> = p.manifest().records.iter().map(|r| r.id.clone()).collect();
    let on_disk = stored_ids(&p, "cat");
    assert!(
        !recorded.is_empty() && recorded.len() < 30,
        "kill came too late or too early: {}",
        recorded.len()
    );
    let out = p.run(&["collect", "--json"], &[]);
    let r = report(&out);
    let m = check_consistent(&p);
    assert_eq!(class_counts(&m), (30, 30));
    for id in recorded.iter().chain(&on_disk) {
        assert_eq!(server.hits("cat", id), 1, "{id} was downloaded again");
    }
    let resumed = on_disk.iter().filter(|id| !recorded.contains(id)).count();
    assert_eq!(
        r["classes"][0]["resumed"].as_u64(),
        Some(resumed as u64),
        "{r:#}"
    );
    assert_eq!(
        r["classes"][0]["before"].as_u64(),
        Some(recorded.len() as u64)
    );
    assert_no_secret(&p, &[&out], CAT_KEY);
    assert_no_secret(&p, &[&out], DOG_KEY);
}

#[test]
fn cancelled_collect_keeps_a_consistent_data_set_and_resumes() {
    let cats: Vec<Item> = photos("cat", 150, 30)
        .into_iter()
        .map(Item::photo)
        .collect();
    let opts = Options {
        image_delay: Duration::from_millis(50),
        ..keyed()
    };
    let server = PetServer::start(opts, cats, vec![]);
    let p = Project::new("collect-cancel", &edits(&server, 24));
    p.write_env(&dotenv());
    let cfg = p.config();
    let cancel = Arc::new(AtomicBool::new(false));
    let first = CollectOptions {
        classes: vec![Class::Cat],
        cancel: Some(cancel.clone()),
        ..CollectOptions::default()
    };
    let report = std::thread::scope(|scope| {
        let run = scope.spawn(|| collect_with(&cfg, &first));
        while server.total_hits() < 8 && !run.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        cancel.store(true, Ordering::SeqCst);
        run.join().unwrap()
    })
    .unwrap();
    let had = report.classes[0].after;
    assert!(report.cancelled && had > 0 && had < 24, "{report}");
    let m = check_consistent(&p);
    assert_eq!(m.count(Class::Cat), had);
    assert!(m.records.iter().all(|r| r.split.is_some()));
    let rest = CollectOptions {
        classes: vec![Class::Cat],
        ..CollectOptions::default()
    };
    let again = collect_with(&cfg, &rest).unwrap();
    assert!(!again.cancelled, "{again}");
    assert_eq!((again.classes[0].before, again.classes[0].after), (had, 24));
    assert_eq!(class_counts(&check_consistent(&p)), (24, 0));
    for r in &m.records {
        assert_eq!(
            server.hits("cat", &r.id),
            1,
            "{} was downloaded again",
            r.id
        );
    }
}

/// Ids of the complete image files in `data/raw/<class>` (temp files excluded).
fn stored_ids(p: &Project, class: &str) -> Vec<String> {
    let dir = p.data_dir().join("raw").join(class);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .map(|n| n.split('.').next().unwrap().to_string())
        .collect()
}

#[test]
fn vanished_server_fails_clearly_and_a_rerun_resumes() {
    let cats = || {
        photos("cat", 200, 30)
            .into_iter()
            .map(Item::photo)
            .collect::<Vec<_>>()
    };
    let opts = Options {
        image_delay: Duration::from_millis(40),
        ..keyed()
    };
    let mut first = PetServer::start(opts.clone(), cats(), vec![]);
    let p = Project::new("collect-vanish", &edits(&first, 20));
    p.write_env(&dotenv());
    let child = p
        .command(&["collect", "--class", "cat"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while first.total_hits() < 10 {
        std::thread::sleep(Duration::from_millis(5));
    }
    first.stop();
    let out = child.wait_with_output().unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot reach The Cat API") && err.contains("run `lab5 collect` again"),
        "{err}"
    );
    let recorded: Vec<String> = check_consistent(&p)
        .records
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert!(!recorded.is_empty());
    let second = PetServer::start(opts, cats(), vec![]);
    p.write_config(&edits(&second, 20));
    let again = p.run(&["collect", "--class", "cat"], &[]);
    assert!(again.status.success(), "{}", text(&again).1);
    eprintln!("{}", text(&again).0);
    assert_eq!(class_counts(&check_consistent(&p)).0, 20);
    assert!(
        recorded.iter().all(|id| second.hits("cat", id) == 0),
        "recorded images fetched again"
    );
    assert_no_secret(&p, &[&out, &again], CAT_KEY);
}

#[test]
fn keyless_random_results_are_deduplicated_until_the_target() {
    let cats: Vec<Item> = photos("cat", 300, 20)
        .into_iter()
        .map(Item::photo)
        .collect();
    let dogs: Vec<Item> = photos("dog", 300, 20)
        .into_iter()
        .map(Item::photo)
        .collect();
    let server = PetServer::start(
        Options {
            random: true,
            page_cap: 5,
            ..Options::default()
        },
        cats,
        dogs,
    );
    let p = Project::new("collect-keyless", &edits(&server, 12));
    let out = p
        .command(&["collect", "--json"], &[])
        .env_remove(CAT_VAR)
        .env_remove(DOG_VAR)
        .output()
        .unwrap();
    let r = report(&out);
    for c in 0..2 {
        let cr = &r["classes"][c];
        assert_eq!(cr["after"].as_u64(), Some(12), "{r:#}");
        assert_eq!(cr["keyless"].as_bool(), Some(true));
        assert!(
            cr["repeats"].as_u64().unwrap() > 0,
            "random pages repeat: {r:#}"
        );
    }
    assert_eq!(class_counts(&check_consistent(&p)), (12, 12));
}

#[test]
fn imported_content_is_a_duplicate_and_ids_shared_across_sources_stay_apart() {
    let folder = Project::new("collect-dedup-src", &[]);
    let cat_dir = folder.data_dir().join("cat");
    std::fs::create_dir_all(&cat_dir).unwrap();
    let shared = photos("cat", 400, 6);
    for f in &shared {
        std::fs::copy(f, cat_dir.join(f.file_name().unwrap())).unwrap();
    }
    let stem = |f: &std::path::Path| f.file_stem().unwrap().to_string_lossy().into_owned();
    // A new photo offered under the id of an imported file comes first.
    let imported_id = stem(&shared[0]);
    let mut cats = vec![Item::new(
        &imported_id,
        Body::Photo(photos("cat", 420, 1).remove(0)),
    )];
    cats.extend(
        shared
            .iter()
            .enumerate()
            .map(|(i, f)| Item::new(&format!("api{i}"), Body::Photo(f.clone()))),
    );
    let new_cats = photos("cat", 406, 10);
    cats.extend(new_cats.iter().cloned().map(Item::photo));
    // The Dog API offers a dog under the id of a stored Cat API image.
    let cat_api_id = stem(&new_cats[0]);
    let mut dogs = vec![Item::new(
        &cat_api_id,
        Body::Photo(photos("dog", 406, 1).remove(0)),
    )];
    dogs.extend(photos("dog", 410, 11).into_iter().map(Item::photo));
    let server = PetServer::start(keyed(), cats, dogs);
    let p = Project::new("collect-dedup", &edits(&server, 12));
    p.write_env(&dotenv());
    let imported = p.run(&["import", folder.data_dir().to_str().unwrap()], &[]);
    assert!(imported.status.success(), "{}", text(&imported).1);
    let r = report(&p.run(&["collect", "--json"], &[]));
    assert_eq!(r["classes"][0]["duplicates"].as_u64(), Some(6), "{r:#}");
    let m = check_consistent(&p);
    assert_eq!(class_counts(&m), (12, 12));
    let source = |id: &str| m.records.iter().find(|r| r.id == id).map(|r| r.source);
    use lab5::data::Origin;
    assert_eq!(source(&imported_id), Some(Origin::Folder));
    assert_eq!(source(&format!("{imported_id}_cat")), Some(Origin::CatApi));
    assert_eq!(source(&cat_api_id), Some(Origin::CatApi));
    assert_eq!(source(&format!("{cat_api_id}_dog")), Some(Origin::DogApi));
    let again = report(&p.run(&["collect", "--per-class", "13", "--json"], &[]));
    assert_eq!(
        again["classes"][0]["downloaded"].as_u64(),
        Some(1),
        "{again:#}"
    );
    assert_eq!(server.hits("cat", &imported_id), 1);
    assert_eq!(server.hits("dog", &cat_api_id), 1);
    assert_eq!(class_counts(&check_consistent(&p)), (13, 12));
}

/// Throughput from the loopback server (run with `--ignored --nocapture` to measure).
#[test]
#[ignore]
fn collect_throughput() {
    let cats: Vec<Item> = photos("cat", 0, 300).into_iter().map(Item::photo).collect();
    let dogs: Vec<Item> = photos("dog", 0, 300).into_iter().map(Item::photo).collect();
    let server = PetServer::start(
        Options {
            page_cap: 100,
            ..keyed()
        },
        cats,
        dogs,
    );
    let mut e = edits(&server, 300);
    e.extend([
        ("api.page_size", json!(100)),
        ("api.concurrency", json!(8)),
        ("api.timeout_secs", json!(10)),
    ]);
    let p = Project::new("collect-speed", &e);
    p.write_env(&dotenv());
    let r = report(&p.run(&["collect", "--json"], &[]));
    let n: u64 = (0..2)
        .map(|c| r["classes"][c]["downloaded"].as_u64().unwrap())
        .sum();
    let bytes: u64 = (0..2)
        .map(|c| r["classes"][c]["downloaded_bytes"].as_u64().unwrap())
        .sum();
    let s = r["seconds"].as_f64().unwrap();
    eprintln!(
        "collect: {n} images, {:.1} MB in {s:.2} s = {:.0} images/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        n as f64 / s,
        bytes as f64 / 1e6 / s
    );
    assert_eq!(n, 600);
}

/// 429 with `Retry-After` as an HTTP-date 3 s ahead: the client waits until then, capped
/// by `api.max_backoff_ms` (600 ms here); back-off alone would wait about 10 ms.
#[test]
fn retry_after_as_an_http_date_is_honoured_and_capped() {
    let opts = Options {
        search_429: 1,
        retry_after_date: Some(Duration::from_secs(3)),
        ..keyed()
    };
    let server = PetServer::start(opts, cat_items_with_faults(), dog_items());
    let mut e = edits(&server, 2);
    e.push(("api.max_backoff_ms", json!(600)));
    let p = Project::new("collect-retry-date", &e);
    p.write_env(&dotenv());
    let out = p.run(&["collect", "--class", "cat", "--json"], &[]);
    report(&out);
    let s = server.searches();
    assert_eq!((s[0].1, s[1].1), (429, 200));
    let waited = s[1].0 - s[0].0;
    assert!(
        waited >= Duration::from_millis(580) && waited < Duration::from_millis(2500),
        "waited {waited:?}: the HTTP-date must be honoured and capped at 600 ms"
    );
}
