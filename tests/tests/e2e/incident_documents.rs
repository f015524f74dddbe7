//! Incident reports as documents (issue 12, item 4), against a real collector on SQLite: the
//! initial (Biểu mẫu 03) and closing (Biểu mẫu 04) reports of a security incident and of a WAN
//! incident, fetched as DOCX through the API, converted to PDF by a real LibreOffice and read back
//! with `pdftotext`. The initial report read after closing is the one issued before, byte for
//! byte; a correction is a new version and the first stays readable; the WAN incident's end is
//! when service came back, not when it was closed.
//!
//! `CNTT_TEST_KEEP_DOCUMENTS=DIR` keeps the DOCX, their PDF and a PNG of each first page in `DIR`
//! to look at.

use std::path::Path;

use cntt_collector::config::Config;
use cntt_collector::documents::incident::time_text;
use cntt_collector::domain::auth::Role;
use e2e::{spawn_collector, sqlite_db, TestCollector};
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::documents::{convert_to_pdf, squashed, stdout_of};

const SYSTEMS_CSV: &str = "unit_code,code,name,security_level,purpose,operator,governing_body,connection_provider,security_provider,os,services,public_addresses,domains
24700,dakmil-portal,Cổng thông tin điện tử thị trấn Đắk Mil,2,Cung cấp thông tin cho người dân,UBND thị trấn Đắk Mil,Ủy ban nhân dân huyện Đắk Mil,VNPT Đắk Nông,Trung tâm Giám sát an toàn không gian mạng,Ubuntu Server 22.04 LTS,\"HTTPS (nginx 1.24), SSH\",203.0.113.10,dakmil.gov.vn
24700,dakmil-wan,Mạng truyền số liệu chuyên dùng thị trấn Đắk Mil,1,Kết nối với mạng của tỉnh,UBND thị trấn Đắk Mil,Ủy ban nhân dân huyện Đắk Mil,Viettel Đắk Nông,,,IPsec VPN,203.0.113.1,
";

const PROFILES_CSV: &str = "unit_code,reporting_name,governing_body,address,phone,email,symbol
24700,,,\"Số 1 đường Lê Duẩn, thị trấn Đắk Mil\",0261 3 741 234,ubnd@dakmil.gov.vn,UBND
";

const CONTACTS_CSV: &str = "unit_code,name,role,position,phone,email,webhook
24700,Nguyễn Văn An,it_officer,Cán bộ chuyên trách CNTT,0912 345 678,an.nv@dakmil.gov.vn,
";

async fn send(
    collector: &TestCollector,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Vec<u8>) {
    let url = format!("{}{path}", collector.base_url);
    let request = match body {
        Some(body) => collector.client().post(url).json(&body),
        None => collector.client().get(url),
    };
    let response = request.bearer_auth(token).send().await.unwrap();
    let status = response.status();
    (status, response.bytes().await.unwrap().to_vec())
}

