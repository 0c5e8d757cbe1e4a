//! What a TensorBoard folder holds, read back from its event files: the TFRecord reader
//! (the inverse of [`super::EventWriter`]'s framing, CRCs checked) and the tabs its
//! summaries fill, for `lab5 tensorboard`'s run list and notebook 03's note.

use super::proto::{event, summary_value, Event};
use super::{masked_crc, PROJECTOR_CONFIG};
use anyhow::{bail, Context, Result};
use prost::Message;
use std::fmt;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

/// The events of one event file, in order (TensorFlow's `record_reader.cc` framing).
pub struct EventReader<R> {
    input: R,
    /// Set after an error: the iterator ends there (the framing is lost).
    failed: bool,
}

impl EventReader<BufReader<std::fs::File>> {
    /// Reads the event file at `path`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path) -> Result<Self> {
        let f = std::fs::File::open(path)
            .with_context(|| format!("cannot open event file {}", path.display()))?;
        Ok(EventReader::new(BufReader::new(f)))
    }
}

impl<R: Read> EventReader<R> {
    /// Reads events from `input`.
    pub fn new(input: R) -> Self {
        EventReader {
            input,
            failed: false,
        }
    }

    /// The next event; `None` at the end of the data or at a record cut short (a file
    /// still being written).
    ///
    /// # Errors
    /// A length or data CRC does not match, the data is no `Event`, or reading fails.
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        let mut head = [0u8; 12];
        if !self.fill(&mut head)? {
            return Ok(None);
        }
        let (len, crc) = head.split_at(8);
        if u32::from_le_bytes(crc.try_into()?) != masked_crc(len) {
            bail!("corrupt event record: the length's CRC does not match");
        }
        let len = usize::try_from(u64::from_le_bytes(len.try_into()?))
            .context("event record longer than memory")?;
        let mut data = vec![0u8; len + 4];
        if !self.fill(&mut data)? {
            return Ok(None);
        }
        let (data, crc) = data.split_at(len);
        if u32::from_le_bytes(crc.try_into()?) != masked_crc(data) {
            bail!("corrupt event record: the data's CRC does not match");
        }
        Ok(Some(
            Event::decode(data).context("event record is no Event")?,
        ))
    }

    /// Fills `buf`; false when the input ends first.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool> {
        match self.input.read_exact(buf) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e).context("cannot read event file"),
        }
    }
}

impl<R: Read> Iterator for EventReader<R> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_event();
        self.failed = next.is_err();
        next.transpose()
    }
}

/// The tabs a TensorBoard folder's files fill (read from what is there, not assumed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tabs {
    /// Event files in the folder.
    pub event_files: usize,
    /// A `simple_value` summary (Scalars).
    pub scalars: bool,
    /// An image summary (Images).
    pub images: bool,
    /// A histogram summary (Histograms, Distributions).
    pub histograms: bool,
    /// A value owned by the `hparams` plugin (HParams).
    pub hparams: bool,
    /// A projector configuration next to the events (Projector).
    pub projector: bool,
}

impl Tabs {
    /// Reads the event files of `dir` (names holding `tfevents`, as TensorBoard finds
    /// them) until each kind of summary is seen or the files end; an unreadable or corrupt
    /// file counts with what was read of it before.
    pub fn of(dir: &Path) -> Tabs {
        let mut tabs = Tabs {
            projector: dir.join(PROJECTOR_CONFIG).is_file(),
            ..Tabs::default()
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return tabs;
        };
        for e in entries.flatten() {
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            if !is_file || !e.file_name().to_string_lossy().contains("tfevents") {
                continue;
            }
            tabs.event_files += 1;
            let Ok(reader) = EventReader::open(&e.path()) else {
                continue;
            };
            for event in reader.map_while(Result::ok) {
                tabs.add(&event);
                if tabs.all_summaries() {
                    break;
                }
            }
        }
        tabs
    }

    /// Notes the kinds of summary `event` carries.
    fn add(&mut self, event: &Event) {
        let Some(event::What::Summary(s)) = &event.what else {
            return;
        };
        for v in &s.value {
            match &v.value {
                Some(summary_value::Value::SimpleValue(_)) => self.scalars = true,
                Some(summary_value::Value::Image(_)) => self.images = true,
                Some(summary_value::Value::Histo(_)) => self.histograms = true,
                None => {}
            }
            let plugin = v.metadata.as_ref().and_then(|m| m.plugin_data.as_ref());
            if plugin.is_some_and(|p| p.plugin_name == super::hparams::PLUGIN_NAME) {
                self.hparams = true;
            }
        }
    }

    fn all_summaries(&self) -> bool {
        self.scalars && self.images && self.histograms && self.hparams
    }
}

impl fmt::Display for Tabs {
    /// e.g. `scalars, histograms, hparams (2 event files)`, or `no summaries yet (1 event
    /// file)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.scalars, "scalars"),
            (self.images, "images"),
            (self.histograms, "histograms"),
            (self.hparams, "hparams"),
            (self.projector, "projector"),
        ];
        let found: Vec<&str> = names
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        let what = if found.is_empty() {
            "no summaries yet".to_string()
        } else {
            found.join(", ")
        };
        let n = self.event_files;
        write!(
            f,
            "{what} ({n} event file{})",
            if n == 1 { "" } else { "s" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::{histogram::histogram, EventWriter};
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lab5-tabs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn tabs_name_only_the_kinds_written() {
        let dir = temp("scalars");
        let mut w = EventWriter::create(&dir).unwrap();
        w.scalar("loss/train", 0.5, 1).unwrap();
        w.flush().unwrap();
        let tabs = Tabs::of(&dir);
        assert_eq!(tabs.to_string(), "scalars (1 event file)");
        let h = histogram(&tch::Tensor::from_slice(&[1.0f32, 2.0]), 4).unwrap();
        w.histogram("weights/x", h.unwrap(), 1).unwrap();
        w.flush().unwrap();
        std::fs::write(dir.join(PROJECTOR_CONFIG), "").unwrap();
        let tabs = Tabs::of(&dir);
        assert_eq!(
            tabs.to_string(),
            "scalars, histograms, projector (1 event file)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            Tabs::of(&dir).to_string(),
            "no summaries yet (0 event files)"
        );
    }

    #[test]
    fn a_record_cut_short_ends_the_events_and_a_bad_crc_is_an_error() {
        let dir = temp("cut");
        let mut w = EventWriter::create(&dir).unwrap();
        w.scalar("lr", 0.1, 1).unwrap();
        w.flush().unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let whole: Vec<Event> = EventReader::new(&bytes[..]).map(Result::unwrap).collect();
        assert_eq!(whole.len(), 2);
        let cut: Vec<Event> = EventReader::new(&bytes[..bytes.len() - 3])
            .map(Result::unwrap)
            .collect();
        assert_eq!(cut.len(), 1);
        let mut bad = bytes.clone();
        let last = bad.len() - 5; // inside the second record's data
        bad[last] ^= 0xff;
        let read: Vec<Result<Event>> = EventReader::new(&bad[..]).collect();
        assert!(read[0].is_ok() && read[1].is_err(), "{read:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
