//! Reading the flat files operators bring (registry extracts, card lists):
//! CSV with a header line, or JSON Lines, into records of named text
//! fields, each tagged with its line number so errors can name it; and
//! [`Problems`], the collector that reports every error of a file at once
//! (up to [`MAX_REPORTED`]) while the import stays all-or-nothing.
//!
//! A CSV header naming a column twice and a JSON object naming a key twice
//! are refused (serde_json would silently keep the last value). Every value
//! read through [`FieldReader`] passes the field rules of
//! [`crate::fields`] first. Only spaces around a value are trimmed: a CR, LF
//! or TAB at either end is refused like one in the middle.

use crate::error::{CaError, InputProblem, Result};
use crate::fields;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The problems listed by one error; the others are counted ("and N more").
pub const MAX_REPORTED: usize = 100;

/// A record: its line number in the file and its fields.
pub struct Record {
    pub line: usize,
    pub fields: BTreeMap<String, String>,
}

/// File formats for bulk input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// From an explicit name or the file's extension.
    pub fn detect(path: &Path, explicit: Option<&str>) -> Result<Self> {
        let name = explicit
            .map(str::to_string)
            .or_else(|| path.extension().map(|e| e.to_string_lossy().to_lowercase()))
            .unwrap_or_default();
        match name.as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json" => Ok(Format::JsonLines),
            other => Err(CaError::Field {
                field: "format".into(),
                message: format!("{other:?} is not csv or jsonl (name the file .csv or .jsonl, or pass --format)"),
            }),
        }
    }
}

/// Every problem found in one file, in line order: the first
/// [`MAX_REPORTED`] kept, the rest counted.
pub struct Problems {
    file: String,
    list: Vec<InputProblem>,
    total: usize,
}

impl Problems {
    pub fn new(file: impl Into<String>) -> Problems {
        Problems {
            file: file.into(),
            list: Vec::new(),
            total: 0,
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn push(&mut self, line: usize, field: &str, message: impl Into<String>) {
        self.total += 1;
        if self.list.len() < MAX_REPORTED {
            self.list.push(InputProblem {
                line,
                field: field.to_string(),
                message: message.into(),
            });
        }
    }

    /// Adds an error: an input error with its line and field, or any other
    /// error against the whole file (line 0).
    pub fn add(&mut self, error: CaError) {
        match error {
            CaError::Input {
                line,
                field,
                message,
                ..
            } => self.push(line, &field, message),
            CaError::InputErrors {
                problems, total, ..
            } => {
                let hidden = total - problems.len();
                for p in problems {
                    self.push(p.line, &p.field, p.message);
                }
                self.total += hidden;
            }
            other => self.push(0, "(file)", other.to_string()),
        }
    }

    /// The value of `result`, or `None` with its error kept.
    pub fn take<T>(&mut self, result: Result<T>) -> Option<T> {
        result.map_err(|e| self.add(e)).ok()
    }

    /// Ok when there was no problem; else one error naming them all (a
    /// single problem is a plain [`CaError::Input`]).
    pub fn finish(mut self) -> Result<()> {
        self.list.sort_by_key(|p| p.line);
        match (self.total, self.list.pop()) {
            (0, _) => Ok(()),
            (1, Some(p)) => Err(CaError::Input {
                file: self.file,
                line: p.line,
                field: p.field,
                message: p.message,
            }),
            (total, last) => {
                self.list.extend(last);
                Err(CaError::InputErrors {
                    file: self.file,
                    problems: self.list,
                    total,
                })
            }
        }
    }
}

/// A field name from a file as it may be shown in a message: as written
/// when it passes the field rules, else escaped and cut.
fn shown_name(name: &str) -> String {
    if fields::check_text("(name)", name).is_ok() && name.chars().count() <= 64 {
        name.to_string()
    } else {
        let escaped = format!("{name:?}");
        escaped.chars().take(64).collect()
    }
}

/// Reads every record of a file. A file that cannot be read at all (not
/// UTF-8, a bad or repeated header) is an error; a bad line is a problem
/// kept in `problems`, and the other lines are still read.
pub fn read_records(path: &Path, format: Format, problems: &mut Problems) -> Result<Vec<Record>> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| CaError::ReadFile {
        path: file.clone(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| CaError::Input {
        file: file.clone(),
        line: 0,
        field: "(file)".into(),
        message: format!("not UTF-8 text: {e}"),
    })?;
    match format {
        Format::Csv => read_csv(&file, &text, problems),
        Format::JsonLines => Ok(read_jsonl(&text, problems)),
    }
}

fn read_csv(file: &str, text: &str, problems: &mut Problems) -> Result<Vec<Record>> {
    let header_error = |field: &str, message: String| CaError::Input {
        file: file.to_string(),
        line: 1,
        field: field.to_string(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::None)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| header_error("(header)", e.to_string()))?
        .iter()
        .map(|h| h.trim_matches(' ').to_string())
        .collect();
    let mut seen = BTreeSet::new();
    for (column, h) in headers.iter().enumerate() {
        if !seen.insert(h) {
            return Err(header_error(
                &shown_name(h),
                format!("column {} repeats a column name of the header", column + 1),
            ));
        }
    }
    let mut out = Vec::new();
    for row in reader.records() {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                problems.push(line, "(row)", e.to_string());
                continue;
            }
        };
        let line = row.position().map(|p| p.line() as usize).unwrap_or(0);
        let fields = headers
            .iter()
            .zip(row.iter())
            .map(|(h, v)| (h.clone(), v.trim_matches(' ').to_string()))
            .collect();
        out.push(Record { line, fields });
    }
    Ok(out)
}

