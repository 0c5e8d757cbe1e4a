//! One way to read and write the lab's CSV files. Every file with a fixed schema (the
//! manifest, `rejected.csv`, `labels.csv` on import, `audit.csv`, `predictions.csv`, `separation.csv`,
//! `comparison.csv`, `ablation.csv`, `lab5 label`'s `labels.csv`, `rounds.csv` and round files,
//! `simulation.csv`, the bench's `train_files.csv`) is a list of rows of a
//! `#[derive(Serialize, Deserialize)]` struct: the header is the struct's field names in
//! order, one line per row. [`write_rows`] writes such a file atomically, [`read_rows`]
//! reads it back and names the file, line and column of a bad value. The `csv` crate does
//! the quoting (only where a field holds a comma, quote or line break) and skips a UTF-8
//! byte-order mark.

use anyhow::{anyhow, Context, Result};
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Serialize, Serializer};
use std::path::Path;

/// Writes `rows` as CSV to `path` through a temp file and a rename, so readers see the
/// old file or the whole new one. An empty list still writes the header.
///
/// Errors: a row that does not serialize as flat fields, or the file cannot be written.
pub fn write_rows<T: Serialize + DeserializeOwned>(path: &Path, rows: &[T]) -> Result<()> {
    let bytes = to_csv(rows).with_context(|| format!("cannot write {}", path.display()))?;
    super::write_atomic(path, &bytes)
}

/// `rows` as CSV text: the header, then one line per row (`\n` line ends).
pub(crate) fn to_csv<T: Serialize + DeserializeOwned>(rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        w.write_record(header_of::<T>()?)?;
    }
    for (i, row) in rows.iter().enumerate() {
        w.serialize(row).with_context(|| format!("row {}", i + 1))?;
    }
    w.into_inner()
        .map_err(|e| anyhow!("cannot flush the CSV text: {}", e.error()))
}

/// Reads the CSV file at `path` into rows of `T`, matching columns to fields by header
/// name (extra columns are ignored, a missing column is an error unless its field is an
/// `Option`). Empty fields read as `None` for `Option` fields.
///
/// Errors name the file and the line, and the column where the `csv` crate knows it (a
/// value that does not parse; not a message of a `deserialize_with` function or an
/// unknown enum variant, which name the column or the value themselves):
/// `data/manifest.csv: line 7, column `width`: invalid digit found in string`.
pub(crate) fn read_rows<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers = r.headers().map_err(|e| located(path, None, e))?.clone();
    r.deserialize()
        .map(|row| row.map_err(|e| located(path, Some(&headers), e)))
        .collect()
}

/// A CSV error as `<file>: line <n>, column `<name>`: <what>`.
fn located(path: &Path, headers: Option<&csv::StringRecord>, e: csv::Error) -> anyhow::Error {
    let line = e.position().map(|p| format!("line {}, ", p.line()));
    let (column, what) = match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let name = err
                .field()
                .and_then(|i| headers.and_then(|h| h.get(i as usize)));
            let column = name.map(|n| format!("column `{n}`: "));
            (column, err.kind().to_string())
        }
        _ => (None, e.to_string()),
    };
    anyhow!(
        "{}: {}{}{what}",
        path.display(),
        line.unwrap_or_default(),
        column.unwrap_or_default()
    )
}

/// Serializes a float with `D` decimals (`fixed::<6>`: `0.123457`), for files written
/// with a fixed precision (`predictions.csv`, `separation.csv`, `ablation.csv`); use it as
/// `#[serde(serialize_with = "csv_io::fixed::<6, _>")]` (the `_` is the serializer).
pub(crate) fn fixed<const D: usize, S: Serializer>(
    x: &f64,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{x:.D$}"))
}

/// Serializes a float as Rust prints it (shortest text that reads back to the same
/// number, never an exponent: `1234567`, `0.93125`); `None` as an empty field.
pub(crate) fn plain_float<S: Serializer>(
    x: &Option<f64>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match x {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// The field names of the row struct `T`, in order (its CSV header), read from what
/// `T`'s derived `Deserialize` asks for.
fn header_of<T: DeserializeOwned>() -> Result<&'static [&'static str]> {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    if fields.is_empty() {
        anyhow::bail!("a CSV row must be a struct with named fields");
    }
    Ok(fields)
}

/// A deserializer that only records the field names a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> std::result::Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("only the field names were wanted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Row {
        name: String,
        n: u32,
        note: Option<String>,
    }

    fn dir(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("lab5-csvio-{tag}-{}", std::process::id()))
    }

    fn row(name: &str, n: u32, note: Option<&str>) -> Row {
        Row {
            name: name.into(),
            n,
            note: note.map(str::to_string),
        }
    }

    #[test]
    fn rows_round_trip_with_quoting_and_empty_options() {
        let d = dir("trip");
        let p = d.join("t.csv");
        let rows = vec![row("a, \"b\"", 1, None), row("line\nbreak", 2, Some("x"))];
        write_rows(&p, &rows).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "name,n,note\n\"a, \"\"b\"\"\",1,\n\"line\nbreak\",2,x\n"
        );
        assert_eq!(read_rows::<Row>(&p).unwrap(), rows);
        write_rows::<Row>(&p, &[]).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "name,n,note\n");
        assert!(read_rows::<Row>(&p).unwrap().is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn user_files_with_bom_crlf_extra_and_missing_columns_read() {
        let d = dir("user");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("u.csv");
        std::fs::write(&p, "\u{feff}n,extra,name\r\n3,zz,c\r\n4,yy,d\r\n").unwrap();
        let rows = read_rows::<Row>(&p).unwrap();
        assert_eq!(rows, vec![row("c", 3, None), row("d", 4, None)]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_values_name_file_line_and_column() {
        let d = dir("bad");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("b.csv");
        std::fs::write(&p, "name,n,note\na,1,\nb,two,\n").unwrap();
        let err = read_rows::<Row>(&p).unwrap_err().to_string();
        assert!(err.starts_with(&p.display().to_string()), "{err}");
        assert!(err.contains("line 3, column `n`: "), "{err}");
        std::fs::write(&p, "n,note\n1,\n").unwrap();
        let err = read_rows::<Row>(&p).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("missing field `name`"),
            "{err}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn float_helpers_keep_the_files_precision() {
        #[derive(Serialize, Deserialize)]
        struct F {
            #[serde(serialize_with = "fixed::<6, _>")]
            a: f64,
            #[serde(serialize_with = "plain_float")]
            b: Option<f64>,
            #[serde(serialize_with = "plain_float")]
            c: Option<f64>,
        }
        let f = F {
            a: 0.1234567,
            b: Some(1234567.0),
            c: None,
        };
        let text = String::from_utf8(to_csv(&[f]).unwrap()).unwrap();
        assert_eq!(text, "a,b,c\n0.123457,1234567,\n");
    }
}
