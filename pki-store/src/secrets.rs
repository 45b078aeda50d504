//! Secrets kept out of logs and error messages: the one place a database
//! URL is made printable ([`redact`]) and a message that may quote one is
//! cleaned ([`scrub`]). Every log line, hint and error that names the
//! database goes through here.
//!
//! A PostgreSQL URL carries its password in the user-info part
//! (`postgres://ca:secret@db/pki`) or as a query parameter
//! (`?password=secret`, `sslpassword=`, and `passfile=` names a file of
//! passwords); both are hidden. The URL is read with the `url` crate, not by
//! hand, so `@` and `:` inside a percent-encoded password are not mistaken
//! for delimiters. SQLite URLs hold only a path and are shown as they are.

/// What replaces a secret.
pub const HIDDEN: &str = "***";

/// Whether a query parameter of a database URL holds a secret (or names a
/// file of secrets): libpq's `password`, `sslpassword`, `passfile`, and
/// anything else whose name says pass, secret or token.
fn secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token"].iter().any(|w| name.contains(w))
}

/// A database URL fit for a message: the password of the user-info part and
/// of every secret query parameter replaced by `***`; everything else as
/// written. A URL that cannot be read is not shown beyond its scheme.
pub fn redact(url: &str) -> String {
    if url.starts_with("sqlite://") {
        return url.to_string();
    }
    let Ok(mut parsed) = url::Url::parse(url) else {
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        return format!("{scheme}://(unreadable URL, not shown)");
    };
    if parsed.password().is_some() && parsed.set_password(Some(HIDDEN)).is_err() {
        return format!("{}://(URL not shown)", parsed.scheme());
    }
    if let Some(query) = parsed.query().map(str::to_string) {
        let cleaned: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if secret_parameter(&decoded(name)) => {
                    format!("{name}={HIDDEN}")
                }
                _ => pair.to_string(),
            })
            .collect();
        parsed.set_query(Some(&cleaned.join("&")));
    }
    parsed.to_string()
}

/// `message` with every secret of `url` replaced by `***`, as written in the
/// URL and percent-decoded: for texts made by others (a driver's error may
/// quote the URL or a piece of it).
pub fn scrub(message: &str, url: &str) -> String {
    let mut out = message.replace(url, &redact(url));
    for secret in secrets_of(url) {
        if !secret.is_empty() && secret != HIDDEN {
            out = out.replace(&secret, HIDDEN);
        }
    }
    out
}

/// The secrets a URL holds, raw and decoded, longest first (so that a
/// secret containing another is replaced whole).
fn secrets_of(url: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        // Unreadable: hide everything between the scheme and the host.
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        return rest
            .rsplit_once('@')
            .map(|(userinfo, _)| vec![userinfo.to_string()])
            .unwrap_or_default();
    };
    let mut secrets = Vec::new();
    if let Some(p) = parsed.password() {
        secrets.push(p.to_string());
        secrets.push(decoded(p));
    }
    for pair in parsed.query().unwrap_or("").split('&') {
        if let Some((name, value)) = pair.split_once('=') {
            if secret_parameter(&decoded(name)) {
                secrets.push(value.to_string());
                secrets.push(decoded(value));
            }
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

/// Percent-decoding (and `+` as space, as in a query).
fn decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_passwords_are_hidden() {
        assert_eq!(
            redact("postgres://ca:s3cret@db/pki"),
            "postgres://ca:***@db/pki"
        );
        assert_eq!(
            redact("postgresql://ca:p%40ss%3Aw@db:5433/pki"),
            "postgresql://ca:***@db:5433/pki"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
    }

    #[test]
    fn query_passwords_are_hidden() {
        assert_eq!(
            redact("postgres://ca@db/pki?password=s3cret"),
            "postgres://ca@db/pki?password=***"
        );
        let r = redact(
            "postgres://ca:one@db/pki?sslmode=require&sslpassword=two&passfile=/etc/pgpass&PassWord=three&options=-csearch_path%3Dt_1",
        );
        assert_eq!(
            r,
            "postgres://ca:***@db/pki?sslmode=require&sslpassword=***&passfile=***&PassWord=***&options=-csearch_path%3Dt_1"
        );
        for secret in ["one", "two", "pgpass", "three"] {
            assert!(!r.contains(secret), "{r}");
        }
    }

    #[test]
    fn sqlite_paths_are_unchanged() {
        for url in [
            "sqlite:///var/lib/pki/pki.sqlite",
            "sqlite://data/pki.sqlite",
            "sqlite://./a b/p@ss:x.sqlite",
        ] {
            assert_eq!(redact(url), url);
        }
    }

    #[test]
    fn unreadable_urls_are_not_shown() {
        let r = redact("postgres://ca:s3cret@[bad/pki");
        assert!(!r.contains("s3cret"), "{r}");
        assert!(r.starts_with("postgres://"), "{r}");
    }

    #[test]
    fn messages_lose_every_form_of_the_secret() {
        let url = "postgres://ca:s%2F3cret@db/pki?password=q%26pw&sslmode=disable";
        let message = format!(
            "cannot connect to {url}: password authentication failed (s/3cret, q&pw, q%26pw, s%2F3cret)"
        );
        let m = scrub(&message, url);
        for secret in ["s/3cret", "s%2F3cret", "q&pw", "q%26pw"] {
            assert!(!m.contains(secret), "{m}");
        }
        assert!(
            m.contains("postgres://ca:***@db/pki?password=***&sslmode=disable"),
            "{m}"
        );
        assert_eq!(scrub("no such file", "sqlite:///x.sqlite"), "no such file");
    }
}
