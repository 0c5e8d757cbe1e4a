//! A minimal TensorBoard writer: scalar summaries in the TFRecord event-file format, with
//! no TensorFlow and no protobuf library.
//!
//! An event file is a sequence of records: `u64` length (LE), masked CRC-32C of the
//! length, the data, masked CRC-32C of the data. Each record's data is a protobuf
//! `Event`: the first one carries `file_version: "brain.Event:2"`, the others
//! `{wall_time, step, summary {value {tag, simple_value}}}`. The few protobuf fields
//! needed are encoded by hand below.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Version string TensorBoard expects in the first event.
const FILE_VERSION: &str = "brain.Event:2";
/// Constant added when masking a CRC (TFRecord format).
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// How many file names `create` tries (pid, pid-1, ...) before giving up.
const NAME_ATTEMPTS: u32 = 1000;

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Field numbers of `Event`, `Summary` and `Summary.Value` (tensorflow/core/util/event.proto,
/// tensorflow/core/framework/summary.proto).
const EVENT_WALL_TIME: u8 = 1;
const EVENT_STEP: u8 = 2;
const EVENT_FILE_VERSION: u8 = 3;
const EVENT_SUMMARY: u8 = 5;
const SUMMARY_VALUE: u8 = 1;
const VALUE_TAG: u8 = 1;
const VALUE_SIMPLE_VALUE: u8 = 2;

/// Appends scalar events to `events.out.tfevents.<secs>.<host>.<pid>.lab5` in a folder.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates the folder and a new event file in it, starting with the version event.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create TensorBoard folder {}", dir.display()))?;
        let (path, file) = new_file(dir)?;
        let mut w = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        let mut event = Vec::new();
        put_f64(&mut event, EVENT_WALL_TIME, now());
        put_bytes(&mut event, EVENT_FILE_VERSION, FILE_VERSION.as_bytes());
        w.record(&event)?;
        w.flush()?;
        Ok(w)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one scalar (e.g. tag `loss/train`, value, epoch as step).
    pub fn scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<()> {
        let mut v = Vec::new();
        put_bytes(&mut v, VALUE_TAG, tag.as_bytes());
        put_f32(&mut v, VALUE_SIMPLE_VALUE, value as f32);
        let mut summary = Vec::new();
        put_bytes(&mut summary, SUMMARY_VALUE, &v);
        let mut event = Vec::new();
        put_f64(&mut event, EVENT_WALL_TIME, now());
        put_varint_field(&mut event, EVENT_STEP, step as u64);
        put_bytes(&mut event, EVENT_SUMMARY, &summary);
        self.record(&event)
    }

    /// Writes buffered events to disk so TensorBoard sees them now.
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.out
            .get_ref()
            .sync_data()
            .with_context(|| format!("cannot sync {}", self.path.display()))
    }

    /// One TFRecord: length, its masked CRC, data, its masked CRC.
    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut rec = Vec::with_capacity(data.len() + 16);
        rec.extend_from_slice(&len);
        rec.extend_from_slice(&masked_crc(&len).to_le_bytes());
        rec.extend_from_slice(data);
        rec.extend_from_slice(&masked_crc(data).to_le_bytes());
        self.out
            .write_all(&rec)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// A fresh event file; a numeric suffix is added to the pid if the name is taken.
fn new_file(dir: &Path) -> Result<(PathBuf, File)> {
    let secs = now() as u64;
    let (host, pid) = (host_name(), std::process::id());
    for n in 0..NAME_ATTEMPTS {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let path = dir.join(format!(
            "events.out.tfevents.{secs}.{host}.{pid}{suffix}.lab5"
        ));
        match File::options().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }
    anyhow::bail!("cannot find a free event-file name in {}", dir.display())
}

/// The machine's name, reduced to characters safe in a file name.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let safe: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if safe.is_empty() {
        "localhost".into()
    } else {
        safe
    }
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// CRC-32C rotated and offset as the TFRecord format requires.
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

fn put_key(buf: &mut Vec<u8>, field: u8, wire: u8) {
    put_varint(buf, ((field as u64) << 3) | wire as u64);
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_varint_field(buf: &mut Vec<u8>, field: u8, v: u64) {
    put_key(buf, field, VARINT);
    put_varint(buf, v);
}

fn put_f64(buf: &mut Vec<u8>, field: u8, v: f64) {
    put_key(buf, field, FIXED64);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_f32(buf: &mut Vec<u8>, field: u8, v: f32) {
    put_key(buf, field, FIXED32);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, field: u8, data: &[u8]) {
    put_key(buf, field, LEN);
    put_varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_protobuf_spec() {
        let enc = |v: u64| {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            b
        };
        assert_eq!(enc(1), [0x01]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(-1i64 as u64).len(), 10);
    }

    #[test]
    fn masked_crc_of_empty_input_matches_tensorflow() {
        // TensorFlow's crc32c::Mask(crc32c::Value("", 0)): crc 0 -> 0xa282ead8.
        assert_eq!(masked_crc(b""), 0xa282_ead8);
        // crc32c("123456789") = 0xe3069283 (the standard check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }
}
