//! Reading what goes on a CRL: the listed certificates of one issuer and
//! partition in serial order, a page at a time (keyset pagination on the
//! partial index `certificates_crl_entries`, constant cost per page whatever
//! the population), and the change feed (the audit log) that says which
//! scopes changed.
//!
//! A certificate is listed when its status is `revoked`, `suspended`
//! (reason certificateHold) or `hold` (on hold pending activation: reason
//! certificateHold, revocation date = issuance), and it has not expired
//! before the previous complete CRL of its scope (an expired certificate
//! stays for exactly one more publication).

use crate::encode::EntryData;
use crate::error::{CrlError, Result};
use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use pki_store::domain::{CertStatus, Reason};
use pki_store::published::{published_status, PublishedStatus, StatusFacts};
use pki_store::storage::schema::certificates;
use pki_store::storage::Db;
use pki_store::with_conn;

/// The statuses that put a certificate on its CRL (those the core's
/// published-status rule lists; a unit test checks they agree). Written
/// literally, the same as in the partial index, so that both planners can
/// use the index.
pub const LISTED_SQL: &str = "status IN ('hold', 'suspended', 'revoked')";

/// The columns of a certificate that make its CRL entry.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ListedRow {
    pub serial: String,
    pub status: CertStatus,
    pub not_after: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revocation_reason: Option<Reason>,
    pub invalidity_date: Option<NaiveDateTime>,
    pub issued_at: NaiveDateTime,
}

/// The same with where the certificate belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedRow {
    pub issuer: String,
    pub partition: u32,
    pub kind: String,
    pub row: ListedRow,
}

type ListedColumns = (
    certificates::serial,
    certificates::status,
    certificates::not_after,
    certificates::revoked_at,
    certificates::revocation_reason,
    certificates::invalidity_date,
    certificates::issued_at,
);

const LISTED_COLUMNS: ListedColumns = (
    certificates::serial,
    certificates::status,
    certificates::not_after,
    certificates::revoked_at,
    certificates::revocation_reason,
    certificates::invalidity_date,
    certificates::issued_at,
);

/// The fields of a certificate that make its CRL entry, borrowed from
/// whatever row they were read into.
#[derive(Debug, Clone, Copy)]
pub struct EntryView<'a> {
    pub serial: &'a str,
    pub status: CertStatus,
    pub revoked_at: Option<NaiveDateTime>,
    pub revocation_reason: Option<Reason>,
    pub invalidity_date: Option<NaiveDateTime>,
    pub issued_at: NaiveDateTime,
}

impl EntryView<'_> {
    /// What the core's published-status rule says of it.
    pub fn published(&self) -> PublishedStatus {
        published_status(StatusFacts {
            status: self.status,
            issued_at: self.issued_at,
            revoked_at: self.revoked_at,
            reason: self.revocation_reason,
            invalidity_date: self.invalidity_date,
        })
    }

    /// Revocation date, reason code and invalidity date of its entry.
    pub fn entry_facts(&self) -> Result<(NaiveDateTime, Option<u8>, Option<NaiveDateTime>)> {
        match self.published() {
            PublishedStatus::Revoked {
                at,
                reason,
                invalidity_date,
            } => Ok((at, reason.map(Reason::code), invalidity_date)),
            PublishedStatus::Good => Err(CrlError::BadRow {
                serial: self.serial.to_string(),
                message: format!("status {} is not listed on a CRL", self.status),
            }),
        }
    }

    /// Appends its CRL entry (DER) to `out`.
    pub fn push_entry(&self, out: &mut Vec<u8>) -> Result<()> {
        let mut serial = [0u8; 22];
        let serial = crate::encode::serial_from_hex(self.serial, &mut serial)?;
        let (revocation_date, reason, invalidity_date) = self.entry_facts()?;
        crate::encode::push_entry(
            out,
            &EntryData {
                serial,
                revocation_date,
                reason,
                invalidity_date,
            },
        )
    }
}

