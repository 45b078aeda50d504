//! Registry identities and cards, and the CSV / JSONL files that carry them.

use crate::*;
use chrono::{Datelike, Months};

// ---------------------------------------------------------------------------
// Registry identities and cards
// ---------------------------------------------------------------------------

/// Columns of a registry file, in order.
pub const REGISTRY_COLUMNS: [&str; 12] = [
    "registry_key",
    "family_name",
    "given_names",
    "birth_name",
    "birth_datetime",
    "birth_place",
    "gender",
    "authority",
    "status",
    "protected_adult",
    "email",
    "mobile",
];

/// One identity of the national registry.
#[derive(Clone, Debug)]
pub struct Identity {
    pub registry_key: String,
    pub family_name: String,
    pub given_names: String,
    pub birth_name: String,
    pub birth_datetime: String,
    pub birth_place: String,
    pub gender: String,
    pub authority: String,
    pub status: String,
    pub protected_adult: bool,
    pub email: String,
    pub mobile: String,
}

impl Identity {
    /// An adult national registered by the town hall (identity cards).
    pub fn national(key: &str) -> Identity {
        Identity {
            registry_key: key.to_string(),
            family_name: "Grimaldi".into(),
            given_names: "Léa Marie".into(),
            birth_name: "Rainier".into(),
            birth_datetime: "1984-03-17T08:45".into(),
            birth_place: "Monaco".into(),
            gender: "F".into(),
            authority: "town-hall".into(),
            status: "active".into(),
            protected_adult: false,
            email: format!("{}@example.com", key.to_lowercase()),
            mobile: "+37760000001".into(),
        }
    }

    /// An adult resident registered by the residents section (residence cards).
    pub fn resident(key: &str) -> Identity {
        Identity {
            registry_key: key.to_string(),
            family_name: "Rossi".into(),
            given_names: "Marco Giuseppe".into(),
            birth_name: String::new(),
            birth_datetime: "1979-11-02T23:10".into(),
            birth_place: "Genova".into(),
            gender: "M".into(),
            authority: "residents-section".into(),
            status: "active".into(),
            protected_adult: false,
            email: String::new(),
            mobile: String::new(),
        }
    }

    pub fn with_status(mut self, status: &str) -> Identity {
        self.status = status.into();
        self
    }

    pub fn with_authority(mut self, authority: &str) -> Identity {
        self.authority = authority.into();
        self
    }

    pub fn with_names(mut self, family: &str, given: &str) -> Identity {
        self.family_name = family.into();
        self.given_names = given.into();
        self
    }

    /// The fields as text, in [`REGISTRY_COLUMNS`] order.
    pub fn fields(&self) -> [String; 12] {
        [
            self.registry_key.clone(),
            self.family_name.clone(),
            self.given_names.clone(),
            self.birth_name.clone(),
            self.birth_datetime.clone(),
            self.birth_place.clone(),
            self.gender.clone(),
            self.authority.clone(),
            self.status.clone(),
            self.protected_adult.to_string(),
            self.email.clone(),
            self.mobile.clone(),
        ]
    }

    /// The JSONL object (protected_adult as a boolean).
    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for (col, val) in REGISTRY_COLUMNS.iter().zip(self.fields()) {
            map.insert(col.to_string(), Value::String(val));
        }
        map.insert("protected_adult".into(), Value::Bool(self.protected_adult));
        Value::Object(map)
    }
}

/// One CSV field, quoted when needed.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A CSV document: header then one line per row.
pub fn csv_document(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut out = header.join(",");
    out.push('\n');
    for row in rows {
        let line: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// A registry CSV file's contents.
pub fn registry_csv(ids: &[Identity]) -> String {
    csv_document(&REGISTRY_COLUMNS, ids.iter().map(|i| i.fields().to_vec()))
}

/// A registry JSONL file's contents.
pub fn registry_jsonl(ids: &[Identity]) -> String {
    ids.iter().map(|i| format!("{}\n", i.to_json())).collect()
}

/// Columns of a card file, in order.
pub const CARD_COLUMNS: [&str; 5] = [
    "card_number",
    "kind",
    "holder_key",
    "issue_date",
    "expiry_date",
];

/// A card of the registry.
#[derive(Clone, Debug)]
pub struct Card {
    pub number: String,
    pub kind: String,
    pub holder: String,
    pub issued: NaiveDate,
    pub expires: NaiveDate,
}

/// Today (UTC).
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// `days` ago, moved one more day back if that is a 29 February (so that
/// "+ 3 years" is unambiguous).
pub fn days_ago(days: i64) -> NaiveDate {
    let d = today() - Duration::days(days);
    if d.month() == 2 && d.day() == 29 {
        d - Duration::days(1)
    } else {
        d
    }
}

/// `date` plus whole years (same month and day; never called on 29 February).
pub fn plus_years(date: NaiveDate, years: u32) -> NaiveDate {
    date.checked_add_months(Months::new(12 * years))
        .expect("date in range")
}

impl Card {
    /// An identity card issued 400 days ago, valid 10 years: its certificates
    /// end at issue + 3 years.
    pub fn identity(number: &str, holder: &str) -> Card {
        let issued = days_ago(400);
        Card {
            number: number.into(),
            kind: "identity".into(),
            holder: holder.into(),
            issued,
            expires: plus_years(issued, 10) - Duration::days(1),
        }
    }

    /// A residence card issued two years ago that expires in 200 days: its
    /// certificates end with the card.
    pub fn residence(number: &str, holder: &str) -> Card {
        Card {
            number: number.into(),
            kind: "residence".into(),
            holder: holder.into(),
            issued: days_ago(730),
            expires: today() + Duration::days(200),
        }
    }

    pub fn dates(mut self, issued: NaiveDate, expires: NaiveDate) -> Card {
        self.issued = issued;
        self.expires = expires;
        self
    }

    pub fn fields(&self) -> Vec<String> {
        vec![
            self.number.clone(),
            self.kind.clone(),
            self.holder.clone(),
            self.issued.to_string(),
            self.expires.to_string(),
        ]
    }

    /// `card add --number N --kind K --holder H --issued D --expires D`.
    pub fn add_args(&self) -> Vec<String> {
        let f = self.fields();
        [
            "card",
            "add",
            "--number",
            &f[0],
            "--kind",
            &f[1],
            "--holder",
            &f[2],
            "--issued",
            &f[3],
            "--expires",
            &f[4],
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    pub fn to_json(&self) -> Value {
        let f = self.fields();
        json!({"card_number": f[0], "kind": f[1], "holder_key": f[2], "issue_date": f[3], "expiry_date": f[4]})
    }

    /// The notAfter the CA must give this card's certificates:
    /// min(issue + 3 years at 00:00:00Z, day after expiry at 00:00:00Z) - 1 s.
    pub fn expected_not_after(&self) -> DateTime<Utc> {
        let three_years = plus_years(self.issued, 3);
        let after_expiry = self.expires + Duration::days(1);
        let end = three_years.min(after_expiry);
        end.and_hms_opt(0, 0, 0).expect("midnight").and_utc() - Duration::seconds(1)
    }
}

/// A cards CSV file's contents.
pub fn cards_csv(cards: &[Card]) -> String {
    csv_document(&CARD_COLUMNS, cards.iter().map(Card::fields))
}

/// A cards JSONL file's contents.
pub fn cards_jsonl(cards: &[Card]) -> String {
    cards.iter().map(|c| format!("{}\n", c.to_json())).collect()
}