/// One JSON object's members in order, with the keys given more than once
/// (serde_json's own map keeps the last value silently). Hand-written: a
/// serde visitor of a dozen lines, where a crate for it (serde_with) would
/// be a new dependency for one use.
struct JsonObject {
    members: Vec<(String, serde_json::Value)>,
    repeated: Vec<String>,
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = JsonObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<JsonObject, A::Error> {
                let mut seen = BTreeSet::new();
                let mut object = JsonObject {
                    members: Vec::new(),
                    repeated: Vec::new(),
                };
                while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                    if !seen.insert(key.clone()) {
                        object.repeated.push(key);
                    } else {
                        object.members.push((key, value));
                    }
                }
                Ok(object)
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

/// One line of JSON that must be an object naming each key once (registry
/// events): the object, or why not.
pub fn json_object(line: &str) -> std::result::Result<serde_json::Value, String> {
    let object: JsonObject =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    if let Some(key) = object.repeated.first() {
        return Err(format!(
            "key {} appears more than once in the object",
            shown_name(key)
        ));
    }
    Ok(serde_json::Value::Object(
        object.members.into_iter().collect(),
    ))
}

fn read_jsonl(text: &str, problems: &mut Problems) -> Vec<Record> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() {
            continue;
        }
        let object: JsonObject = match serde_json::from_str(raw) {
            Ok(o) => o,
            Err(e) => {
                problems.push(line, "(line)", format!("not a JSON object: {e}"));
                continue;
            }
        };
        let mut ok = true;
        for key in &object.repeated {
            problems.push(
                line,
                &shown_name(key),
                "appears more than once in the object",
            );
            ok = false;
        }
        let mut fields = BTreeMap::new();
        for (k, v) in object.members {
            let text = match v {
                serde_json::Value::String(s) => s.trim_matches(' ').to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Null => String::new(),
                _ => {
                    problems.push(
                        line,
                        &shown_name(&k),
                        "must be a string, number, boolean or null",
                    );
                    ok = false;
                    continue;
                }
            };
            fields.insert(k, text);
        }
        if ok {
            out.push(Record { line, fields });
        }
    }
    out
}

/// Reads fields out of one record, producing errors that name the line and
/// field. Every value read passes [`fields::check_text`] first.
pub struct FieldReader<'a> {
    pub file: &'a str,
    pub record: &'a Record,
}

impl FieldReader<'_> {
    pub fn error(&self, field: &str, message: impl Into<String>) -> CaError {
        CaError::Input {
            file: self.file.to_string(),
            line: self.record.line,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The fields outside `known`, one error each.
    pub fn unknown(&self, known: &[&str]) -> Vec<CaError> {
        self.record
            .fields
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| {
                self.error(
                    &shown_name(k),
                    format!("unknown field (expected: {})", known.join(", ")),
                )
            })
            .collect()
    }

    /// The field's value (empty when absent), checked by the field rules.
    fn checked(&self, field: &str) -> Result<&str> {
        let v = self.record.fields.get(field).map_or("", String::as_str);
        fields::check_text(field, v).map_err(|m| self.error(field, m))?;
        Ok(v)
    }

    pub fn required(&self, field: &str) -> Result<String> {
        match self.checked(field)? {
            "" => Err(self.error(field, "is required")),
            v => Ok(v.to_string()),
        }
    }

    pub fn optional(&self, field: &str) -> Result<Option<String>> {
        Ok(Some(self.checked(field)?.to_string()).filter(|v| !v.is_empty()))
    }

    pub fn parsed<T: std::str::FromStr<Err = String>>(&self, field: &str) -> Result<T> {
        self.required(field)?
            .parse()
            .map_err(|e: String| self.error(field, e))
    }

    pub fn date(&self, field: &str) -> Result<chrono::NaiveDate> {
        let v = self.required(field)?;
        parse_date(&v).map_err(|m| self.error(field, m))
    }
}

/// `YYYY-MM-DD`, nothing else.
pub fn parse_date(v: &str) -> std::result::Result<chrono::NaiveDate, String> {
    if v.len() != 10 {
        return Err(format!("{v:?} is not a date in the form YYYY-MM-DD"));
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| format!("{v:?} is not a date in the form YYYY-MM-DD"))
}