impl ListedRow {
    /// Is it on a complete CRL whose expiry cutoff is `cutoff`?
    pub fn is_listed(&self, cutoff: Option<NaiveDateTime>) -> bool {
        self.view().published().is_listed() && cutoff.is_none_or(|c| self.not_after > c)
    }

    pub fn view(&self) -> EntryView<'_> {
        EntryView {
            serial: &self.serial,
            status: self.status,
            revoked_at: self.revoked_at,
            revocation_reason: self.revocation_reason,
            invalidity_date: self.invalidity_date,
            issued_at: self.issued_at,
        }
    }

    /// Appends its CRL entry (DER) to `out`.
    pub fn push_entry(&self, out: &mut Vec<u8>) -> Result<()> {
        self.view().push_entry(out)
    }
}

/// Which certificates one complete CRL lists.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    pub issuer: &'a str,
    pub partition: u32,
    /// The ARL: issuing CA certificates only.
    pub ca_certificates_only: bool,
    /// Leave out certificates whose notAfter is at or before this instant.
    pub expiry_cutoff: Option<NaiveDateTime>,
    /// Only serials `>= lower` (as text) ...
    pub lower: Option<String>,
    /// ... and `< upper`: a range of the serials, for parallel readers.
    pub upper: Option<String>,
}

/// Parses a timestamp as diesel stores it in SQLite (`YYYY-MM-DD HH:MM:SS`
/// with an optional fraction, which is dropped) without chrono's format
/// machinery, which dominated the reading of a large CRL; anything else
/// goes through chrono.
pub fn parse_db_time(s: &str) -> Result<NaiveDateTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let fast = (b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
        && b[16] == b':'
        && (b.len() == 19 || b[19] == b'.'))
        .then(|| {
            let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
            date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)
        })
        .flatten();
    match fast {
        Some(t) => Ok(t),
        None => NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
            .map_err(|e| CrlError::BadRow {
                serial: String::new(),
                message: format!("timestamp {s:?}: {e}"),
            }),
    }
}

/// Splits one row of the SQLite fast path (fields joined by `|`).
fn view_of_line(line: &str) -> Result<EntryView<'_>> {
    let mut f = line.split('|');
    let mut next = || {
        f.next().ok_or_else(|| CrlError::BadRow {
            serial: line.to_string(),
            message: "short row".into(),
        })
    };
    let serial = next()?;
    let status = next()?;
    let revoked_at = next()?;
    let reason = next()?;
    let invalidity = next()?;
    let issued_at = next()?;
    let time = |t: &str| (!t.is_empty()).then(|| parse_db_time(t)).transpose();
    let bad = |message: String| CrlError::BadRow {
        serial: serial.to_string(),
        message,
    };
    Ok(EntryView {
        serial,
        status: status.parse().map_err(bad)?,
        revoked_at: time(revoked_at)?,
        revocation_reason: (!reason.is_empty())
            .then(|| reason.parse::<Reason>())
            .transpose()
            .map_err(bad)?,
        invalidity_date: time(invalidity)?,
        issued_at: parse_db_time(issued_at)?,
    })
}

/// One row per listed certificate, its entry's fields joined by `|` (SQLite:
/// one text value per row instead of seven).
const SQLITE_ROW: &str = "serial || '|' || status || '|' || COALESCE(revoked_at, '') || '|' || \
     COALESCE(revocation_reason, '') || '|' || COALESCE(invalidity_date, '') || '|' || issued_at";

