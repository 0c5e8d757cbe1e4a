//! A labelling round on paper: the file a person fills in (`rounds/round-NNN.csv`, one
//! line per photo of the round: `id,species,breed,proposed,p,path` with `species` left
//! empty), and the strict reading of their answers, line by line.
//!
//! An answer file needs the columns `id` and `species` (`breed` is optional, other
//! columns are ignored). Every problem is reported at once, each with the file and line:
//! a line without id, an id that is no photo of the folder, an id given twice, a species
//! that is not `cat`, `dog` or `neither` (`cats`/`dogs` too, any case), a line without
//! species, and photos of the round with no line. Nothing is taken from a file with a
//! problem. A round file whose species are all still empty is "not answered yet".

use crate::data::Class;
use crate::util::csv_io;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What a photo shows, as a person says or the labelling proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Species {
    /// A cat.
    Cat,
    /// A dog.
    Dog,
    /// Neither a cat nor a dog (kept in `labels.csv`, not imported, not trained on).
    Neither,
}

impl Species {
    /// `cat`, `dog` or `neither`.
    pub fn name(self) -> &'static str {
        match self {
            Species::Cat => "cat",
            Species::Dog => "dog",
            Species::Neither => "neither",
        }
    }

    /// Parses `cat`/`cats`, `dog`/`dogs`, `neither` (any case, trimmed).
    pub fn parse(s: &str) -> Option<Species> {
        match Class::parse(s) {
            Some(c) => Some(c.into()),
            None => s
                .trim()
                .eq_ignore_ascii_case("neither")
                .then_some(Species::Neither),
        }
    }

    /// The class, for cat and dog.
    pub fn class(self) -> Option<Class> {
        match self {
            Species::Cat => Some(Class::Cat),
            Species::Dog => Some(Class::Dog),
            Species::Neither => None,
        }
    }
}

impl From<Class> for Species {
    fn from(c: Class) -> Self {
        match c {
            Class::Cat => Species::Cat,
            Class::Dog => Species::Dog,
        }
    }
}

impl std::fmt::Display for Species {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One line of a round file as lab5 writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RoundLine {
    /// The photo's id.
    pub id: String,
    /// Left empty: the person writes `cat`, `dog` or `neither`.
    pub species: String,
    /// Optional: the breed, if the person knows it.
    pub breed: String,
    /// What the labelling proposes now.
    pub proposed: Species,
    /// The proposal's probability.
    #[serde(serialize_with = "csv_io::fixed::<3, _>")]
    pub p: f64,
    /// The photo file.
    pub path: String,
}

/// Writes a round file (atomically).
pub(crate) fn write_round(path: &Path, lines: &[RoundLine]) -> Result<()> {
    csv_io::write_rows(path, lines)
}

/// The ids of a round file, in file order.
///
/// # Errors
/// The file cannot be read or is not a round file.
pub fn round_ids(path: &Path) -> Result<Vec<String>> {
    let lines: Vec<RoundLine> = csv_io::read_rows(path)?;
    Ok(lines.into_iter().map(|l| l.id).collect())
}

/// A person's answer for one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The photo's id.
    pub id: String,
    /// What it shows.
    pub species: Species,
    /// Its breed, when given.
    pub breed: Option<String>,
}

/// What an answer file holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Answers {
    /// Every species is still empty: nobody has answered yet.
    Waiting,
    /// The answers, in file order.
    Given(Vec<Answer>),
}

/// Reads and checks the answers in `path` for a round asking about `asked`; `known` holds
/// every id of the folder (answers about photos outside the round are taken too).
///
/// # Errors
/// The file cannot be read, lacks the `id` or `species` column, or has any problem listed
/// in the module doc; the message names the file and every bad line.
pub fn read_answers(path: &Path, asked: &[String], known: &HashSet<&str>) -> Result<Answers> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read the answer file {}", path.display()))?;
    let headers = r
        .headers()
        .with_context(|| format!("{}: no header line", path.display()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(id_col), Some(species_col)) = (column("id"), column("species")) else {
        bail!(
            "{}: the header must name the columns id and species (it is {:?})",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        );
    };
    let cols = Columns {
        id: id_col,
        species: species_col,
        breed: column("breed"),
    };
    let mut check = Check::new(known);
    for rec in r.records() {
        let rec = rec.with_context(|| format!("{}: not CSV", path.display()))?;
        let line = rec.position().map_or(0, |p| p.line());
        check.line(line, &rec, &cols);
    }
    check.finish(path, asked)
}

/// Where the columns are.
struct Columns {
    id: usize,
    species: usize,
    breed: Option<usize>,
}

