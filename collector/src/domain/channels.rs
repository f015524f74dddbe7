//! How a contact is reached (issue 17): the channel families notices travel on, a contact's
//! choice among them, its quiet hours, and its phone number as an SMS gateway wants it. Pure: the
//! store asks these questions when it writes a notice, the notifier when it sends one.
//!
//! A notice's `channel` is `email`, `webhook:<name>`, `zalo` or `sms`; its family is the channel
//! without the webhook's name. Zalo and SMS carry short texts (`documents::short_notice`) and are
//! the channels quiet hours hold back: an e-mail waits in its mailbox anyway, a phone buzzes.
//!
//! Quiet hours are in Vietnam's time (UTC+7, no daylight saving), from a start minute to an end
//! minute, across midnight when the start is later than the end (`22:00-06:00`). A notice written
//! during them waits until they end, unless it is urgent (an incident of severity critical, an
//! alarm that a channel is down, a test an administrator asked for).

/// The channel families, in the order a contact's channels are listed.
pub const FAMILIES: [&str; 4] = ["email", "webhook", "zalo", "sms"];

/// The family of a notice's channel: `email`, `webhook`, `zalo` or `sms`.
pub fn family(channel: &str) -> &'static str {
    match channel {
        "email" => "email",
        "zalo" => "zalo",
        "sms" => "sms",
        _ => "webhook",
    }
}

/// Whether notices on `channel` are short texts on a phone (Zalo, SMS), which quiet hours hold.
pub fn is_short(channel: &str) -> bool {
    matches!(channel, "zalo" | "sms")
}

/// Parses a contact's choice of channel families (`email,sms`; commas, semicolons or spaces
/// between), checked and in the order of [`FAMILIES`]; empty text or `default` is no choice
/// (every channel the contact has an address for).
///
/// # Errors
///
/// When a name is not a family, saying which are.
pub fn parse_choice(text: &str) -> Result<Option<String>, String> {
    let names: Vec<&str> = text
        .split([',', ';', ' '])
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() || names == ["default"] {
        return Ok(None);
    }
    if let Some(unknown) = names.iter().find(|name| !FAMILIES.contains(name)) {
        return Err(format!(
            "channel {unknown:?} must be one of {}",
            FAMILIES.join(", ")
        ));
    }
    let chosen: Vec<&str> = FAMILIES
        .iter()
        .copied()
        .filter(|family| names.contains(family))
        .collect();
    Ok(Some(chosen.join(",")))
}

/// Whether a stored choice (none: every family) includes `family`.
pub fn chosen(choice: Option<&str>, family: &str) -> bool {
    choice.is_none_or(|choice| choice.split(',').any(|name| name == family))
}

/// Quiet hours: minutes after midnight, Vietnam time; `start` is in them, `end` is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// First quiet minute, 0..1440.
    pub start: i64,
    /// First minute after them, 0..1440; earlier than `start` across midnight.
    pub end: i64,
}

const DAY_MS: i64 = 86_400_000;
const VIETNAM_MS: i64 = 7 * 3_600_000;

impl QuietHours {
    /// Parses `22:00-06:00` (an en dash works too); empty text or `none` is no quiet hours.
    ///
    /// # Errors
    ///
    /// When the text is not two times like that, or they are equal.
    pub fn parse(text: &str) -> Result<Option<QuietHours>, String> {
        let text = text.trim();
        if text.is_empty() || text == "none" {
            return Ok(None);
        }
        let bad = || format!("quiet hours {text:?} are not like \"22:00-06:00\" (Vietnam time)");
        let (start, end) = text.split_once(['-', '–']).ok_or_else(bad)?;
        let minute = |part: &str| {
            let (hour, minute) = part.trim().split_once(':')?;
            let (hour, minute) = (hour.parse::<i64>().ok()?, minute.parse::<i64>().ok()?);
            ((0..24).contains(&hour) && (0..60).contains(&minute)).then_some(hour * 60 + minute)
        };
        let (start, end) = (minute(start).ok_or_else(bad)?, minute(end).ok_or_else(bad)?);
        if start == end {
            return Err(format!(
                "quiet hours {text:?} start and end at the same time"
            ));
        }
        Ok(Some(QuietHours { start, end }))
    }

    /// From the stored columns; none unless both are set and valid.
    pub fn from_columns(start: Option<i64>, end: Option<i64>) -> Option<QuietHours> {
        let (start, end) = (start?, end?);
        let valid = |minute: i64| (0..1440).contains(&minute);
        (valid(start) && valid(end) && start != end).then_some(QuietHours { start, end })
    }