/// Reads one page of listed certificates with serials after `after`, in
/// serial order, handing each to `f`; returns how many there were and the
/// last serial.
pub fn page(
    db: &mut Db,
    sel: &Selection<'_>,
    after: &str,
    limit: i64,
    f: &mut dyn FnMut(&EntryView<'_>) -> Result<()>,
) -> Result<(usize, Option<String>)> {
    let partition = i32::try_from(sel.partition)
        .map_err(|_| CrlError::Settings(format!("partition {} out of range", sel.partition)))?;
    macro_rules! query {
        ($c:ident) => {{
            let mut q = certificates::table
                .filter(certificates::issuer.eq(sel.issuer))
                .filter(certificates::crl_partition.eq(partition))
                .filter(sql::<Bool>(LISTED_SQL))
                .filter(certificates::serial.gt(after))
                .into_boxed();
            if let Some(cutoff) = sel.expiry_cutoff {
                q = q.filter(certificates::not_after.gt(cutoff));
            }
            if sel.ca_certificates_only {
                q = q.filter(certificates::kind.eq(pki_store::domain::CertKind::IssuingCa));
            }
            if let Some(lower) = &sel.lower {
                q = q.filter(certificates::serial.ge(lower));
            }
            if let Some(upper) = &sel.upper {
                q = q.filter(certificates::serial.lt(upper));
            }
            q.order(certificates::serial).limit(limit)
        }};
    }
    match db {
        Db::Pg(c) => {
            let rows: Vec<ListedRow> = query!(c).select(LISTED_COLUMNS).load(c)?;
            for r in &rows {
                f(&r.view())?;
            }
            Ok((rows.len(), rows.last().map(|r| r.serial.clone())))
        }
        // SQLite keeps timestamps as text and pays per column: read one text
        // value per row and parse it here.
        Db::Sqlite(c) => {
            let lines: Vec<String> = query!(c).select(sql::<Text>(SQLITE_ROW)).load(c)?;
            for l in &lines {
                f(&view_of_line(l)?)?;
            }
            let last = match lines.last() {
                Some(l) => Some(view_of_line(l)?.serial.to_string()),
                None => None,
            };
            Ok((lines.len(), last))
        }
    }
}

/// Streams every listed certificate of a selection, in serial order, to `f`
/// a page at a time; returns how many there were.
pub fn stream(
    db: &mut Db,
    sel: &Selection<'_>,
    page_size: i64,
    mut f: impl FnMut(&EntryView<'_>) -> Result<()>,
) -> Result<u64> {
    let mut after = String::new();
    let mut count = 0u64;
    loop {
        let (n, last) = page(db, sel, &after, page_size, &mut f)?;
        count += n as u64;
        match last {
            Some(last) if n as i64 == page_size => after = last,
            _ => return Ok(count),
        }
    }
}

/// The lowest and highest listed serial of a selection (None if it is empty).
pub fn serial_range(db: &mut Db, sel: &Selection<'_>) -> Result<Option<(String, String)>> {
    let partition = sel.partition as i32;
    let mut ends = Vec::with_capacity(2);
    for descending in [false, true] {
        let serial: Option<String> = with_conn!(db, c => {
            let q = certificates::table
                .filter(certificates::issuer.eq(sel.issuer))
                .filter(certificates::crl_partition.eq(partition))
                .filter(sql::<Bool>(LISTED_SQL))
                .select(certificates::serial)
                .into_boxed();
            let q = if descending {
                q.order(certificates::serial.desc())
            } else {
                q.order(certificates::serial.asc())
            };
            q.first(c).optional()
        })?;
        match serial {
            Some(s) => ends.push(s),
            None => return Ok(None),
        }
    }
    let hi = ends.pop().unwrap_or_default();
    let lo = ends.pop().unwrap_or_default();
    Ok(Some((lo, hi)))
}

/// `k - 1` boundaries splitting the serials between `lo` and `hi` (hex
/// text) into `k` ranges of about the same size, for random serials:
/// interpolated on their first 8 hex digits.
pub fn split_serials(lo: &str, hi: &str, k: usize) -> Vec<String> {
    let head = |s: &str| -> u64 {
        let mut v = 0u64;
        for i in 0..8 {
            let d = s.as_bytes().get(i).and_then(|c| (*c as char).to_digit(16));
            v = v * 16 + u64::from(d.unwrap_or(0));
        }
        v
    };
    let (a, b) = (head(lo), head(hi));
    if k < 2 || b <= a + k as u64 {
        return Vec::new();
    }
    (1..k as u64)
        .map(|i| format!("{:08x}", a + (b - a) * i / k as u64))
        .collect()
}

/// Listed certificates of a partition whose notAfter lies in `(after, upto]`
/// (entries a delta CRL removes because they expired).
pub fn expiring(
    db: &mut Db,
    issuer: &str,
    partition: u32,
    after: Option<NaiveDateTime>,
    upto: NaiveDateTime,
) -> Result<Vec<ListedRow>> {
    let partition = partition as i32;
    let rows = with_conn!(db, c => {
        let mut q = certificates::table
            .filter(certificates::issuer.eq(issuer))
            .filter(certificates::crl_partition.eq(partition))
            .filter(sql::<Bool>(LISTED_SQL))
            .filter(certificates::not_after.le(upto))
            .into_boxed();
        if let Some(after) = after {
            q = q.filter(certificates::not_after.gt(after));
        }
        q.order(certificates::serial).select(LISTED_COLUMNS).load::<ListedRow>(c)
    })?;
    Ok(rows)
}

/// The current state of some certificates, by serial (any status).
pub fn by_serial(db: &mut Db, serials: &[String]) -> Result<Vec<ScopedRow>> {
    let mut out = Vec::with_capacity(serials.len());
    for chunk in serials.chunks(500) {
        let rows: Vec<(String, i32, String, ListedRow)> = with_conn!(db, c => certificates::table
            .filter(certificates::serial.eq_any(chunk))
            .select((certificates::issuer, certificates::crl_partition, certificates::kind, LISTED_COLUMNS))
            .load(c))?;
        out.extend(
            rows.into_iter()
                .map(|(issuer, partition, kind, row)| ScopedRow {
                    issuer,
                    partition: partition.max(0) as u32,
                    kind,
                    row,
                }),
        );
    }
    Ok(out)
}

/// Distinct partitions that list at least one certificate of an issuer.
pub fn listed_partitions(db: &mut Db, issuer: &str) -> Result<Vec<u32>> {
    let parts: Vec<i32> = with_conn!(db, c => certificates::table
        .filter(certificates::issuer.eq(issuer))
        .filter(sql::<Bool>(LISTED_SQL))
        .select(certificates::crl_partition)
        .distinct()
        .load(c))?;
    Ok(parts.into_iter().map(|p| p.max(0) as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_statuses_are_the_published_rule_s() {
        let t: NaiveDateTime = "2026-01-01T00:00:00".parse().unwrap();
        for status in CertStatus::ALL {
            let view = EntryView {
                serial: "01",
                status: *status,
                revoked_at: Some(t),
                revocation_reason: None,
                invalidity_date: None,
                issued_at: t,
            };
            let in_sql = LISTED_SQL.contains(&format!("'{status}'"));
            assert_eq!(view.published().is_listed(), in_sql, "{status}");
        }
    }

    #[test]
    fn serial_ranges_split_evenly() {
        assert_eq!(
            split_serials("40000000aa", "7fffffffbb", 2),
            vec!["5fffffff".to_string()]
        );
        assert_eq!(
            split_serials("40000000", "40000002", 4),
            Vec::<String>::new()
        );
        assert_eq!(split_serials("4000", "4001", 4).len(), 3);
        assert_eq!(split_serials("40", "80", 1), Vec::<String>::new());
        assert_eq!(split_serials("40", "80", 4).len(), 3);
    }

    #[test]
    fn database_times_parse_fast_and_slow() {
        let t = |s: &str| parse_db_time(s).unwrap().to_string();
        assert_eq!(t("2026-11-22 15:30:23"), "2026-11-22 15:30:23");
        assert_eq!(t("2026-11-22 15:30:23.792461"), "2026-11-22 15:30:23");
        assert_eq!(t("2026-11-22T15:30:23.792461187"), "2026-11-22 15:30:23");
        assert!(parse_db_time("2026-13-22 15:30:23").is_err());
        assert!(parse_db_time("yesterday").is_err());
    }
}
