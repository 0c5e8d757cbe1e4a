//! TensorBoard's event files, written without TensorFlow: scalars, images, histograms and
//! the hyper-parameters of a run (PyTorch's `SummaryWriter`: `add_scalar`, `add_image`,
//! `add_histogram`, `add_hparams`).
//!
//! An event file is a sequence of TFRecords: `u64` length (LE), masked CRC-32C of the
//! length, the data, masked CRC-32C of the data (`tensorflow/core/lib/io/record_writer.cc`).
//! Each record's data is a protobuf `Event` ([`proto`], encoded by `prost`): the first one
//! carries `file_version: "brain.Event:2"`, the others `{wall_time, step, summary}`.
//! [`histogram`] turns a tensor into a `HistogramProto`, [`hparams`] a run's settings into
//! the HParams plugin's session messages, [`images`] a batch into one grid image;
//! [`contents`] reads event files back (what `lab5 tensorboard` lists).

pub mod contents;
pub mod histogram;
pub mod hparams;
pub mod images;
pub mod proto;
pub mod server;

use anyhow::{Context, Result};
use image::RgbImage;
use prost::Message;
use proto::{event, summary_value, Event, Summary, SummaryValue};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Version string TensorBoard expects in the first event.
const FILE_VERSION: &str = "brain.Event:2";
/// Constant added when masking a CRC (TFRecord format).
const CRC_MASK_DELTA: u32 = 0xa282_ead8;
/// `Summary.Image.colorspace` of RGB images.
const RGB: i32 = 3;

/// The Embedding Projector's configuration file in a TensorBoard folder (the name the
/// projector plugin looks for; written by `embed::projector`).
pub const PROJECTOR_CONFIG: &str = "projector_config.pbtxt";

/// How many file names `create` tries (pid, pid-1, ...) before giving up.
const NAME_ATTEMPTS: u32 = 1000;

/// Appends events to `events.out.tfevents.<secs>.<host>.<pid>.lab5` in a folder.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates the folder and a new event file in it, starting with the version event.
    ///
    /// # Errors
    /// The folder or the file cannot be created or written.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create TensorBoard folder {}", dir.display()))?;
        let (path, file) = new_file(dir)?;
        Self::start(path, file)
    }

    /// Creates (or truncates) the event file `path` itself, starting with the version
    /// event (for a file written under a temp name, then renamed).
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn create_file(path: &Path) -> Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Self::start(path.to_path_buf(), file)
    }

    /// A writer on `file` (at `path`) that has written the version event.
    fn start(path: PathBuf, file: File) -> Result<Self> {
        let mut w = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        w.write(&Event {
            wall_time: now(),
            step: 0,
            what: Some(event::What::FileVersion(FILE_VERSION.into())),
        })?;
        w.flush()?;
        Ok(w)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one scalar (e.g. tag `loss/train`, value, epoch as step); TensorBoard
    /// stores it as `f32`.
    ///
    /// # Errors
    /// The event cannot be written.
    pub fn scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<()> {
        let v = summary_value::Value::SimpleValue(value as f32);
        self.summary(step, vec![plain(tag, v)])
    }

    /// Appends one RGB image, PNG-encoded (the *Images* tab).
    ///
    /// # Errors
    /// The image is larger than `i32::MAX` pixels a side, or cannot be encoded or written.
    pub fn image(&mut self, tag: &str, rgb: &RgbImage, step: i64) -> Result<()> {
        let (w, h) = rgb.dimensions();
        let image = proto::Image {
            height: i32::try_from(h).context("image too tall for TensorBoard")?,
            width: i32::try_from(w).context("image too wide for TensorBoard")?,
            colorspace: RGB,
            encoded_image_string: crate::plot::encode_png(rgb)?,
        };
        self.summary(step, vec![plain(tag, summary_value::Value::Image(image))])
    }

    /// Appends one histogram (the *Histograms* and *Distributions* tabs).
    ///
    /// # Errors
    /// The event cannot be written.
    pub fn histogram(&mut self, tag: &str, h: proto::HistogramProto, step: i64) -> Result<()> {
        self.summary(step, vec![plain(tag, summary_value::Value::Histo(h))])
    }

    /// Appends values owned by a plugin (their `metadata` names it) with no value of
    /// their own, as the HParams plugin expects them.
    ///
    /// # Errors
    /// The event cannot be written.
    pub fn plugin_values(&mut self, values: Vec<SummaryValue>, step: i64) -> Result<()> {
        self.summary(step, values)
    }

    /// Writes buffered events to disk so TensorBoard sees them now.
    ///
    /// # Errors
    /// The file cannot be written or synced.
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.out
            .get_ref()
            .sync_data()
            .with_context(|| format!("cannot sync {}", self.path.display()))
    }

    /// One summary event at `step`, stamped now.
    fn summary(&mut self, step: i64, value: Vec<SummaryValue>) -> Result<()> {
        self.write(&Event {
            wall_time: now(),
            step,
            what: Some(event::What::Summary(Summary { value })),
        })
    }

    /// One TFRecord holding `event`: length, its masked CRC, data, its masked CRC.
    fn write(&mut self, event: &Event) -> Result<()> {
        let data = event.encode_to_vec();
        let len = (data.len() as u64).to_le_bytes();
        let mut rec = Vec::with_capacity(data.len() + 16);
        rec.extend_from_slice(&len);
        rec.extend_from_slice(&masked_crc(&len).to_le_bytes());
        rec.extend_from_slice(&data);
        rec.extend_from_slice(&masked_crc(&data).to_le_bytes());
        self.out
            .write_all(&rec)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// A summary value of one of the classic kinds (no plugin metadata).
fn plain(tag: &str, value: summary_value::Value) -> SummaryValue {
    SummaryValue {
        tag: tag.to_string(),
        metadata: None,
        value: Some(value),
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

/// Seconds since the Unix epoch (an event's `wall_time`).
pub(crate) fn now() -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_hold_events_that_decode_back() {
        let dir = std::env::temp_dir().join(format!("lab5-tb-unit-{}", std::process::id()));
        let mut w = EventWriter::create(&dir).unwrap();
        w.scalar("loss/train", 0.25, 3).unwrap();
        w.flush().unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let mut events = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(rest[8..12].try_into().unwrap());
            assert_eq!(crc, masked_crc(&rest[..8]));
            let data = &rest[12..12 + len];
            let crc = u32::from_le_bytes(rest[12 + len..16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc(data));
            events.push(Event::decode(data).unwrap());
            rest = &rest[16 + len..];
        }
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].what,
            Some(event::What::FileVersion(FILE_VERSION.into()))
        );
        let Some(event::What::Summary(s)) = &events[1].what else {
            panic!("second event is no summary: {:?}", events[1]);
        };
        assert_eq!(events[1].step, 3);
        assert_eq!(s.value[0].tag, "loss/train");
        assert_eq!(
            s.value[0].value,
            Some(summary_value::Value::SimpleValue(0.25))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn masked_crc_of_empty_input_matches_tensorflow() {
        // TensorFlow's crc32c::Mask(crc32c::Value("", 0)): crc 0 -> 0xa282ead8.
        assert_eq!(masked_crc(b""), 0xa282_ead8);
        // crc32c("123456789") = 0xe3069283 (the standard check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }
}
