//! Reads when an X.509 certificate expires, so HTTPS checks can warn before an agency's portal
//! certificate runs out.
//!
//! reqwest hands over the server's leaf certificate as DER bytes; a full X.509 parser would be a
//! large dependency for one field, so this is a small DER reader that walks straight to it
//! (RFC 5280, section 4.1):
//!
//! ```text
//! Certificate SEQUENCE {
//!   tbsCertificate SEQUENCE {
//!     version [0] EXPLICIT (optional), serialNumber INTEGER, signature SEQUENCE,
//!     issuer SEQUENCE, validity SEQUENCE { notBefore Time, notAfter Time }, ...
//!   }, ...
//! }
//! Time ::= UTCTime "YYMMDDHHMMSSZ" (years 1950..=2049) | GeneralizedTime "YYYYMMDDHHMMSSZ"
//! ```
//!
//! Anything unexpected gives `None`: the expiry date is a bonus, never a reason to fail a check.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The `notAfter` date of the DER-encoded certificate `der`, or `None` when it cannot be read.
pub(super) fn not_after(der: &[u8]) -> Option<OffsetDateTime> {
    let mut certificate = Reader(der);
    let mut certificate = Reader(certificate.expect(SEQUENCE)?);
    let mut tbs = Reader(certificate.expect(SEQUENCE)?);
    if tbs.peek() == Some(VERSION) {
        tbs.next()?;
    }
    tbs.expect(INTEGER)?;
    tbs.expect(SEQUENCE)?; // signature algorithm
    tbs.expect(SEQUENCE)?; // issuer
    let mut validity = Reader(tbs.expect(SEQUENCE)?);
    validity.next()?; // notBefore
    let (tag, value) = validity.next()?;
    parse_time(tag, value)
}

/// A cursor over DER-encoded elements.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The tag of the next element.
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Reads the next element: its tag and its contents.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = match first {
            0x00..=0x7f => usize::from(first),
            // Long form: the low bits count the length bytes; DER never needs more than 4 here.
            0x81..=0x84 => {
                let n_bytes = usize::from(first & 0x7f);
                let (bytes, after) = rest.split_at_checked(n_bytes)?;
                rest = after;
                bytes
                    .iter()
                    .fold(0usize, |len, &byte| (len << 8) | usize::from(byte))
            }
            // Indefinite length (0x80) is not DER; longer lengths cannot be certificates.
            _ => return None,
        };
        let (contents, after) = rest.split_at_checked(len)?;
        self.0 = after;
        Some((tag, contents))
    }

    /// Reads the next element, which must have `tag`, and returns its contents.
    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.next()? {
            (found, contents) if found == tag => Some(contents),
            _ => None,
        }
    }
}

/// Parses a UTCTime or GeneralizedTime as DER encodes it in certificates: seconds, and `Z`.
fn parse_time(tag: u8, value: &[u8]) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let short: i32 = digits[..2].parse().ok()?;
            let year = if short >= 50 {
                1900 + short
            } else {
                2000 + short
            };
            (year, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |at: usize| rest[at..at + 2].parse::<u8>().ok();
    let date = Date::from_calendar_date(year, Month::try_from(field(0)?).ok()?, field(2)?).ok()?;
    let time = Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair};
    use time::macros::datetime;

    use super::*;

    fn certificate(not_after: OffsetDateTime) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = datetime!(2024-01-02 03:04:05 UTC);
        params.not_after = not_after;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn check(der: &[u8], expected: Option<OffsetDateTime>) {
        assert_eq!(not_after(der), expected);
    }

    #[test]
    fn reads_not_after_of_rcgen_certificates() {
        for date in [
            datetime!(2031-05-17 10:20:30 UTC),
            // The last UTCTime second and the first GeneralizedTime one (RFC 5280, 4.1.2.5).
            datetime!(2049-12-31 23:59:59 UTC),
            datetime!(2050-01-01 00:00:00 UTC),
            datetime!(9999-12-31 23:59:59 UTC),
        ] {
            check(&certificate(date), Some(date));
        }
    }

    #[test]
    fn damaged_certificates_give_none() {
        let der = certificate(datetime!(2031-05-17 10:20:30 UTC));
        check(&[], None);
        check(&der[..der.len() / 2], None);
        check(&der[..40], None);
        check(b"-----BEGIN CERTIFICATE-----", None);
        check(&[0x30, 0x80, 0x00, 0x00], None);
        check(&[0x30, 0x85, 0xff, 0xff, 0xff, 0xff, 0xff], None);
    }

    #[test]
    fn times() {
        let check =
            |tag, text: &str, expected| assert_eq!(parse_time(tag, text.as_bytes()), expected);
        check(
            UTC_TIME,
            "310517102030Z",
            Some(datetime!(2031-05-17 10:20:30 UTC)),
        );
        check(
            UTC_TIME,
            "500101000000Z",
            Some(datetime!(1950-01-01 00:00:00 UTC)),
        );
        check(
            UTC_TIME,
            "491231235959Z",
            Some(datetime!(2049-12-31 23:59:59 UTC)),
        );
        check(
            GENERALIZED_TIME,
            "20500101000000Z",
            Some(datetime!(2050-01-01 00:00:00 UTC)),
        );
        check(UTC_TIME, "3105171020Z", None);
        check(UTC_TIME, "310517102030+0700", None);
        check(UTC_TIME, "311317102030Z", None);
        check(UTC_TIME, "310230102030Z", None);
        check(UTC_TIME, "31051710203aZ", None);
        check(GENERALIZED_TIME, "310517102030Z", None);
        check(GENERALIZED_TIME, "20310517102030.5Z", None);
        check(INTEGER, "310517102030Z", None);
    }
}