/// `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS`.
pub fn parse_birth_datetime(v: &str) -> std::result::Result<chrono::NaiveDateTime, String> {
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M"))
        .map_err(|_| format!("{v:?} is not a date and time in the form YYYY-MM-DDTHH:MM"))
}

/// Parses an invalidity or effective date: `YYYY-MM-DD` (00:00 UTC) or
/// `YYYY-MM-DDTHH:MM[:SS]` (UTC).
pub fn parse_invalidity(s: &str) -> std::result::Result<chrono::NaiveDateTime, String> {
    parse_birth_datetime(s)
        .or_else(|_| parse_date(s).map(|d| d.and_time(chrono::NaiveTime::MIN)))
        .map_err(|_| {
            format!("{s:?} is not a date (YYYY-MM-DD) or date and time (YYYY-MM-DDTHH:MM) in UTC")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict() {
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("26-02-01").is_err());
        assert!(parse_date("01/02/2026").is_err());
        assert!(parse_date("2026-02-01").is_ok());
        assert!(parse_birth_datetime("1990-05-01T14:30").is_ok());
        assert!(parse_birth_datetime("1990-05-01").is_err());
    }

    #[test]
    fn csv_and_jsonl_give_the_same_records_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let csv_path = dir.path().join("a.csv");
        std::fs::write(&csv_path, "a,b\n1,x\n2,y\n").unwrap();
        let jsonl_path = dir.path().join("a.jsonl");
        std::fs::write(
            &jsonl_path,
            "{\"a\":1,\"b\":\"x\"}\n\n{\"a\":2,\"b\":\"y\"}\n",
        )
        .unwrap();
        let mut p = Problems::new("a");
        let c = read_records(&csv_path, Format::Csv, &mut p).unwrap();
        let j = read_records(&jsonl_path, Format::JsonLines, &mut p).unwrap();
        assert!(p.is_empty());
        assert_eq!(c[1].fields, j[1].fields);
        assert_eq!((c[0].line, c[1].line), (2, 3));
        assert_eq!((j[0].line, j[1].line), (1, 3));
    }

    fn read(name: &str, text: &str) -> (Result<Vec<Record>>, Problems) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let format = Format::detect(&path, None).unwrap();
        let mut p = Problems::new(name);
        (read_records(&path, format, &mut p), p)
    }

    #[test]
    fn repeated_csv_columns_are_refused() {
        let (r, _) = read("a.csv", "a,b,a\n1,2,3\n");
        let e = r.err().unwrap().to_string();
        assert!(e.contains("line 1, field a: column 3 repeats"), "{e}");
    }

    #[test]
    fn json_objects_name_each_key_once() {
        assert_eq!(
            json_object(r#"{"a":1,"b":"x"}"#).unwrap(),
            serde_json::json!({"a":1,"b":"x"})
        );
        let e = json_object(r#"{"type":"card-lost","type":"death"}"#).unwrap_err();
        assert!(e.contains("key type appears more than once"), "{e}");
        assert!(json_object("[1]").is_err());
    }

    #[test]
    fn repeated_json_keys_are_refused() {
        let (r, p) = read("a.jsonl", "{\"a\":1,\"b\":2,\"a\":3}\n{\"a\":4}\n");
        let records = r.unwrap();
        assert_eq!(records.len(), 1, "the line with a repeated key is not read");
        let e = p.finish().unwrap_err().to_string();
        assert_eq!(
            e,
            "a.jsonl: line 1, field a: appears more than once in the object"
        );
    }

    #[test]
    fn control_characters_at_the_ends_are_not_trimmed_away() {
        let (r, p) = read("a.csv", "a,b\n\"x\r\", y \n");
        let records = r.unwrap();
        assert!(p.is_empty());
        let reader = FieldReader {
            file: "a.csv",
            record: &records[0],
        };
        assert_eq!(reader.required("b").unwrap(), "y");
        let e = reader.required("a").unwrap_err().to_string();
        assert!(
            e.contains("line 2, field a: contains a control character (CR)"),
            "{e}"
        );
        let (r, _) = read("a.jsonl", "{\"a\":\"x\\u0000\"}\r\n");
        let records = r.unwrap();
        let reader = FieldReader {
            file: "a.jsonl",
            record: &records[0],
        };
        assert!(reader
            .optional("a")
            .unwrap_err()
            .to_string()
            .contains("NUL"));
    }

    #[test]
    fn every_problem_is_reported_up_to_the_limit() {
        let mut text = String::new();
        for _ in 0..(MAX_REPORTED + 5) {
            text.push_str("not json\n");
        }
        let (r, p) = read("a.jsonl", &text);
        assert!(r.unwrap().is_empty());
        let e = p.finish().unwrap_err();
        let CaError::InputErrors {
            problems, total, ..
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!((problems.len(), *total), (MAX_REPORTED, MAX_REPORTED + 5));
        let text = e.to_string();
        assert!(text.starts_with("a.jsonl: 105 errors, nothing was imported:\n  line 1, field (line): not a JSON object"), "{text}");
        assert!(text.ends_with("\n  and 5 more"), "{text}");
    }
}
