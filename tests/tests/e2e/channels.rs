//! Zalo and SMS as notification channels (issue 17), beside e-mail: a real SMTP server process, a
//! local bot API speaking the Zalo Bot Platform's shapes (`e2e::zalo::ZaloBot`) and a local SMS
//! gateway (`e2e::sms::SmsGateway`). An incident reaches each contact on every channel it chose,
//! once, in order, as short Vietnamese texts with the incident's link; while the bot API fails
//! the notices wait and arrive later, once, in order, and the channel alarm goes out by e-mail;
//! quiet hours hold what is not urgent until a critical incident comes.

use std::collections::BTreeMap;
use std::time::Duration;

use cntt_collector::domain::auth::Role;
use e2e::mail::SmtpServer;
use e2e::sms::SmsGateway;
use e2e::zalo::ZaloBot;
use e2e::{eventually, spawn_collector_with, test_db, CollectorOptions, Db, TestCollector};
use serde_json::{json, Value};

use super::notify::{act, smtp_sink};
use super::WAIT;

const TOKEN: &str = "1459232241454765289:bot-bi-mat-cua-tinh";
const SMS_KEY: &str = "khoa-cong-sms-bi-mat";
const CONSOLE: &str = "https://cntt.example.gov.vn";

/// An chose nothing (every channel he has an address for: e-mail, Zalo, SMS); Bình chose e-mail
/// and Zalo; the Sở's on-duty officer only e-mail, where channel alarms reach him.
const CONTACTS: &str = "unit_code,name,role,position,phone,email,webhook,zalo_id,channels
24700,Nguyễn Văn An,it_officer,Cán bộ chuyên trách CNTT,0912 345 678,an@dakmil.daknong.gov.vn,,zalo-an,
663,Lê Thị Bình,leadership,Phó Chủ tịch UBND huyện,0987 654 321,binh@dakmil.daknong.gov.vn,,zalo-binh,email;zalo
67.S.TTTT,Trần Văn Cường,so_on_duty,Trực ứng cứu sự cố,0905 111 222,truc@stttt.daknong.gov.vn,,zalo-cuong,email
";

const RULES: &str = "unit_code,kinds,min_severity,role,after
,*,low,it_officer,0s
,*,high,leadership,0s
";

/// The three channels a test watches.
struct Channels {
    smtp: SmtpServer,
    zalo: ZaloBot,
    sms: SmsGateway,
}

impl Channels {
    async fn start() -> Channels {
        Channels {
            smtp: smtp_sink().await,
            zalo: ZaloBot::start(TOKEN).await,
            sms: SmsGateway::start("X-Api-Key", SMS_KEY).await,
        }
    }
}

/// A collector sending to `channels`, contacts and rules imported; its secret files live in the
/// folder returned.
/// Periodic report reminders are off: their due dates follow the calendar, not the test.
async fn collector_with(
    db: &e2e::TestDb,
    channels: &Channels,
    contacts: &str,
) -> (TestCollector, tempfile::TempDir) {
    let secrets = tempfile::tempdir().expect("temporary folder");
    let file = |name: &str, value: &str| {
        let path = secrets.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        path.display().to_string()
    };
    let config = format!(
        "[notify]\ngrace = \"1s\"\nattempt_timeout = \"2s\"\nevaluate_every = \"100ms\"\nreminder_every = \"0s\"\n\
         channel_alarm_after = \"2s\"\nretry_first = \"200ms\"\nretry_max = \"1s\"\nconsole_url = \"{CONSOLE}\"\n\
         [notify.email]\nhost = \"{}\"\nport = {}\ntls = \"starttls\"\nusername = \"giamsat\"\npassword_file = \"{}\"\n\
         from = \"Giám sát CNTT <giamsat@stttt.daknong.gov.vn>\"\nca_file = \"{}\"\n\
         [notify.zalo]\nbase_url = \"{}\"\ntoken_file = \"{}\"\n\
         [notify.sms]\nurl = \"{}\"\ncontent_type = \"application/x-www-form-urlencoded\"\n\
         body = \"phone={{{{phone}}}}&message={{{{text}}}}&ref={{{{notice}}}}\"\n\
         auth_header = \"X-Api-Key\"\nauth_file = \"{}\"\nsuccess_json_field = \"/status\"\nsuccess_json_equals = \"0\"\n\
         [reports]\nreminders = []\noverdue_notice = false\n",
        channels.smtp.host(),
        channels.smtp.port(),
        file("smtp-password", "mat-khau-smtp"),
        channels.smtp.ca_pem().expect("the sink has TLS").display(),
        channels.zalo.base_url(),
        file("zalo-token", TOKEN),
        channels.sms.url(),
        file("sms-auth", SMS_KEY),
    );
    let options = CollectorOptions {
        extra_config: config,
        ..CollectorOptions::default()
    };
    let collector = spawn_collector_with(db, &options).await;
    import_contacts(&collector, contacts).await;
    let rules = collector.dir.path().join("rules.csv");
    std::fs::write(&rules, RULES).unwrap();
    cntt_collector::admin::notify_rules_import(&collector.store, &rules)
        .await
        .expect("importing rules");
    (collector, secrets)
}