async fn json_of(collector: &TestCollector, token: &str, path: &str, body: Option<Value>) -> Value {
    let (status, bytes) = send(collector, token, path, body).await;
    assert!(
        status.is_success(),
        "{path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap()
}

async fn report(collector: &TestCollector, token: &str, id: &str, query: &str) -> Vec<u8> {
    let path = format!("/api/v1/incidents/{id}/report?{query}");
    let (status, bytes) = send(collector, token, &path, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// Converts a DOCX to PDF and text; keeps them, with a PNG of every page, when asked.
fn read_back(dir: &Path, name: &str, docx: &[u8]) -> String {
    let path = dir.join(format!("{name}.docx"));
    std::fs::write(&path, docx).unwrap();
    let out = dir.join("pdf");
    std::fs::create_dir_all(&out).unwrap();
    let pdf = convert_to_pdf(&path, &out, &dir.join("libreoffice-profile"));
    if let Some(keep) = std::env::var_os("CNTT_TEST_KEEP_DOCUMENTS") {
        let keep = Path::new(&keep);
        for file in [&path, &pdf] {
            std::fs::copy(file, keep.join(file.file_name().unwrap())).unwrap();
        }
        let prefix = keep.join(name);
        stdout_of(
            "pdftoppm",
            &[
                "-png",
                "-r",
                "60",
                pdf.to_str().unwrap(),
                prefix.to_str().unwrap(),
            ],
        );
    }
    stdout_of("pdftotext", &["-enc", "UTF-8", pdf.to_str().unwrap(), "-"])
}

fn assert_has(text: &str, name: &str, expected: &[String]) {
    let squashed_text = squashed(text);
    // pdftotext reads a table column by column: a label and its value ("label|value") are
    // looked for one by one.
    for expected in expected {
        for part in expected.split('|') {
            assert!(
                squashed_text.contains(&squashed(part)),
                "{name}: {part:?} (of {expected:?}) is missing from\n{text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_reports_are_signable_documents_frozen_when_issued() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let dir = collector.dir.path().to_owned();
    for (file, text) in [
        ("systems.csv", SYSTEMS_CSV),
        ("profiles.csv", PROFILES_CSV),
        ("contacts.csv", CONTACTS_CSV),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
    let store = &collector.store;
    cntt_collector::admin::systems_import(store, &dir.join("systems.csv"))
        .await
        .unwrap();
    cntt_collector::admin::profiles_import(store, &dir.join("profiles.csv"))
        .await
        .unwrap();
    cntt_collector::admin::contacts_import(store, &dir.join("contacts.csv"))
        .await
        .unwrap();
    let listed = cntt_collector::admin::systems_list(store).await.unwrap();
    assert!(
        listed.contains("dakmil-portal") && listed.contains("dakmil-wan"),
        "{listed}"
    );
    // The provincial IT authority and the place of the date line, as the collector is configured.
    let config = Config::load(&collector.config_path).unwrap();
    let authority = config
        .organisation
        .current(OffsetDateTime::now_utc())
        .clone();
    let officer = collector.api_token(Role::Officer, Some("663")).await;
    let viewer = collector.api_token(Role::Viewer, None).await;
    let now = OffsetDateTime::now_utc();

    // A security incident, told by a third party; the initial report is issued when first read.
    let security = json_of(
        &collector,
        &officer,
        "/api/v1/incidents",
        Some(json!({
            "unit": "24700",
            "kind": "security",
            "severity": "critical",
            "title": "Giao diện cổng thông tin bị thay đổi trái phép",
            "description": "Trang chủ hiển thị nội dung lạ.",
            "started_at": rfc3339(now - time::Duration::hours(2)),
            "discovered_at": rfc3339(now - time::Duration::minutes(100)),
            "system": "dakmil-portal",
            "discovery": "third_party",
        })),
    )
    .await;
    let security_id = security["id"].as_str().unwrap().to_owned();
    let security_number = security["number"].as_str().unwrap().to_owned();
    let initial_docx = report(
        &collector,
        &officer,
        &security_id,
        "form=initial&format=docx",
    )
    .await;
    // The closing report exists only once the incident is closed.
    let (status, _) = send(
        &collector,
        &officer,
        &format!("/api/v1/incidents/{security_id}/report?form=closing&format=docx"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A WAN incident: service came back at `restored`, the officer resolves and closes later.
    let wan_started = now - time::Duration::hours(3);
    let restored = now - time::Duration::minutes(70);
    let wan = json_of(
        &collector,
        &officer,
        "/api/v1/incidents",
        Some(json!({
            "unit": "24700",
            "kind": "wan",
            "severity": "high",
            "title": "Mất kết nối mạng truyền số liệu chuyên dùng",
            "started_at": rfc3339(wan_started),
            "discovered_at": rfc3339(wan_started + time::Duration::minutes(2)),
            "system": "dakmil-wan",
            "discovery": "monitoring",
        })),
    )
    .await;
    let wan_id = wan["id"].as_str().unwrap().to_owned();
    let wan_initial = report(&collector, &officer, &wan_id, "form=initial&format=docx").await;

    // Both are handled and closed.
    let act = |id: &str, verb: &str| format!("/api/v1/incidents/{id}/{verb}");
    json_of(
        &collector,
        &officer,
        &act(&security_id, "acknowledge"),
        Some(json!({})),
    )
    .await;
    json_of(
        &collector,
        &officer,
        &act(&security_id, "resolve"),
        Some(json!({"resolution": "Khôi phục giao diện từ bản sao lưu"})),
    )
    .await;
    let closed = json_of(
        &collector,
        &officer,
        &act(&security_id, "close"),
        Some(json!({
            "cause": "Lỗ hổng trong trình soạn thảo của cổng thông tin bị khai thác",
            "resolution": "Khôi phục giao diện từ bản sao lưu, vá lỗ hổng, đổi mật khẩu quản trị",
            "lessons": "Cập nhật bản vá hằng tháng",
        })),
    )
    .await;
    assert_eq!(closed["state"], "closed");
    let resolved = json_of(
        &collector,
        &officer,
        &act(&wan_id, "resolve"),
        Some(json!({
            "resolution": "Nhà mạng thay bộ chuyển đổi quang",
            "restored_at": rfc3339(restored),
        })),
    )
    .await;
    let ended_at = OffsetDateTime::parse(
        resolved["ended_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        millis(ended_at),
        millis(restored),
        "the end is the stated restoration: {resolved}"
    );
    let wan_shown = json_of(
        &collector,
        &viewer,
        &format!("/api/v1/incidents/{wan_id}"),
        None,
    )
    .await;
    let due = wan_shown["closing_report_due"].as_str().unwrap().to_owned();
    assert!(
        due.starts_with(&rfc3339(restored + time::Duration::days(5))[..16]),
        "{due}"
    );
    // The unit's IT officer is reminded once, near the deadline, while the closing report is
    // not issued.
    let scheme = cntt_collector::documents::incident::Scheme::default();
    let issuer_authority = cntt_collector::documents::incident::Authority::of(&authority);
    let plan = |at: OffsetDateTime| {
        let (scheme, issuer_authority) = (scheme.clone(), issuer_authority.clone());
        async move {
            cntt_collector::documents::issue::plan_notices(
                store,
                &scheme,
                &issuer_authority,
                "",
                at,
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(plan(now).await, 0, "not yet");
    assert_eq!(plan(now + time::Duration::days(4)).await, 1);
    assert_eq!(plan(now + time::Duration::days(4)).await, 0, "written once");
    let reminders = store.notices_list(Some(&wan_id), None, 10).await.unwrap();
    let reminder = reminders
        .iter()
        .find(|notice| notice.kind == "closing_report_reminder")
        .unwrap();
    assert_eq!(reminder.address, "an.nv@dakmil.gov.vn");
    assert!(
        reminder
            .body_text
            .contains(&time_text(millis(restored + time::Duration::days(5)))),
        "{}",
        reminder.body_text
    );
    let wan_closed = json_of(
        &collector,
        &officer,
        &act(&wan_id, "close"),
        Some(json!({
            "cause": "Bộ chuyển đổi quang tại điểm đầu cuối bị hỏng",
            "resolution": "Nhà mạng thay bộ chuyển đổi quang",
            "lessons": "Dự phòng đường truyền thứ hai",
        })),
    )
    .await;
    let closed_at = wan_closed["closed_at"].as_str().unwrap().to_owned();
    assert_ne!(
        closed_at,
        wan_closed["ended_at"].as_str().unwrap(),
        "closure is not the end"
    );
    assert_eq!(
        wan_closed["duration_seconds"].as_i64(),
        Some((restored - wan_started).whole_seconds()),
        "the end is the restoration"
    );
    let closed_at =
        OffsetDateTime::parse(&closed_at, &time::format_description::well_known::Rfc3339).unwrap();

    assert_eq!(
        plan(now + time::Duration::days(4)).await,
        0,
        "no reminder once the closing report is issued"
    );
    // The initial reports read after closing are the ones issued before, byte for byte.
    assert_eq!(
        report(
            &collector,
            &viewer,
            &security_id,
            "form=initial&format=docx"
        )
        .await,
        initial_docx
    );
    assert_eq!(
        report(&collector, &viewer, &wan_id, "form=initial&format=docx").await,
        wan_initial
    );
    let security_closing = report(
        &collector,
        &viewer,
        &security_id,
        "form=closing&format=docx",
    )
    .await;
    let wan_closing = report(&collector, &viewer, &wan_id, "form=closing&format=docx").await;

    // Read back as a person reads them.
    let work = tempfile::tempdir().unwrap();
    let texts = [
        ("bm03-an-toan-thong-tin", &initial_docx),
        ("bm04-an-toan-thong-tin", &security_closing),
        ("bm03-wan", &wan_initial),
        ("bm04-wan", &wan_closing),
    ]
    .map(|(name, docx)| (name, read_back(work.path(), name, docx)));
    let issued_on = |text: &str| {
        // Every report is dated the day it was issued, in Vietnam.
        let today = OffsetDateTime::now_utc()
            .to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap())
            .date();
        assert!(
            text.contains(&format!("ngày {:02} tháng", today.day())),
            "{text}"
        );
    };
    let common = [
        "ỦY BAN NHÂN DÂN",
        "THỊ TRẤN ĐẮK MIL",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        &format!("{}, ngày", authority.place),
        "Kính gửi:",
        &format!("- {} {};", authority.name, authority.province),
        &format!("- Công an {}.", authority.province),
        "Tên cơ quan, tổ chức báo cáo|UBND thị trấn Đắk Mil",
        "Số 1 đường Lê Duẩn, thị trấn Đắk Mil",
        "0261 3 741 234",
        "ubnd@dakmil.gov.vn",
        "Nguyễn Văn An",
        "Cán bộ chuyên trách CNTT",
        "0912 345 678",
        "an.nv@dakmil.gov.vn",
        "Nơi nhận:",
        "- Như trên;",
        "- Lưu: VT.",
        "THỦ TRƯỞNG ĐƠN VỊ",
        "(Ký, ghi rõ họ tên, đóng dấu)",
    ]
    .map(str::to_owned);
    for (name, text) in &texts {
        assert_has(text, name, &common);
        issued_on(text);
    }
    let [(_, security_bm03), (_, security_bm04), (_, wan_bm03), (_, wan_bm04)] = &texts;
    let wan_number = wan["number"].as_str().unwrap();
    assert_has(security_bm03, "BM03 security", &[
        "Số: 01/BC-UBND".to_owned(),
        "BÁO CÁO BAN ĐẦU".to_owned(),
        "Biểu mẫu 03".to_owned(),
        format!("Sự cố {security_number}"),
        "Tên hệ thống thông tin|Cổng thông tin điện tử thị trấn Đắk Mil".to_owned(),
        "Đơn vị vận hành|UBND thị trấn Đắk Mil".to_owned(),
        "Cơ quan chủ quản|Ủy ban nhân dân huyện Đắk Mil".to_owned(),
        "Cấp độ 2 (Nghị định số 85/2016/NĐ-CP)".to_owned(),
        "Mục đích sử dụng|Cung cấp thông tin cho người dân".to_owned(),
        "Đơn vị cung cấp dịch vụ kết nối|VNPT Đắk Nông".to_owned(),
        "Trung tâm Giám sát an toàn không gian mạng".to_owned(),
        "Mô tả sơ bộ về sự cố|Giao diện cổng thông tin bị thay đổi trái phép. Trang chủ hiển thị nội dung lạ.".to_owned(),
        format!("Ngày, giờ phát hiện sự cố|{}", time_text(millis(now - time::Duration::minutes(100)))),
        "☐ Qua hệ thống giám sát, phát hiện xâm nhập (IDS)".to_owned(),
        "☐ Qua xem xét nhật ký hệ thống".to_owned(),
        "☒ Được tổ chức, cá nhân bên ngoài thông báo".to_owned(),
        "☐ Cán bộ báo cáo hoặc cách khác".to_owned(),
        "Tình trạng hiện tại|Chưa xử lý xong".to_owned(),
        "Đã thông báo sự cố cho".to_owned(),
        "Hệ điều hành, phiên bản|Ubuntu Server 22.04 LTS".to_owned(),
        "Các dịch vụ đang chạy|HTTPS (nginx 1.24), SSH".to_owned(),
        "Các biện pháp bảo đảm an toàn đã triển khai|……".to_owned(),
        "Địa chỉ IP công khai|203.0.113.10".to_owned(),
        "Tên miền|dakmil.gov.vn".to_owned(),
        "Đề nghị giữ bí mật thông tin báo cáo|☐ Có ☐ Không".to_owned(),
        "Kiến nghị, đề xuất hỗ trợ".to_owned(),
        "Thời gian báo cáo".to_owned(),
    ]);
    assert!(
        !squashed(security_bm03).contains(&squashed("Thời gian gián đoạn")),
        "no duration for a security incident:\n{security_bm03}"
    );
    assert_has(
        security_bm04,
        "BM04 security",
        &[
            "Số: 03/BC-UBND".to_owned(),
            "BÁO CÁO KẾT THÚC".to_owned(),
            "Biểu mẫu 04".to_owned(),
            "Số báo cáo ban đầu|01/BC-UBND".to_owned(),
            "Ngày báo cáo ban đầu".to_owned(),
            "Cấp độ 2 (Nghị định số 85/2016/NĐ-CP)".to_owned(),
            "Lỗ hổng trong trình soạn thảo của cổng thông tin bị khai thác".to_owned(),
            "Khôi phục giao diện từ bản sao lưu, vá lỗ hổng, đổi mật khẩu quản trị".to_owned(),
            "Cập nhật bản vá hằng tháng".to_owned(),
            "Tài liệu kèm theo".to_owned(),
            "Hạn gửi báo cáo kết thúc".to_owned(),
        ],
    );
    assert!(
        !squashed(security_bm04).contains(&squashed("Thời gian gián đoạn")),
        "{security_bm04}"
    );
    assert_has(
        wan_bm03,
        "BM03 WAN",
        &[
            "Số: 02/BC-UBND".to_owned(),
            format!("Sự cố {wan_number}"),
            "Mạng truyền số liệu chuyên dùng thị trấn Đắk Mil".to_owned(),
            "Cấp độ 1 (Nghị định số 85/2016/NĐ-CP)".to_owned(),
            "Viettel Đắk Nông".to_owned(),
            "☒ Qua hệ thống giám sát, phát hiện xâm nhập (IDS)".to_owned(),
            "Thời điểm kết thúc (khôi phục hoạt động)|Chưa kết thúc".to_owned(),
        ],
    );
    assert_has(
        wan_bm04,
        "BM04 WAN",
        &[
            "Số: 04/BC-UBND".to_owned(),
            "Số báo cáo ban đầu|02/BC-UBND".to_owned(),
            format!("Thời điểm bắt đầu|{}", time_text(millis(wan_started))),
            format!(
                "Thời điểm kết thúc (khôi phục hoạt động)|{}",
                time_text(millis(restored))
            ),
            "Thời gian gián đoạn|1 giờ 50 phút".to_owned(),
            format!(
                "Thời điểm kết thúc ứng phó|{}",
                time_text(millis(closed_at))
            ),
            format!(
                "Hạn gửi báo cáo kết thúc|{}",
                time_text(millis(restored + time::Duration::days(5)))
            ),
            "Bộ chuyển đổi quang tại điểm đầu cuối bị hỏng".to_owned(),
            "Dự phòng đường truyền thứ hai".to_owned(),
        ],
    );

    // The end is the restoration, not the closure, label beside value in the text form.
    let wan_text =
        String::from_utf8(report(&collector, &viewer, &wan_id, "form=closing&format=text").await)
            .unwrap();
    for expected in [
        format!(
            "Thời điểm kết thúc (khôi phục hoạt động): {}",
            time_text(millis(restored))
        ),
        "Thời gian gián đoạn: 1 giờ 50 phút".to_owned(),
        format!(
            "Thời điểm kết thúc ứng phó: {}",
            time_text(millis(closed_at))
        ),
    ] {
        assert!(wan_text.contains(&expected), "{expected:?} in\n{wan_text}");
    }

    // A correction is a new version under the same number; the first stays readable as issued.
    let path = format!("/api/v1/incidents/{security_id}/report/reissue");
    let body = json!({"form": "initial", "reason": "Bổ sung tình trạng xử lý"});
    assert_eq!(
        send(&collector, &viewer, &path, Some(body.clone())).await.0,
        StatusCode::FORBIDDEN
    );
    let other = collector.api_token(Role::Officer, Some("664")).await;
    assert_eq!(
        send(&collector, &other, &path, Some(body.clone())).await.0,
        StatusCode::FORBIDDEN
    );
    let reissued = json_of(&collector, &officer, &path, Some(body)).await;
    assert_eq!(
        (reissued["version"].as_u64(), reissued["number"].as_str()),
        (Some(2), Some("01/BC-UBND"))
    );
    assert_eq!(
        report(
            &collector,
            &viewer,
            &security_id,
            "form=initial&format=docx&version=1"
        )
        .await,
        initial_docx
    );
    let corrected = String::from_utf8(
        report(
            &collector,
            &viewer,
            &security_id,
            "form=initial&format=text",
        )
        .await,
    )
    .unwrap();
    assert!(
        corrected.contains("Bản đính chính lần 1: Bổ sung tình trạng xử lý"),
        "{corrected}"
    );
    assert!(
        corrected.contains("Tình trạng hiện tại: Đã xử lý xong"),
        "{corrected}"
    );
    let html = String::from_utf8(
        report(
            &collector,
            &viewer,
            &security_id,
            "form=closing&format=html",
        )
        .await,
    )
    .unwrap();
    assert!(
        html.contains("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM") && html.contains("Số báo cáo ban đầu"),
        "{html}"
    );
    let audit = store
        .audit_list(&cntt_collector::store::AuditFilter {
            action: Some("incident.report_reissue".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    let (status, _) = send(
        &collector,
        &viewer,
        &format!("/api/v1/incidents/{security_id}/report?form=initial&version=9"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