    /// `22:00-06:00`.
    pub fn show(&self) -> String {
        format!(
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }

    /// When a notice written at `now` (Unix ms) may go: none when `now` is outside the quiet
    /// hours, else the instant they end.
    pub fn release_at(&self, now: i64) -> Option<i64> {
        let of_day = (now + VIETNAM_MS).rem_euclid(DAY_MS);
        let (start, end) = (self.start * 60_000, self.end * 60_000);
        let wait = if start < end {
            (start..end).contains(&of_day).then(|| end - of_day)
        } else if of_day >= start {
            Some(DAY_MS - of_day + end)
        } else if of_day < end {
            Some(end - of_day)
        } else {
            None
        };
        wait.map(|wait| now + wait)
    }
}

/// A phone number as written by people (`0912 345 678`, `+84 912.345.678`) with only its digits
/// and a leading `+`; empty when it has no digit.
pub fn phone_digits(phone: &str) -> String {
    let mut out = String::new();
    for c in phone.trim().chars() {
        if c.is_ascii_digit() || (c == '+' && out.is_empty()) {
            out.push(c);
        }
    }
    if out.chars().any(|c| c.is_ascii_digit()) {
        out
    } else {
        String::new()
    }
}

/// A Vietnamese phone number in the international form many SMS gateways want, without `+`:
/// `0912345678` → `84912345678`; numbers already international keep their digits.
pub fn phone_international(phone: &str) -> String {
    let digits = phone_digits(phone);
    if let Some(international) = digits.strip_prefix('+') {
        international.to_owned()
    } else if let Some(national) = digits.strip_prefix('0') {
        format!("84{national}")
    } else {
        digits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23 00:00 in Vietnam, Unix ms.
    const MIDNIGHT: i64 = 1_795_366_800_000;

    fn at(hour: i64, minute: i64) -> i64 {
        MIDNIGHT + (hour * 60 + minute) * 60_000
    }

    /// A time of day, `(hour, minute)`, and when a notice written then may go: none (at once) or
    /// the `(day offset, hour, minute)` it waits for.
    type Case = ((i64, i64), Option<(i64, i64, i64)>);

    /// Checks each case under quiet hours `quiet`.
    fn check(quiet: &str, cases: &[Case]) {
        let quiet = QuietHours::parse(quiet).unwrap().unwrap();
        for ((hour, minute), expected) in cases {
            let expected = expected.map(|(day, h, m)| at(h, m) + day * DAY_MS);
            assert_eq!(
                quiet.release_at(at(*hour, *minute)),
                expected,
                "{} at {hour:02}:{minute:02}",
                quiet.show()
            );
        }
    }

    #[test]
    fn quiet_hours_across_midnight_hold_notices_until_morning() {
        check(
            "22:00-06:00",
            &[
                ((21, 59), None),
                ((22, 0), Some((1, 6, 0))),
                ((23, 30), Some((1, 6, 0))),
                ((0, 0), Some((0, 6, 0))),
                ((5, 59), Some((0, 6, 0))),
                ((6, 0), None),
                ((12, 0), None),
            ],
        );
    }

    #[test]
    fn quiet_hours_within_a_day() {
        check(
            "12:00 – 13:30",
            &[
                ((11, 59), None),
                ((12, 0), Some((0, 13, 30))),
                ((13, 29), Some((0, 13, 30))),
                ((13, 30), None),
            ],
        );
    }

    #[test]
    fn quiet_hours_are_parsed_and_refused_with_a_reason() {
        assert_eq!(QuietHours::parse("").unwrap(), None);
        assert_eq!(QuietHours::parse("none").unwrap(), None);
        assert_eq!(
            QuietHours::parse("22:00-06:00").unwrap().unwrap().show(),
            "22:00-06:00"
        );
        for bad in ["22h-6h", "24:00-06:00", "22:00", "22:60-06:00"] {
            assert!(
                QuietHours::parse(bad).unwrap_err().contains("not like"),
                "{bad}"
            );
        }
        assert!(QuietHours::parse("06:00-06:00")
            .unwrap_err()
            .contains("same time"));
        assert_eq!(
            QuietHours::from_columns(Some(1320), Some(360)),
            Some(QuietHours {
                start: 1320,
                end: 360
            })
        );
        assert_eq!(QuietHours::from_columns(Some(1320), None), None);
    }

    #[test]
    fn a_choice_of_channels_is_checked_and_ordered() {
        assert_eq!(parse_choice("").unwrap(), None);
        assert_eq!(parse_choice("default").unwrap(), None);
        assert_eq!(
            parse_choice("sms; email").unwrap().as_deref(),
            Some("email,sms")
        );
        assert!(parse_choice("email,telegram")
            .unwrap_err()
            .contains("\"telegram\" must be one of email, webhook, zalo, sms"));
        assert!(chosen(None, "sms"));
        assert!(chosen(Some("email,sms"), "sms"));
        assert!(!chosen(Some("email,sms"), "zalo"));
        assert_eq!(family("webhook:truc"), "webhook");
        assert!(is_short("zalo") && is_short("sms") && !is_short("email"));
    }

    #[test]
    fn phones_keep_their_digits() {
        assert_eq!(phone_digits("0912 345 678"), "0912345678");
        assert_eq!(phone_digits("+84 (912) 345.678"), "+84912345678");
        assert_eq!(phone_digits("không có"), "");
        assert_eq!(phone_international("0912 345 678"), "84912345678");
        assert_eq!(phone_international("+84 912 345 678"), "84912345678");
        assert_eq!(phone_international("84912345678"), "84912345678");
    }
}
