//! RFC 5280 §4.1.2.5 times: UTCTime through 2049, GeneralizedTime from 2050.
//! Written here because x509-cert 0.2.5 converts every `SystemTime` to
//! GeneralizedTime.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use der::asn1::{GeneralizedTime, UtcTime};
use std::time::Duration;
use x509_cert::time::Time;

#[derive(Debug, thiserror::Error)]
#[error("time {0} cannot be written in a certificate")]
pub struct TimeError(pub DateTime<Utc>);

/// The certificate encoding of an instant (whole seconds).
pub fn to_x509(at: DateTime<Utc>) -> Result<Time, TimeError> {
    let secs = u64::try_from(at.timestamp()).map_err(|_| TimeError(at))?;
    let unix = Duration::from_secs(secs);
    if at.year() < 2050 {
        UtcTime::from_unix_duration(unix)
            .map(Time::UtcTime)
            .map_err(|_| TimeError(at))
    } else {
        GeneralizedTime::from_unix_duration(unix)
            .map(Time::GeneralTime)
            .map_err(|_| TimeError(at))
    }
}

/// The instant a certificate time denotes.
pub fn from_x509(t: &Time) -> DateTime<Utc> {
    let secs = t.to_unix_duration().as_secs() as i64;
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_to_generalized_time_in_2050() {
        let a = Utc.with_ymd_and_hms(2049, 12, 31, 23, 59, 59).unwrap();
        let b = Utc.with_ymd_and_hms(2050, 1, 1, 0, 0, 0).unwrap();
        assert!(matches!(to_x509(a).unwrap(), Time::UtcTime(_)));
        assert!(matches!(to_x509(b).unwrap(), Time::GeneralTime(_)));
        assert_eq!(from_x509(&to_x509(a).unwrap()), a);
        assert_eq!(from_x509(&to_x509(b).unwrap()), b);
    }
}
