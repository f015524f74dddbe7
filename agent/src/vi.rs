//! Every Vietnamese text the agent produces for people: incident titles and descriptions, and the
//! officer's command-line tables. Kept together so wording is reviewed in one place.

use std::collections::BTreeSet;

use cntt_common::wire::{CheckKind, IncidentKind, TargetKind};

use crate::detector::TargetInfo;

/// Title of a detected incident.
pub fn detected_title(kind: IncidentKind, targets: &[&TargetInfo]) -> String {
    let subject = match kind {
        IncidentKind::Lan => "Mất kết nối mạng nội bộ (LAN)",
        IncidentKind::Wan => "Mất kết nối mạng diện rộng (WAN)",
        IncidentKind::Internet => "Mất kết nối Internet",
        IncidentKind::Server => "Máy chủ/dịch vụ không phản hồi",
        IncidentKind::Host => "Sự cố máy trạm/máy chủ",
        IncidentKind::Security => "Sự cố an toàn thông tin",
        IncidentKind::Other => "Sự cố",
    };
    let title = match targets {
        [single] if kind == IncidentKind::Lan && !single.gateway => {
            format!(
                "Thiết bị/máy chủ mạng nội bộ không phản hồi: {} ({})",
                single.name, single.address
            )
        }
        [single] => format!("{subject}: {} ({})", single.name, single.address),
        _ => subject.to_owned(),
    };
    // A long address must not make the collector refuse the incident (its title limit).
    let limit = cntt_common::wire::MAX_INCIDENT_TITLE;
    if title.chars().count() > limit {
        let mut short: String = title.chars().take(limit - 1).collect();
        short.push('…');
        return short;
    }
    title
}

/// How a detected incident was found.
pub fn detected_description(targets: &[&TargetInfo], down_after: u32) -> String {
    let list: Vec<String> = targets
        .iter()
        .map(|target| {
            format!(
                "{} {} ({})",
                check_name(target.check),
                target.address,
                target.name
            )
        })
        .collect();
    format!(
        "Phát hiện tự động bởi cntt-agent: kiểm tra {} thất bại {down_after} lần liên tiếp.",
        list.join(", ")
    )
}

/// The sentence naming what failed because of an incident.
pub fn consequences(names: &BTreeSet<String>) -> String {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    format!("Các mục tiêu bị ảnh hưởng theo: {}.", names.join(", "))
}

/// Title and description of a host resource problem.
pub fn host_problem(resource: &str, used_percent: f64, limit_percent: f64) -> (String, String) {
    let used = format!("{used_percent:.1}").replace('.', ",");
    let side = if used_percent >= limit_percent {
        "vượt"
    } else {
        "dưới"
    };
    match resource.strip_prefix("disk:") {
        Some(mount) => (
            format!("Ổ đĩa sắp đầy: {mount}"),
            format!("Ổ đĩa {mount} đã dùng {used}%, {side} ngưỡng {limit_percent}%."),
        ),
        None => (
            "Bộ nhớ (RAM) sắp cạn".to_owned(),
            format!("Bộ nhớ đã dùng {used}%, {side} ngưỡng {limit_percent}%."),
        ),
    }
}

/// Vietnamese name of a target kind.
pub fn target_kind(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Lan => "LAN",
        TargetKind::Wan => "WAN",
        TargetKind::Internet => "Internet",
        TargetKind::Server => "máy chủ",
    }
}

/// Vietnamese name of a check.
pub fn check_name(check: CheckKind) -> &'static str {
    match check {
        CheckKind::Icmp => "ping",
        CheckKind::Tcp => "TCP",
        CheckKind::Http => "HTTP",
        CheckKind::Dns => "DNS",
    }
}

/// Vietnamese name of an incident kind, as officers type it on the command line.
pub fn incident_kind(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::Lan => "mạng LAN",
        IncidentKind::Wan => "mạng WAN/đường truyền",
        IncidentKind::Internet => "Internet",
        IncidentKind::Server => "máy chủ",
        IncidentKind::Host => "máy trạm",
        IncidentKind::Security => "an toàn thông tin",
        IncidentKind::Other => "khác",
    }
}

/// The `status` line counting records lost before delivery (issue 13, L2).
pub fn status_lost(lost_total: u64) -> String {
    format!(
        "Đã mất       {lost_total} bản ghi (không ghi được vào ổ đĩa, ví dụ khi ổ đĩa đầy, hoặc tệp hàng đợi bị xoá)"
    )
}

/// The `status` warning when a running agent has not written its board for a while.
pub fn status_stale(updated_at: Option<&str>) -> String {
    match updated_at {
        Some(at) => format!(
            "Cảnh báo: tác tử đang chạy nhưng không ghi được tệp trạng thái từ {at} (ổ đĩa đầy?); số liệu hàng đợi dưới đây đọc từ đĩa và có thể đã cũ."
        ),
        None => "Cảnh báo: tác tử đang chạy nhưng chưa ghi được tệp trạng thái (ổ đĩa đầy?); số liệu hàng đợi dưới đây đọc từ đĩa và có thể đã cũ.".to_owned(),
    }
}

/// The `status` warning while the outbox cannot save an acknowledgement or a count.
pub const STATUS_STATE_UNSAVED: &str = "Cảnh báo: chưa lưu được xác nhận gửi và bộ đếm của hàng đợi vào ổ đĩa (ổ đĩa đầy?); tác tử thử lại mỗi giây.";

/// The `status` line naming the last failure to write the state folder.
pub fn status_disk_error(error: &str) -> String {
    format!("Lỗi ghi ổ đĩa            {error}")
}

/// Answer of `cntt-agent service` on systems other than Windows.
pub const SERVICE_NOT_WINDOWS: &str = "Lệnh `cntt-agent service` chỉ dùng trên Windows. \
Trên Linux, tác tử chạy bằng dịch vụ systemd `cntt-agent.service`: \
sudo systemctl enable --now cntt-agent (xem trạng thái: systemctl status cntt-agent; nhật ký: journalctl -u cntt-agent).";

/// Display name of the Windows service.
pub const SERVICE_DISPLAY_NAME: &str = "CNTT Agent - giám sát hạ tầng CNTT";

/// Description of the Windows service, shown in services.msc.
pub const SERVICE_DESCRIPTION: &str =
    "Tác tử giám sát của Sở: gửi tình trạng máy và mạng của đơn vị về máy chủ giám sát của tỉnh.";

/// `cntt-agent service` when the service control manager refuses.
pub const SERVICE_NEEDS_ADMIN: &str = "không mở được trình quản lý dịch vụ của Windows; \
hãy mở Command Prompt hoặc PowerShell bằng \"Run as administrator\" rồi chạy lại lệnh";

/// `cntt-agent service install` done.
pub const SERVICE_INSTALLED: &str = "Đã cài dịch vụ cntt-agent (tự khởi động cùng Windows).\n\
Tiếp theo: cntt-agent service start\n";

/// `cntt-agent service uninstall` done.
pub const SERVICE_UNINSTALLED: &str =
    "Đã gỡ dịch vụ cntt-agent. Dữ liệu trong thư mục trạng thái được giữ nguyên.\n";

/// `cntt-agent service start` done.
pub const SERVICE_STARTED: &str = "Dịch vụ cntt-agent đang chạy.\n";

/// `cntt-agent service stop` done.
pub const SERVICE_STOPPED: &str =
    "Đã dừng dịch vụ cntt-agent; các sự kiện chưa gửi vẫn nằm trong hàng đợi trên đĩa.\n";
