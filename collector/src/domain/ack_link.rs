//! Acknowledge from the notice (issue 17, item 4): each notice carries a link to its incident on
//! the console that the person, once logged in, uses to acknowledge it. Pure: signing and
//! checking; the key, the single use and the acknowledgement itself are the store's and the
//! console's (`store/ack_links.rs`, `http/console/ack.rs`).
//!
//! A link is `<console>/ack/<notice id>.<expiry, Unix ms>.<HMAC-SHA256 hex>`, the MAC over
//! `cntt-ack-v1|<notice id>|<expiry>` with the collector's link key (random, kept in the database,
//! never shown). The notice id names the incident and who was told; the MAC makes any change to
//! either part (another notice, a later expiry) show; the expiry bounds a forwarded link's life;
//! the store lets each link act once. A link is a pointer, never a credential: using it needs a
//! console session of someone whose scope holds the incident.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A link's parts once its signature holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The notice it came with.
    pub notice_id: String,
    /// When it stops working, Unix ms.
    pub expires_at: i64,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Not a link this collector made, or changed since.
    Altered,
    /// Past its expiry.
    Expired,
}

impl LinkRefusal {
    /// The audit's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkRefusal::Altered => "altered",
            LinkRefusal::Expired => "expired",
        }
    }
}

fn mac(key: &[u8], notice_id: &str, expires_at: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("cntt-ack-v1|{notice_id}|{expires_at}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The token of a link for `notice_id`, valid until `expires_at` (Unix ms).
pub fn sign(key: &[u8], notice_id: &str, expires_at: i64) -> String {
    format!(
        "{notice_id}.{expires_at}.{}",
        mac(key, notice_id, expires_at)
    )
}

/// Checks a token at `now`.
///
/// # Errors
///
/// [`LinkRefusal::Altered`] when it does not parse or its signature does not hold (checked in
/// constant time), [`LinkRefusal::Expired`] when it holds but has expired.
pub fn verify(key: &[u8], token: &str, now: i64) -> Result<Claims, LinkRefusal> {
    let mut parts = token.splitn(3, '.');
    let (Some(notice_id), Some(expires), Some(given)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(LinkRefusal::Altered);
    };
    let expires_at: i64 = expires.parse().map_err(|_| LinkRefusal::Altered)?;
    if notice_id.is_empty() || notice_id.len() > 64 || given.len() != 64 || !given.is_ascii() {
        return Err(LinkRefusal::Altered);
    }
    let Ok(given) = (0..32)
        .map(|i| u8::from_str_radix(&given[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return Err(LinkRefusal::Altered);
    };
    let mut check = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    check.update(format!("cntt-ack-v1|{notice_id}|{expires_at}").as_bytes());
    check
        .verify_slice(&given)
        .map_err(|_| LinkRefusal::Altered)?;
    if now >= expires_at {
        return Err(LinkRefusal::Expired);
    }
    Ok(Claims {
        notice_id: notice_id.to_owned(),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"khoa-bi-mat-cua-may-chu-giam-sat";

    #[test]
    fn a_signed_link_holds_until_it_expires() {
        let token = sign(KEY, "0194-notice", 10_000);
        assert_eq!(
            verify(KEY, &token, 9_999),
            Ok(Claims {
                notice_id: "0194-notice".into(),
                expires_at: 10_000
            })
        );
        assert_eq!(verify(KEY, &token, 10_000), Err(LinkRefusal::Expired));
    }

    #[test]
    fn any_change_is_seen() {
        let token = sign(KEY, "0194-notice", 10_000);
        let later = token.replacen("10000", "99999", 1);
        assert_eq!(verify(KEY, &later, 0), Err(LinkRefusal::Altered));
        let other = token.replacen("0194", "0195", 1);
        assert_eq!(verify(KEY, &other, 0), Err(LinkRefusal::Altered));
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(verify(KEY, &flipped, 0), Err(LinkRefusal::Altered));
        assert_eq!(verify(b"another key", &token, 0), Err(LinkRefusal::Altered));
        for junk in ["", "a.b", "a.b.c", "x.1.zz", "x.1.é€"] {
            assert_eq!(verify(KEY, junk, 0), Err(LinkRefusal::Altered), "{junk:?}");
        }
    }
}
