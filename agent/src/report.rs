//! What the officer's commands print: the `check` table and the `status` summary, in Vietnamese.

use std::fmt::Write;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::identity::Identity;
use crate::outbox::Stats;
use crate::probe::{Outcome, Prober, Target};
use crate::status::{Board, OutboxStatus};
use crate::vi;

/// Checks every target once, concurrently, and renders a table; also says whether all passed.
pub async fn check(prober: &Arc<Prober>, targets: &[Target]) -> (String, bool) {
    let mut checks = tokio::task::JoinSet::new();
    for (index, target) in targets.iter().cloned().enumerate() {
        let prober = prober.clone();
        checks.spawn(async move { (index, prober.probe(&target.check, target.timeout).await) });
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; targets.len()];
    while let Some(joined) = checks.join_next().await {
        if let Ok((index, outcome)) = joined {
            outcomes[index] = Some(outcome);
        }
    }
    let rows: Vec<(&Target, Outcome)> = targets
        .iter()
        .zip(outcomes)
        .map(|(target, outcome)| {
            let outcome = outcome.unwrap_or(Outcome {
                ok: false,
                rtt: None,
                error: Some("check panicked".into()),
                http_status: None,
                cert_not_after: None,
            });
            (target, outcome)
        })
        .collect();
    let all_up = rows.iter().all(|(_, outcome)| outcome.ok);
    (render_check(&rows), all_up)
}

