//! Reading the flat files operators bring (registry extracts, card lists):
//! CSV with a header line, or JSON Lines, into records of named text
//! fields, each tagged with its line number so errors can name it.

use crate::error::{CaError, Result};
use std::collections::BTreeMap;
use std::path::Path;

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

/// Reads every record of a file; fails on the first unreadable line.
pub fn read_records(path: &Path, format: Format) -> Result<Vec<Record>> {
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
        Format::Csv => read_csv(&file, &text),
        Format::JsonLines => read_jsonl(&file, &text),
    }
}

fn read_csv(file: &str, text: &str) -> Result<Vec<Record>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| CaError::Input {
            file: file.to_string(),
            line: 1,
            field: "(header)".into(),
            message: e.to_string(),
        })?
        .clone();
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| CaError::Input {
            file: file.to_string(),
            line: e.position().map(|p| p.line() as usize).unwrap_or(0),
            field: "(row)".into(),
            message: e.to_string(),
        })?;
        let line = row.position().map(|p| p.line() as usize).unwrap_or(0);
        let fields = headers
            .iter()
            .zip(row.iter())
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect();
        out.push(Record { line, fields });
    }
    Ok(out)
}

fn read_jsonl(file: &str, text: &str) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let err = |field: &str, message: String| CaError::Input {
            file: file.to_string(),
            line,
            field: field.to_string(),
            message,
        };
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| err("(line)", format!("not a JSON object: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| err("(line)", "not a JSON object".into()))?;
        let mut fields = BTreeMap::new();
        for (k, v) in object {
            let text = match v {
                serde_json::Value::String(s) => s.trim().to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Null => String::new(),
                _ => return Err(err(k, "must be a string, number, boolean or null".into())),
            };
            fields.insert(k.clone(), text);
        }
        out.push(Record { line, fields });
    }
    Ok(out)
}

/// Reads fields out of one record, producing errors that name the line and field.
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

    /// Refuses fields outside `known`.
    pub fn only(&self, known: &[&str]) -> Result<()> {
        match self
            .record
            .fields
            .keys()
            .find(|k| !known.contains(&k.as_str()))
        {
            Some(k) => {
                Err(self.error(k, format!("unknown field (expected: {})", known.join(", "))))
            }
            None => Ok(()),
        }
    }

    pub fn required(&self, field: &str) -> Result<String> {
        match self.record.fields.get(field) {
            Some(v) if !v.is_empty() => Ok(v.clone()),
            _ => Err(self.error(field, "is required")),
        }
    }

    pub fn optional(&self, field: &str) -> Option<String> {
        self.record
            .fields
            .get(field)
            .filter(|v| !v.is_empty())
            .cloned()
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
        let c = read_records(&csv_path, Format::Csv).unwrap();
        let j = read_records(&jsonl_path, Format::JsonLines).unwrap();
        assert_eq!(c[1].fields, j[1].fields);
        assert_eq!((c[0].line, c[1].line), (2, 3));
        assert_eq!((j[0].line, j[1].line), (1, 3));
    }
}
