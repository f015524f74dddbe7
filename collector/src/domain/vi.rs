//! Every Vietnamese sentence the collector writes into incidents (titles, descriptions, timeline
//! entries), kept together so wording and diacritics are reviewed in one place. Times are shown in
//! Vietnam's time zone, 24-hour, dates as dd/mm/yyyy.

use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Vietnam's time zone (no daylight saving).
pub const VIETNAM: UtcOffset = time::macros::offset!(+7);

/// `08:12:05 23/11/2026`, in Vietnam time, from Unix milliseconds.
pub fn time_of(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(VIETNAM);
    at.format(format_description!(
        "[hour]:[minute]:[second] [day]/[month]/[year]"
    ))
    .unwrap_or_else(|_| ms.to_string())
}

/// Title of an agent's "unreachable" incident.
pub fn agent_unreachable_title(hostname: &str) -> String {
    format!("Mất liên lạc với tác tử: {hostname}")
}

/// Description of an agent's "unreachable" incident.
pub fn agent_unreachable_description(hostname: &str, seconds: i64) -> String {
    format!("Máy chủ thu không nhận được dữ liệu từ tác tử trên máy {hostname} quá {seconds} giây.")
}

/// Timeline entry when an agent reports again.
pub const AGENT_BACK: &str = "Tác tử đã liên lạc trở lại.";

/// Timeline entry when an unreachable agent is revoked.
pub const AGENT_REVOKED: &str =
    "Tác tử đã bị thu hồi (ngừng sử dụng); sự cố mất liên lạc kết thúc.";

/// Title of a unit's inferred outage.
pub fn unit_outage_title(unit: &str) -> String {
    format!("Mất kết nối WAN: {unit}")
}

/// Title of a unit's outage that the agents' evidence shows to be in the LAN.
pub fn unit_lan_outage_title(unit: &str) -> String {
    format!("Sự cố mạng LAN: {unit}")
}

/// Description of a unit's inferred outage.
pub fn unit_outage_description(unit: &str, silent_agents: usize, since: i64) -> String {
    format!(
        "Cả {silent_agents} tác tử của {unit} cùng ngừng gửi dữ liệu; máy chủ thu nghe thấy lần cuối lúc {}. \
         Nguyên nhân có thể là đường truyền WAN hoặc mạng nội bộ của đơn vị; thời điểm chính xác sẽ được \
         điều chỉnh theo dữ liệu các tác tử gửi về khi có kết nối trở lại.",
        time_of(since)
    )
}

/// Title of an uplink's inferred outage.
pub fn uplink_outage_title(uplink: &str, dark_units: usize) -> String {
    format!("Mất kết nối WAN: {uplink} ({dark_units} đơn vị)")
}

/// Description of an uplink's inferred outage.
pub fn uplink_outage_description(
    uplink: &str,
    dark_units: &[String],
    silent_agents: usize,
    since: i64,
) -> String {
    format!(
        "{} đơn vị dùng chung đường truyền qua {uplink} cùng mất liên lạc ({silent_agents} tác tử): {}. \
         Máy chủ thu nghe thấy lần cuối lúc {}; thời điểm chính xác sẽ được điều chỉnh theo dữ liệu các \
         tác tử gửi về khi có kết nối trở lại.",
        dark_units.len(),
        dark_units.join(", "),
        time_of(since)
    )
}

/// Timeline entry of an inferred outage that ended.
pub fn outage_over(ended_at: i64) -> String {
    format!(
        "Kết nối đã trở lại: tác tử đầu tiên liên lạc lại lúc {}.",
        time_of(ended_at)
    )
}

/// Timeline entry of an incident folded under another.
pub fn folded_under(number: &str) -> String {
    format!("Gộp vào sự cố {number}: cùng một nguyên nhân phía trên, không thông báo riêng.")
}

/// Timeline entry of an incident released from an outage that ended.
pub fn released_from(number: &str) -> String {
    format!(
        "Tách khỏi sự cố {number} (đã kết thúc); sự cố này vẫn tiếp diễn và được theo dõi riêng."
    )
}

/// Timeline entry of an inferred outage when an agent's own incident is linked to it.
pub fn evidence_linked(
    number: &str,
    hostname: &str,
    kind: &str,
    started_at: i64,
    ended_at: Option<i64>,
) -> String {
    let kind = match kind {
        "lan" => "mạng LAN",
        "internet" => "Internet",
        _ => "WAN",
    };
    let end = ended_at.map_or_else(|| "nay".to_owned(), time_of);
    format!(
        "Tác tử {hostname} báo sự cố {kind} {number} từ {} đến {end}.",
        time_of(started_at)
    )
}

/// Timeline entry when the agents' evidence corrects an inferred outage's times.
pub fn corrected(
    old_start: i64,
    old_end: Option<i64>,
    new_start: i64,
    new_end: Option<i64>,
) -> String {
    let end = |at: Option<i64>| at.map_or_else(|| "chưa kết thúc".to_owned(), time_of);
    format!(
        "Điều chỉnh theo dữ liệu các tác tử: từ {} đến {} (máy chủ thu suy ra: từ {} đến {}).",
        time_of(new_start),
        end(new_end),
        time_of(old_start),
        end(old_end)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_vietnam_time_24_hour_day_first() {
        // 2026-11-23 01:12:05 UTC is 08:12:05 in Vietnam.
        assert_eq!(time_of(1_795_396_325_000), "08:12:05 23/11/2026");
    }
}