/// The checks of an answer file, line by line.
struct Check<'a> {
    known: &'a HashSet<&'a str>,
    answers: Vec<Answer>,
    first_line: HashMap<String, u64>,
    problems: Vec<String>,
    blank_species: usize,
}

impl<'a> Check<'a> {
    fn new(known: &'a HashSet<&'a str>) -> Self {
        Check {
            known,
            answers: Vec::new(),
            first_line: HashMap::new(),
            problems: Vec::new(),
            blank_species: 0,
        }
    }

    fn line(&mut self, n: u64, rec: &csv::StringRecord, cols: &Columns) {
        let field = |i: usize| rec.get(i).unwrap_or("").to_string();
        let (id, written) = (field(cols.id), field(cols.species));
        if id.is_empty() && rec.iter().all(str::is_empty) {
            return; // a blank line
        }
        let mut bad = |what: String| self.problems.push(format!("line {n}: {what}"));
        if id.is_empty() {
            return bad("no id".into());
        }
        if !self.known.contains(id.as_str()) {
            return bad(format!("id {id:?} is no photo of the folder"));
        }
        if let Some(m) = self.first_line.insert(id.clone(), n) {
            return bad(format!("id {id:?} again (first on line {m})"));
        }
        if written.is_empty() {
            self.blank_species += 1;
            return bad(format!("no species for {id:?} (write cat, dog or neither)"));
        }
        let Some(species) = Species::parse(&written) else {
            return bad(format!(
                "species {written:?} for {id:?} is not cat, dog or neither"
            ));
        };
        let breed = cols.breed.map(field).filter(|b| !b.is_empty());
        self.answers.push(Answer { id, species, breed });
    }

    fn finish(mut self, path: &Path, asked: &[String]) -> Result<Answers> {
        let lines = self.first_line.len();
        if lines > 0 && self.blank_species == lines && self.problems.len() == lines {
            return Ok(Answers::Waiting);
        }
        let missing: Vec<&str> = asked
            .iter()
            .filter(|id| !self.first_line.contains_key(id.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            self.problems.push(format!(
                "no line for {} photo(s) of the round: {} (answer every photo of the round)",
                missing.len(),
                missing.join(", ")
            ));
        }
        if self.problems.is_empty() {
            return Ok(Answers::Given(self.answers));
        }
        bail!(
            "{}: {} problem(s), nothing was taken from this file:\n  {}",
            path.display(),
            self.problems.len(),
            self.problems.join("\n  ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn read(text: &str, asked: &[&str]) -> Result<Answers> {
        let dir = std::env::temp_dir().join(format!("lab5-answers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("a{}.csv", text.len()));
        std::fs::write(&path, text).unwrap();
        let known: HashSet<&str> = ["a", "b", "c", "d"].into();
        let out = read_answers(&path, &ids(asked), &known);
        std::fs::remove_file(&path).unwrap();
        out
    }

    #[test]
    fn good_answers_are_read_with_breeds_in_any_case() {
        let got = read(
            "ID,Species,breed,p\na, Cat ,Siamese,0.4\nb,DOGS,,0.6\n",
            &["a", "b"],
        );
        let want = vec![
            Answer {
                id: "a".into(),
                species: Species::Cat,
                breed: Some("Siamese".into()),
            },
            Answer {
                id: "b".into(),
                species: Species::Dog,
                breed: None,
            },
        ];
        assert_eq!(got.unwrap(), Answers::Given(want));
        let extra = read("id,species\na,neither\nb,cat\nc,dog\n", &["a", "b"]).unwrap();
        assert!(matches!(extra, Answers::Given(v) if v.len() == 3));
    }

    #[test]
    fn an_untouched_round_file_is_waiting() {
        let got = read("id,species,breed\na,,\nb,,\n", &["a", "b"]).unwrap();
        assert_eq!(got, Answers::Waiting);
    }

    #[test]
    fn every_bad_line_is_named() {
        let text = "id,species\na,cta\n,dog\nz,cat\nb,dog\nb,cat\nc,\n";
        let err = read(text, &["a", "b", "c", "d"]).unwrap_err().to_string();
        for want in [
            "6 problem(s)",
            "line 2: species \"cta\" for \"a\" is not cat, dog or neither",
            "line 3: no id",
            "line 4: id \"z\" is no photo of the folder",
            "line 6: id \"b\" again (first on line 5)",
            "line 7: no species for \"c\"",
            "no line for 1 photo(s) of the round: d",
        ] {
            assert!(err.contains(want), "{want:?} missing in {err}");
        }
        let err = read("name,label\na,cat\n", &["a"]).unwrap_err().to_string();
        assert!(
            err.contains("must name the columns id and species"),
            "{err}"
        );
    }
}