async fn import_contacts(collector: &TestCollector, contacts: &str) {
    let path = collector.dir.path().join("contacts.csv");
    std::fs::write(&path, contacts).unwrap();
    cntt_collector::admin::contacts_import(&collector.store, &path)
        .await
        .expect("importing contacts");
}

/// Files an incident at commune 24700 and returns its id and number.
async fn file(
    collector: &TestCollector,
    token: &str,
    severity: &str,
    title: &str,
) -> (String, String) {
    let response = collector
        .client()
        .post(format!("{}/api/v1/incidents", collector.base_url))
        .bearer_auth(token)
        .json(&json!({"unit": "24700", "kind": "security", "severity": severity, "title": title}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let filed: Value = response.json().await.unwrap();
    (
        filed["id"].as_str().unwrap().to_owned(),
        filed["number"].as_str().unwrap().to_owned(),
    )
}

/// The texts each recipient got, in order of arrival.
fn by_recipient(
    messages: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (to, text) in messages {
        by.entry(to).or_default().push(text);
    }
    by
}

both_databases! {
    async fn an_incident_reaches_every_channel_once_in_order_and_survives_a_failing_bot(db: Db) {
        let db = test_db(db).await;
        let channels = Channels::start().await;
        let (collector, _secrets) = collector_with(&db, &channels, CONTACTS).await;
        let admin = collector.api_token(Role::Admin, None).await;
        let (id, number) = file(&collector, &admin, "high", "Tấn công dò mật khẩu vào cổng thông tin").await;
        let link = format!("{CONSOLE}/incidents/{id}");

        // Opening, after the grace period: An on e-mail, Zalo and SMS; Bình on e-mail and Zalo.
        let mails = channels.smtp.wait_for(2, WAIT).await;
        let mut to: Vec<String> = mails.iter().flat_map(|mail| mail.rcpt_tos.clone()).collect();
        to.sort();
        assert_eq!(to, ["an@dakmil.daknong.gov.vn", "binh@dakmil.daknong.gov.vn"], "{:#?}", mails.iter().map(|mail| &mail.subject).collect::<Vec<_>>());
        let zalo = channels.zalo.wait_for(2, WAIT).await;
        let mut chats: Vec<&str> = zalo.iter().map(|(chat, _)| chat.as_str()).collect();
        chats.sort_unstable();
        assert_eq!(chats, ["zalo-an", "zalo-binh"]);
        for (_, text) in &zalo {
            for line in [
                format!("[TBSC] Sự cố {number}: Tấn công dò mật khẩu vào cổng thông tin\n"),
                format!("Số hiệu: {number}\n"),
                "Đơn vị: Thị trấn Đắk Mil\n".to_owned(),
                "Loại sự cố: Sự cố an toàn thông tin\n".to_owned(),
                "Mức độ: Cao\n".to_owned(),
                "Tình trạng: Đang xảy ra, chưa xử lý xong\n".to_owned(),
            ] {
                assert!(text.contains(&line), "{line:?} in\n{text}");
            }
            assert!(text.ends_with(&format!("\nChi tiết: {link}")), "{text}");
            assert!(text.chars().count() <= e2e::zalo::MAX_CHARS);
        }
        assert!(channels.zalo.requests().iter().all(|request| request.path == format!("/bot{TOKEN}/sendMessage")));
        let sms = channels.sms.wait_for(1, WAIT).await;
        assert_eq!(sms[0].phone, "0912345678");
        assert_eq!(sms[0].content_type, "application/x-www-form-urlencoded");
        let message = &sms[0].message;
        assert!(message.starts_with(&format!("[TBSC] Sự cố {number}, mức cao, tại Thị trấn Đắk Mil, từ ")), "{message}");
        assert!(message.ends_with(&format!(": Tấn công dò mật khẩu vào cổng thông tin. Chi tiết: {link}")), "{message}");
        assert!(message.chars().count() <= 268, "{message}");
        let sms_notice = collector.store.notices_list(Some(&id), None, 20).await.unwrap()
            .into_iter().find(|notice| notice.channel == "sms").expect("the SMS notice");
        assert_eq!(sms[0].reference, sms_notice.id, "the notice's id is the gateway's request id");

        // Resolved: everyone told hears of it on each channel, after the opening.
        act(&collector, &admin, &id, "resolve", json!({"resolution": "Chặn địa chỉ tấn công"})).await;
        channels.smtp.wait_for(4, WAIT).await;
        channels.zalo.wait_for(4, WAIT).await;
        channels.sms.wait_for(2, WAIT).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(channels.smtp.messages().len(), 4, "nothing more, nothing twice");
        assert_eq!(channels.zalo.delivered().len(), 4);
        assert_eq!(channels.sms.delivered().len(), 2);
        for (chat, texts) in by_recipient(channels.zalo.delivered()) {
            assert!(texts[0].starts_with(&format!("[TBSC] Sự cố {number}:")), "{chat}: {texts:?}");
            assert!(texts[1].starts_with(&format!("[TBSC] Đã khắc phục sự cố {number} sau")), "{chat}: {texts:?}");
        }
        assert!(channels.sms.delivered()[1].message.starts_with(&format!("[TBSC] Đã khắc phục sự cố {number} sau")));

        // The bot API fails while three incidents are filed: e-mail and SMS carry on, the Zalo
        // notices wait, and after 2 s the Sở's on-duty officer is told by e-mail.
        channels.zalo.set_down(true);
        let mut numbers = Vec::new();
        for n in 1..=3 {
            let (_, number) = file(&collector, &admin, "high", &format!("Sự cố thứ {n} khi Zalo ngừng")).await;
            numbers.push(number);
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
        let alarm = eventually(WAIT, "the channel alarm by e-mail", || {
            let alarm = channels.smtp.messages().into_iter().find(|mail| mail.rcpt_tos == ["truc@stttt.daknong.gov.vn"]);
            async move { alarm }
        })
        .await;
        let subject = alarm.subject.as_deref().unwrap();
        assert!(subject.starts_with("[TBSC] Kênh thông báo Zalo không gửi được từ"), "{subject}");
        let text = alarm.text.as_deref().unwrap();
        assert!(text.contains("Lỗi gần nhất: the Zalo bot API answered 503, error_code 503: Service Unavailable"), "{text}");
        assert!(!text.contains(TOKEN) && !text.contains("bot-bi-mat"), "the token is never shown: {text}");
        channels.sms.wait_for(5, WAIT).await;
        let metrics_text = collector.metrics(&admin).await;
        assert!(metrics_text.contains("cntt_collector_notify_channel_up{channel=\"zalo\"} 0"), "{metrics_text}");
        assert!(metrics_text.contains("cntt_collector_notify_channel_up{channel=\"sms\"} 1"), "{metrics_text}");
        // Once the last SMS is recorded as sent, only the Zalo notices wait.
        let waiting = eventually(WAIT, "only Zalo notices pending", || {
            let store = collector.store.clone();
            async move {
                let waiting = store.notices_list(None, Some("pending"), 100).await.unwrap();
                waiting.iter().all(|notice| notice.channel == "zalo").then_some(waiting)
            }
        })
        .await;
        assert_eq!(waiting.len(), 6, "three openings to An and Bình: {waiting:#?}");
        assert!(
            waiting.iter().any(|notice| notice.last_error.as_deref().is_some_and(|error| error.contains("503"))),
            "{waiting:#?}"
        );
        assert!(
            waiting.iter().all(|notice| !notice.last_error.as_deref().unwrap_or_default().contains("bot-bi-mat")),
            "the token is never stored: {waiting:#?}"
        );

        // Back up: every Zalo notice arrives, once, in the order written, per recipient.
        channels.zalo.set_down(false);
        channels.zalo.wait_for(10, WAIT).await;
        eventually(WAIT, "every notice sent", || {
            let store = collector.store.clone();
            async move {
                let all = store.notices_list(None, None, 100).await.unwrap();
                all.iter().all(|notice| notice.state == "sent").then_some(())
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let delivered = channels.zalo.delivered();
        assert_eq!(delivered.len(), 10, "nothing twice: {delivered:#?}");
        for (chat, texts) in by_recipient(delivered) {
            let expected: Vec<String> = std::iter::once(format!("[TBSC] Sự cố {number}:"))
                .chain(std::iter::once(format!("[TBSC] Đã khắc phục sự cố {number}")))
                .chain(numbers.iter().map(|later| format!("[TBSC] Sự cố {later}:")))
                .collect();
            assert_eq!(texts.len(), expected.len(), "{chat}: {texts:#?}");
            for (text, start) in texts.iter().zip(&expected) {
                assert!(text.starts_with(start), "{chat}: {start:?} expected, got {texts:#?}");
            }
        }
        assert_eq!(channels.sms.delivered().len(), 5);
        assert_eq!(channels.smtp.messages().len(), 4 + 6 + 1, "openings by e-mail and one alarm");
        let metrics_text = collector.metrics(&admin).await;
        assert!(metrics_text.contains("cntt_collector_notify_channel_up{channel=\"zalo\"} 1"), "{metrics_text}");
        assert!(metrics_text.contains("cntt_collector_notice_attempts_total{channel=\"zalo\",result=\"sent\"} 10"), "{metrics_text}");
        assert!(metrics_text.contains("cntt_collector_notice_attempts_total{channel=\"sms\",result=\"sent\"} 5"), "{metrics_text}");
        collector.stop().await;
        db.drop_database().await;
    }
}

/// Quiet hours of two hours around now, Vietnam time.
fn quiet_hours_around_now() -> String {
    let now =
        time::OffsetDateTime::now_utc().to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap());
    let start = now.hour();
    format!("{start:02}:00-{:02}:00", (start + 2) % 24)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_hold_zalo_and_sms_until_a_critical_incident_comes() {
    let db = test_db(Db::Sqlite).await;
    let channels = Channels::start().await;
    let (collector, _secrets) = collector_with(&db, &channels, CONTACTS).await;
    let admin = collector.api_token(Role::Admin, None).await;
    let an = collector
        .store
        .contacts_list()
        .await
        .unwrap()
        .into_iter()
        .find(|contact| contact.name == "Nguyễn Văn An")
        .unwrap();
    // Set from the command line; a later import of a file without the column keeps it.
    let set = cntt_collector::admin::ContactSet {
        quiet_hours: Some(quiet_hours_around_now()),
        ..Default::default()
    };
    let said = cntt_collector::admin::contacts_set(&collector.store, an.id, &set)
        .await
        .unwrap();
    assert!(
        said.contains(&format!("quiet hours {}", quiet_hours_around_now())),
        "{said}"
    );
    import_contacts(&collector, CONTACTS).await;

    // A high incident: the e-mail goes, Zalo and SMS wait for the end of the quiet hours.
    let (quiet_id, quiet_number) =
        file(&collector, &admin, "high", "Máy chủ thư điện tử chậm").await;
    let mails = channels.smtp.wait_for(2, WAIT).await;
    assert!(mails
        .iter()
        .any(|mail| mail.rcpt_tos == ["an@dakmil.daknong.gov.vn"]));
    let zalo = channels.zalo.wait_for(1, WAIT).await;
    assert_eq!(
        zalo.iter()
            .map(|(chat, _)| chat.as_str())
            .collect::<Vec<_>>(),
        ["zalo-binh"],
        "Bình has no quiet hours"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(channels.sms.requests().is_empty());
    let held = collector
        .store
        .notices_list(Some(&quiet_id), Some("pending"), 10)
        .await
        .unwrap();
    let mut held_channels: Vec<&str> = held.iter().map(|notice| notice.channel.as_str()).collect();
    held_channels.sort_unstable();
    assert_eq!(held_channels, ["sms", "zalo"]);
    let now_ms =
        i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap();
    assert!(
        held.iter()
            .all(|notice| notice.next_attempt_at > now_ms + 30 * 60_000),
        "{held:#?}"
    );

    // A critical incident goes at once, and what waited goes first.
    let (_, critical_number) = file(
        &collector,
        &admin,
        "critical",
        "Mất dữ liệu cổng dịch vụ công",
    )
    .await;
    let sms = channels.sms.wait_for(2, WAIT).await;
    assert!(
        sms[0].message.contains(&format!("Sự cố {quiet_number},")),
        "{sms:#?}"
    );
    assert!(
        sms[1]
            .message
            .contains(&format!("Sự cố {critical_number},")),
        "{sms:#?}"
    );
    channels.zalo.wait_for(4, WAIT).await;
    let to_an: Vec<String> = by_recipient(channels.zalo.delivered())
        .remove("zalo-an")
        .unwrap();
    assert_eq!(to_an.len(), 2);
    assert!(
        to_an[0].starts_with(&format!("[TBSC] Sự cố {quiet_number}:")),
        "{to_an:#?}"
    );
    assert!(
        to_an[1].starts_with(&format!("[TBSC] Sự cố {critical_number}:")),
        "{to_an:#?}"
    );
    collector.stop().await;
}
