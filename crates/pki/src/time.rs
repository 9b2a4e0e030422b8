//! Conversion between the core's [`Timestamp`] and X.509 times.

use crate::error::PkiError;
use der::asn1::{GeneralizedTime, UtcTime};
use der::DateTime;
use std::time::Duration;
use tessera_core::model::Timestamp;
use x509_cert::time::Time;

/// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on.
pub(crate) fn to_x509(t: Timestamp) -> Result<Time, PkiError> {
    let secs = u64::try_from(t.0)
        .map_err(|_| PkiError::InvalidValidity(format!("{} is before 1970", t.0)))?;
    let date = DateTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|_| PkiError::InvalidValidity(format!("{} is out of range", t.0)))?;
    Ok(if date.year() <= UtcTime::MAX_YEAR {
        Time::UtcTime(UtcTime::from_date_time(date)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_date_time(date))
    })
}

pub(crate) fn from_x509(t: &Time) -> Timestamp {
    Timestamp(t.to_unix_duration().as_secs() as i64)
}

/// The system's clock, which the content signer renews by unless the server gives its own.
pub(crate) struct SystemClock;

impl tessera_core::ports::Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Timestamp(i64::try_from(seconds).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_rfc5280_encoding() {
        let t = Timestamp(1_827_014_400);
        assert!(matches!(to_x509(t).unwrap(), Time::UtcTime(_)));
        assert_eq!(from_x509(&to_x509(t).unwrap()), t);
        let late = Timestamp(2_556_144_000); // 2051-01-01
        assert!(matches!(to_x509(late).unwrap(), Time::GeneralTime(_)));
        assert_eq!(from_x509(&to_x509(late).unwrap()), late);
        assert!(to_x509(Timestamp(-1)).is_err());
    }
}