/// Renders the check table.
pub fn render_check(rows: &[(&Target, Outcome)]) -> String {
    let header = [
        "MỤC TIÊU",
        "LOẠI",
        "KIỂM TRA",
        "ĐỊA CHỈ",
        "KẾT QUẢ",
        "THỜI GIAN",
        "GHI CHÚ",
    ];
    let mut table: Vec<[String; 7]> = vec![header.map(str::to_owned)];
    for (target, outcome) in rows {
        let note = match (&outcome.error, outcome.http_status, outcome.cert_not_after) {
            (Some(error), _, _) => error.clone(),
            (None, Some(status), Some(expiry)) => {
                format!("HTTP {status}, chứng thư hết hạn {}", vn_date(expiry))
            }
            (None, Some(status), None) => format!("HTTP {status}"),
            (None, None, _) => String::new(),
        };
        table.push([
            target.name.clone(),
            vi::target_kind(target.kind).to_owned(),
            vi::check_name(target.check.kind()).to_owned(),
            target.check.address(),
            if outcome.ok {
                "đạt"
            } else {
                "KHÔNG ĐẠT"
            }
            .to_owned(),
            outcome.rtt.map_or_else(
                || "-".to_owned(),
                |rtt| format!("{:.1} ms", rtt.as_secs_f64() * 1000.0),
            ),
            note,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|col| {
            table
                .iter()
                .map(|row| row[col].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let down = rows.iter().filter(|(_, outcome)| !outcome.ok).count();
    if rows.is_empty() {
        out.push_str("Không có mục tiêu nào để kiểm tra: thêm [[target]] vào tệp cấu hình.\n");
    } else if down == 0 {
        let _ = writeln!(out, "\nTất cả {} mục tiêu đều đạt.", rows.len());
    } else {
        let _ = writeln!(out, "\n{down}/{} mục tiêu không đạt.", rows.len());
    }
    out
}

/// How long a running agent's board stays current: it is written every second.
const BOARD_FRESH: time::Duration = time::Duration::seconds(10);

/// Renders `cntt-agent status`.
///
/// `stats` are read from disk; while the agent runs and its board is current, the board's outbox
/// counters are shown instead, since they stay true when the outbox's state file cannot be
/// written (a full disk, issue 13, L2). A running agent whose board is not current is said to be.
pub fn status(identity: &Identity, running: bool, stats: &Stats, board: &Board) -> String {
    status_at(identity, running, stats, board, OffsetDateTime::now_utc())
}

fn status_at(
    identity: &Identity,
    running: bool,
    stats: &Stats,
    board: &Board,
    now: OffsetDateTime,
) -> String {
    let fresh = board
        .updated_at
        .is_some_and(|at| now - at <= BOARD_FRESH && at - now <= BOARD_FRESH);
    let live = match &board.outbox {
        Some(outbox) if running && fresh => Some(outbox.clone()),
        _ => None,
    };
    let outbox = live.clone().unwrap_or_else(|| OutboxStatus::from(stats));
    let mut out = String::new();
    let _ = writeln!(out, "Tác tử       {}", identity.agent_id);
    let _ = writeln!(
        out,
        "Đơn vị       {} ({})",
        identity.unit_code, identity.unit_name
    );
    let _ = writeln!(out, "Máy chủ thu  {}", identity.server);
    let _ = writeln!(out, "Đang chạy    {}", if running { "có" } else { "không" });
    if running && live.is_none() {
        let updated_at = board.updated_at.map(vn_time);
        let _ = writeln!(out, "{}", vi::status_stale(updated_at.as_deref()));
    }
    let _ = writeln!(
        out,
        "Hàng đợi     {} bản ghi chờ gửi ({} quan trọng), {} byte; đã bỏ {} mẫu thường do vượt dung lượng",
        outbox.records, outbox.critical_records, outbox.bytes, outbox.dropped_routine_total
    );
    let _ = writeln!(out, "{}", vi::status_lost(outbox.lost_total));
    if !outbox.state_saved {
        let _ = writeln!(out, "{}", vi::STATUS_STATE_UNSAVED);
    }
    if let (Some(error), true) = (&board.disk_error, live.is_some()) {
        let _ = writeln!(out, "{}", vi::status_disk_error(error));
    }
    let last = board
        .last_delivery_at
        .map_or_else(|| "chưa có".to_owned(), vn_time);
    let _ = writeln!(out, "Gửi thành công lần cuối  {last}");
    if let Some(error) = &board.last_upload_error {
        let _ = writeln!(out, "Lỗi gửi gần nhất         {error}");
    }
    let open: Vec<_> = board
        .open_incidents
        .iter()
        .chain(&board.host_incidents)
        .collect();
    if open.is_empty() {
        out.push_str("Sự cố đang mở: không có\n");
    } else {
        let _ = writeln!(out, "Sự cố đang mở ({}):", open.len());
        for incident in open {
            let _ = writeln!(
                out,
                "  - {} (từ {})",
                incident.title,
                vn_time(incident.started_at)
            );
        }
    }
    if !board.targets.is_empty() {
        out.push_str("Lần kiểm tra gần nhất:\n");
        for (name, target) in &board.targets {
            let state = if target.result.ok {
                "đạt"
            } else {
                "KHÔNG ĐẠT"
            };
            let _ = writeln!(out, "  {name}: {state} lúc {}", vn_time(target.at));
        }
    }
    out
}

fn vietnam() -> time::UtcOffset {
    time::UtcOffset::from_hms(7, 0, 0).expect("+07:00 is a valid offset")
}

/// dd/mm/yyyy hh:mm:ss in Vietnam time.
pub fn vn_time(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[day]/[month]/[year] [hour]:[minute]:[second]");
    at.to_offset(vietnam())
        .format(&format)
        .expect("times format")
}

fn vn_date(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[day]/[month]/[year]");
    at.to_offset(vietnam())
        .format(&format)
        .expect("dates format")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cntt_common::wire::TargetKind;
    use expect_test::expect;

    use super::*;
    use crate::probe::Check;

    #[test]
    fn check_table_is_aligned_and_in_vietnamese() {
        let gateway = Target {
            name: "gateway".into(),
            kind: TargetKind::Lan,
            check: Check::Icmp {
                host: "192.168.1.1".into(),
            },
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            gateway: true,
            system: None,
        };
        let portal = Target {
            name: "cong-thong-tin".into(),
            kind: TargetKind::Server,
            check: Check::Tcp {
                address: "10.0.0.5:443".into(),
            },
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            gateway: false,
            system: None,
        };
        let up = Outcome {
            ok: true,
            rtt: Some(Duration::from_micros(1500)),
            error: None,
            http_status: None,
            cert_not_after: None,
        };
        let down = Outcome {
            ok: false,
            rtt: None,
            error: Some("connection refused".into()),
            http_status: None,
            cert_not_after: None,
        };
        expect![[r#"
            MỤC TIÊU        LOẠI     KIỂM TRA  ĐỊA CHỈ       KẾT QUẢ    THỜI GIAN  GHI CHÚ
            gateway         LAN      ping      192.168.1.1   đạt        1.5 ms
            cong-thong-tin  máy chủ  TCP       10.0.0.5:443  KHÔNG ĐẠT  -          connection refused

            1/2 mục tiêu không đạt.
        "#]]
        .assert_eq(&render_check(&[(&gateway, up), (&portal, down)]));
    }

    /// `status` on a full disk (issue 13, L2): the running agent's own counters, lost records
    /// and the unsaved acknowledgement while its board is current; a warning, and the figures on
    /// disk, once it is not.
    #[test]
    fn status_tells_the_truth_on_a_full_disk() {
        let identity = Identity {
            agent_id: uuid::Uuid::nil(),
            unit_code: "000.00.00.H00".into(),
            unit_name: "Sở Thử nghiệm".into(),
            server: "https://collector.test:8443".into(),
            credential: cntt_common::Secret::new("x"),
            enroll_warning: None,
        };
        let now = time::macros::datetime!(2026-12-04 13:00 UTC);
        let on_disk = Stats {
            records: 1069,
            critical_records: 0,
            bytes: 600_000,
            segments: 1,
            dropped_routine_total: 0,
            unreadable_total: 0,
            oldest: None,
            next_seq: 1070,
            acked_through: 0,
            lost_total: 0,
            state_saved: true,
        };
        let board = Board {
            last_delivery_at: Some(now - time::Duration::seconds(3)),
            updated_at: Some(now - time::Duration::seconds(1)),
            outbox: Some(OutboxStatus {
                records: 0,
                lost_total: 2271,
                state_saved: false,
                ..OutboxStatus::default()
            }),
            disk_error: Some("writing outbox state: No space left on device (os error 28)".into()),
            ..Board::default()
        };
        expect![[r#"
            Tác tử       00000000-0000-0000-0000-000000000000
            Đơn vị       000.00.00.H00 (Sở Thử nghiệm)
            Máy chủ thu  https://collector.test:8443
            Đang chạy    có
            Hàng đợi     0 bản ghi chờ gửi (0 quan trọng), 0 byte; đã bỏ 0 mẫu thường do vượt dung lượng
            Đã mất       2271 bản ghi (không ghi được vào ổ đĩa, ví dụ khi ổ đĩa đầy, hoặc tệp hàng đợi bị xoá)
            Cảnh báo: chưa lưu được xác nhận gửi và bộ đếm của hàng đợi vào ổ đĩa (ổ đĩa đầy?); tác tử thử lại mỗi giây.
            Lỗi ghi ổ đĩa            writing outbox state: No space left on device (os error 28)
            Gửi thành công lần cuối  04/12/2026 19:59:57
            Sự cố đang mở: không có
        "#]]
        .assert_eq(&status_at(&identity, true, &on_disk, &board, now));
        expect![[r#"
            Tác tử       00000000-0000-0000-0000-000000000000
            Đơn vị       000.00.00.H00 (Sở Thử nghiệm)
            Máy chủ thu  https://collector.test:8443
            Đang chạy    có
            Cảnh báo: tác tử đang chạy nhưng không ghi được tệp trạng thái từ 04/12/2026 19:59:59 (ổ đĩa đầy?); số liệu hàng đợi dưới đây đọc từ đĩa và có thể đã cũ.
            Hàng đợi     1069 bản ghi chờ gửi (0 quan trọng), 600000 byte; đã bỏ 0 mẫu thường do vượt dung lượng
            Đã mất       0 bản ghi (không ghi được vào ổ đĩa, ví dụ khi ổ đĩa đầy, hoặc tệp hàng đợi bị xoá)
            Gửi thành công lần cuối  04/12/2026 19:59:57
            Sự cố đang mở: không có
        "#]]
        .assert_eq(&status_at(
            &identity,
            true,
            &on_disk,
            &board,
            now + time::Duration::minutes(5),
        ));
    }
}
