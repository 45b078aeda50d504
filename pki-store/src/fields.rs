//! The rules for the text fields operators bring in files and events
//! (registry extracts, card lists, registry events): one table of length
//! limits ([`LIMITS`], also in docs/CLI.md), no control characters in any
//! field, e-mail addresses as the scheduler's mailer (lettre) reads them, and
//! mobile numbers in E.164. Every importer checks its fields here, before
//! anything reaches a database, so SQLite and PostgreSQL give the same
//! answer (a NUL is otherwise truncated by one and refused by the other).

use std::str::FromStr;

/// The longest value of each field, in characters (Unicode scalar values).
/// A field not named here may hold at most [`DEFAULT_LIMIT`] characters.
/// Keep this table and docs/CLI.md ("Field rules") in step.
pub const LIMITS: &[(&str, usize)] = &[
    // Registry extract (`registry import`).
    ("registry_key", 56),
    ("family_name", 128),
    ("given_names", 128),
    ("birth_name", 128),
    ("birth_datetime", 32),
    ("birth_place", 128),
    ("gender", 32),
    ("authority", 32),
    ("status", 32),
    ("protected_adult", 32),
    ("email", 254),
    ("mobile", 16),
    // Card list (`card import`).
    ("card_number", 32),
    ("kind", 32),
    ("holder_key", 56),
    ("issue_date", 32),
    ("expiry_date", 32),
    // Registry events (`registry event`, `registry events`).
    ("id", 200),
    ("card", 32),
    ("holder", 56),
    ("new_card", 32),
    ("note", 1000),
];

/// The limit of a field not in [`LIMITS`].
pub const DEFAULT_LIMIT: usize = 256;

/// The shortest and longest number of digits after the `+` of a mobile
/// number (ITU-T E.164 allows at most 15; 8 is the shortest in use with a
/// country code).
pub const MOBILE_DIGITS: std::ops::RangeInclusive<usize> = 8..=15;

/// The limit of `field`, in characters.
pub fn limit(field: &str) -> usize {
    LIMITS
        .iter()
        .find(|(name, _)| *name == field)
        .map_or(DEFAULT_LIMIT, |(_, max)| *max)
}

/// Characters refused in every field: control characters (C0 with NUL, TAB,
/// CR, LF and ESC; DEL; C1) and the bidirectional overrides and isolates,
/// which make a text read differently from what it holds.
pub fn is_refused_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The common rule of every text field: no refused character, at most the
/// field's limit. The message never repeats the value (it may be huge or
/// hold terminal escapes); it says where the first bad character is.
pub fn check_text(field: &str, value: &str) -> Result<(), String> {
    if let Some((at, c)) = value.chars().enumerate().find(|(_, c)| is_refused_char(*c)) {
        return Err(format!(
            "contains a control character ({}) at position {}",
            char_name(c),
            at + 1
        ));
    }
    let max = limit(field);
    let n = value.chars().count();
    if n > max {
        return Err(format!("is {n} characters long; at most {max} are allowed"));
    }
    Ok(())
}

/// How a refused character is named in a message.
fn char_name(c: char) -> String {
    match c {
        '\0' => "NUL".into(),
        '\t' => "TAB".into(),
        '\n' => "LF".into(),
        '\r' => "CR".into(),
        '\u{1b}' => "ESC".into(),
        '\u{7f}' => "DEL".into(),
        c => format!("U+{:04X}", c as u32),
    }
}

/// An e-mail address as the scheduler's mailer reads a recipient: it must
/// parse as a lettre `Mailbox` (what `scheduler::mail` does) and be a bare
/// address, nothing around it (lettre's mailbox parser accepts a display
/// name and ignores trailing text, the address parser does not).
pub fn check_email(value: &str) -> Result<lettre::Address, String> {
    check_text("email", value)?;
    let refused = || format!("{value:?} is not an e-mail address the mailer accepts");
    let address = lettre::Address::from_str(value).map_err(|e| format!("{}: {e}", refused()))?;
    let mailbox =
        lettre::message::Mailbox::from_str(value).map_err(|e| format!("{}: {e}", refused()))?;
    if mailbox.name.is_some() || mailbox.email != address {
        return Err(refused());
    }
    Ok(address)
}

/// A mobile number in E.164: `+`, then 8 to 15 digits, nothing else.
pub fn check_mobile(value: &str) -> Result<(), String> {
    check_text("mobile", value)?;
    let ok = value.strip_prefix('+').is_some_and(|digits| {
        MOBILE_DIGITS.contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a mobile number in E.164 form (+ then {} to {} digits, no spaces)",
            MOBILE_DIGITS.start(),
            MOBILE_DIGITS.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_in_any_field() {
        for (value, name) in [
            ("Du\0pont", "NUL"),
            ("Du\u{1b}[31mpont", "ESC"),
            ("Du\rpont", "CR"),
            ("Du\npont", "LF"),
            ("Du\tpont", "TAB"),
            ("Du\u{7f}pont", "DEL"),
            ("Du\u{9b}pont", "U+009B"),
            ("Du\u{202E}pont", "U+202E"),
        ] {
            let e = check_text("family_name", value).unwrap_err();
            assert!(e.contains(name) && e.contains("position 3"), "{e}");
            assert!(!e.contains("pont"), "the value is not repeated: {e}");
        }
        assert!(check_text("family_name", "Dupont-Éluard d'Ô").is_ok());
    }

    #[test]
    fn lengths_follow_the_table() {
        assert!(check_text("family_name", &"é".repeat(128)).is_ok());
        let e = check_text("family_name", &"é".repeat(129)).unwrap_err();
        assert!(e.contains("129") && e.contains("128"), "{e}");
        assert!(check_text("unknown", &"a".repeat(DEFAULT_LIMIT)).is_ok());
        assert!(check_text("unknown", &"a".repeat(DEFAULT_LIMIT + 1)).is_err());
        assert!(check_text("registry_key", &"A".repeat(57)).is_err());
        let names: std::collections::HashSet<_> = LIMITS.iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), LIMITS.len(), "one rule per field");
    }

    #[test]
    fn email_is_what_the_mailer_accepts() {
        assert!(check_email("jeanne.dupont@example.org").is_ok());
        assert!(check_email("j+tag@sub.example.org").is_ok());
        for bad in [
            "no-at-sign",
            "two@@example.org",
            "a b@example.org",
            "@example.org",
            "jeanne@",
            "Jeanne <jeanne@example.org>",
            "jeanne@example.org trailing",
            "jeanne@example.org\r\nBcc: x@evil.example",
            "jeanne@exa mple.org",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?} accepted");
        }
        let e = check_email("jeanne@example.org\r\n").unwrap_err();
        assert!(e.contains("CR"), "{e}");
        assert!(check_email(&format!("{}@example.org", "a".repeat(250))).is_err());
    }

    #[test]
    fn mobile_is_e164() {
        assert!(check_mobile("+33612345678").is_ok());
        assert!(check_mobile("+12345678").is_ok());
        assert!(check_mobile("+123456789012345").is_ok());
        for bad in [
            "0612345678",
            "+1234567",
            "+1234567890123456",
            "+33 6 12 34 56 78",
            "+33-612345678",
            "++33612345678",
            "+",
            "+٣٣٦١٢٣٤٥٦٧٨",
        ] {
            assert!(check_mobile(bad).is_err(), "{bad:?} accepted");
        }
    }
}
