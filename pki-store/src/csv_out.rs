//! CSV written by the project (the reminders' postal list, exports): every
//! cell is neutralised against formula injection ([`neutralise`]) and
//! quoted by the `csv` crate, so a name from the registry such as
//! `=HYPERLINK(...)` reaches a spreadsheet as text, never as a formula.

use std::io::Write;

/// The first characters a spreadsheet reads as the start of a formula (or
/// that hide one after a line break): `=`, `+`, `-`, `@`, TAB, CR and LF.
const FORMULA_STARTS: &[char] = &['=', '+', '-', '@', '\t', '\r', '\n'];

/// A cell as it is written: prefixed with `'` when it starts like a formula
/// (the OWASP "CSV injection" advice), else unchanged.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// A CSV document being written: the header, then rows, every cell
/// neutralised and quoted as RFC 4180 wants. Errors are the writer's
/// `io::Error` (a closed pipe stays recognisable).
pub struct CsvOut<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> CsvOut<W> {
    /// Starts a document with its header line.
    pub fn new(out: W, header: &[&str]) -> std::io::Result<CsvOut<W>> {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(out);
        writer.write_record(header.iter().map(|h| neutralise(h).into_owned()))?;
        Ok(CsvOut { writer })
    }

    /// Writes one row.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) -> std::io::Result<()> {
        self.writer
            .write_record(cells.iter().map(|c| neutralise(c.as_ref()).into_owned()))
            .map_err(std::io::Error::from)
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text() {
        for cell in [
            "=1+1",
            "+33612345678",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "\nx",
        ] {
            assert_eq!(neutralise(cell), format!("'{cell}"));
        }
        for cell in ["Dupont", "2027-01-01", "", "a=b", "'quoted"] {
            assert_eq!(neutralise(cell), cell);
        }
    }

    #[test]
    fn documents_are_quoted_and_neutralised() {
        let mut buf = Vec::new();
        let mut out = CsvOut::new(&mut buf, &["name", "note"]).unwrap();
        out.row(&["=HYPERLINK(\"http://x\",\"y\")", "a,b"]).unwrap();
        out.row(&["Dupont", "say \"hi\"\nbye"]).unwrap();
        out.finish().unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            "name,note\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",\"a,b\"\nDupont,\"say \"\"hi\"\"\nbye\"\n"
        );
        // Read back by the csv crate: the cells are as neutralised.
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(&rows[0][0], "'=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(&rows[1][1], "say \"hi\"\nbye");
    }
}
