//! Notices to leadership through a real SMTP server process (aiosmtpd, STARTTLS and AUTH) and a
//! real webhook receiver (issue 5): opening, escalation, resolution and closing reach the right
//! people in Vietnamese; flaps and grouped outages do not spam; nothing is lost or doubled when the
//! SMTP server is down or a collector is killed.

use std::collections::BTreeSet;
use std::time::Duration;

use cntt_collector::domain::auth::Role;
use cntt_common::wire::{
    Event, Incident, IncidentKind, IncidentPhase, IncidentSource, Payload, Severity,
};
use cntt_common::Secret;
use e2e::mail::{SmtpCredentials, SmtpOptions, SmtpServer, SmtpTls};
use e2e::webhook::WebhookReceiver;
use e2e::{
    eventually, heartbeat_event, spawn_collector_with, test_db, CollectorOptions, Db, TestCollector,
};
use serde_json::{json, Value};

use super::WAIT;

const CONTACTS: &str = "unit_code,name,role,position,phone,email,webhook
24700,Nguyễn Văn An,it_officer,Cán bộ chuyên trách CNTT,0912 345 678,an@dakmil.daknong.gov.vn,
663,Hoàng Văn Em,it_officer,Cán bộ chuyên trách CNTT huyện,,em@dakmil.daknong.gov.vn,
663,Lê Thị Bình,leadership,Phó Chủ tịch UBND huyện,,binh@dakmil.daknong.gov.vn,
67.S.TTTT,Trần Văn Cường,so_on_duty,Trực ứng cứu sự cố,,truc@stttt.daknong.gov.vn,truc
67.S.TTTT,Phạm Thị Dung,so_leadership,Phó Giám đốc Sở,,dung@stttt.daknong.gov.vn,
";

/// Escalation after 3 s stands for the 30 minutes of the defaults.
const RULES: &str = "unit_code,kinds,min_severity,role,after
,*,low,it_officer,0s
,*,high,leadership,0s
,*,medium,so_on_duty,3s
";

const SECRET: &str = "bi-mat-chung-cua-webhook";

/// A collector whose notices go to `smtp` and `webhook`, with contacts and rules imported.
async fn collector_with_notices(
    db: &e2e::TestDb,
    smtp: &SmtpServer,
    webhook: &WebhookReceiver,
    grace: &str,
    extra: &str,
) -> (TestCollector, tempfile::TempDir) {
    let setup = Setup {
        grace,
        reminder_every: "0s",
        alarm_after: "10m",
        rules: RULES,
    };
    collector_with(db, smtp, webhook, &setup, extra).await
}

/// What a notification test sets: timings (as config text) and routing rules (CSV).
pub(super) struct Setup<'a> {
    pub(super) grace: &'a str,
    pub(super) reminder_every: &'a str,
    pub(super) alarm_after: &'a str,
    pub(super) rules: &'a str,
}

/// [`collector_with_notices`] with the timings and the routing rules chosen. Periodic report
/// reminders are off: their due dates follow the calendar, and in the days before one (e.g. 5 to
/// 10 December) they arrived among the incident notices these tests count.
pub(super) async fn collector_with(
    db: &e2e::TestDb,
    smtp: &SmtpServer,
    webhook: &WebhookReceiver,
    setup: &Setup<'_>,
    extra: &str,
) -> (TestCollector, tempfile::TempDir) {
    let secrets = tempfile::tempdir().expect("temporary folder");
    let password = secrets.path().join("smtp-password");
    std::fs::write(&password, "mat-khau-smtp\n").unwrap();
    let secret = secrets.path().join("webhook-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let config = format!(
        "[notify]\ngrace = \"{}\"\nattempt_timeout = \"2s\"\nevaluate_every = \"100ms\"\nreminder_every = \"{}\"\nchannel_alarm_after = \"{}\"\ndigest_at = \"00:00\"\nretry_first = \"200ms\"\nretry_max = \"1s\"\n\
         [notify.email]\nhost = \"{}\"\nport = {}\ntls = \"starttls\"\nusername = \"giamsat\"\npassword_file = \"{}\"\n\
         from = \"Giám sát CNTT <giamsat@stttt.daknong.gov.vn>\"\nca_file = \"{}\"\n\
         [[notify.webhook]]\nname = \"truc\"\nurl = \"{}\"\nsecret_file = \"{}\"\n\
         template = '{{\"text\": \"{{{{subject}}}}\", \"body\": \"{{{{text}}}}\", \"notice\": \"{{{{notice}}}}\"}}'\n\
         [reports]\nreminders = []\noverdue_notice = false\n{extra}",
        setup.grace,
        setup.reminder_every,
        setup.alarm_after,
        smtp.host(),
        smtp.port(),
        password.display(),
        smtp.ca_pem().expect("the sink has TLS").display(),
        webhook.url(),
        secret.display(),
    );
    let options = CollectorOptions {
        extra_config: config,
        ..CollectorOptions::default()
    };
    let collector = spawn_collector_with(db, &options).await;
    let contacts = collector.dir.path().join("contacts.csv");
    std::fs::write(&contacts, CONTACTS).unwrap();
    cntt_collector::admin::contacts_import(&collector.store, &contacts)
        .await
        .expect("importing contacts");
    // Empty rules: none imported, so the default rules apply.
    if !setup.rules.is_empty() {
        let rules = collector.dir.path().join("rules.csv");
        std::fs::write(&rules, setup.rules).unwrap();
        cntt_collector::admin::notify_rules_import(&collector.store, &rules)
            .await
            .expect("importing rules");
    }
    (collector, secrets)
}

/// The SMTP sink notification tests send to: STARTTLS and AUTH, as a government mail server.
pub(super) async fn smtp_sink() -> SmtpServer {
    SmtpServer::start(SmtpOptions {
        tls: SmtpTls::StartTls,
        auth: Some(SmtpCredentials {
            user: "giamsat".into(),
            password: Secret::new("mat-khau-smtp"),
        }),
        fail_first: 0,
    })
    .await
}

async fn file_incident(collector: &TestCollector, token: &str, title: &str) -> Value {
    let response = collector
        .client()
        .post(format!("{}/api/v1/incidents", collector.base_url))
        .bearer_auth(token)
        .json(
            &json!({"unit": "24700", "kind": "security", "severity": "high", "title": title,
                      "systems_affected": ["Cổng thông tin điện tử"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    response.json().await.unwrap()
}

/// `POST /api/v1/incidents/{id}/{action}` with `body`, which must succeed.
pub(super) async fn act(
    collector: &TestCollector,
    token: &str,
    id: &str,
    action: &str,
    body: Value,
) {
    let response = collector
        .client()
        .post(format!(
            "{}/api/v1/incidents/{id}/{action}",
            collector.base_url
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{action}: {}",
        response.status()
    );
}

pub(super) fn recipients(mails: &[e2e::mail::ReceivedMail]) -> BTreeSet<String> {
    mails
        .iter()
        .flat_map(|mail| mail.rcpt_tos.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_is_announced_escalated_resolved_and_closed_by_email_and_webhook() {
    let db = test_db(Db::Sqlite).await;
    let smtp = smtp_sink().await;
    let webhook = WebhookReceiver::start().await;
    let (collector, _secrets) = collector_with_notices(&db, &smtp, &webhook, "1s", "").await;
    let admin = collector.api_token(Role::Admin, None).await;
    let filed = file_incident(
        &collector,
        &admin,
        "Tấn công dò mật khẩu vào cổng thông tin",
    )
    .await;
    let id = filed["id"].as_str().unwrap().to_owned();
    let number = filed["number"].as_str().unwrap().to_owned();

    // Opening, after the grace period: the commune's officer, and the district's leader (the
    // commune has none), each once, by authenticated STARTTLS.
    let opening = smtp.wait_for(2, WAIT).await;
    assert_eq!(
        recipients(&opening),
        BTreeSet::from([
            "an@dakmil.daknong.gov.vn".into(),
            "binh@dakmil.daknong.gov.vn".into()
        ])
    );
    for mail in &opening {
        assert!(
            mail.tls && mail.auth_user.as_deref() == Some("giamsat"),
            "{mail:?}"
        );
        assert_eq!(
            mail.subject.as_deref(),
            Some(
                format!("[TBSC] Sự cố {number}: Tấn công dò mật khẩu vào cổng thông tin").as_str()
            )
        );
        let text = mail.text.as_deref().unwrap();
        for line in [
            "THÔNG BÁO SỰ CỐ (BÁO CÁO BAN ĐẦU)",
            "Đơn vị:                Thị trấn Đắk Mil",
            "Người liên hệ:         Nguyễn Văn An, Cán bộ chuyên trách CNTT, 0912 345 678, an@dakmil.daknong.gov.vn",
            "Loại sự cố:            Sự cố an toàn thông tin",
            "Mức độ:                Cao",
            "Hệ thống bị ảnh hưởng: Cổng thông tin điện tử",
            "Cách phát hiện:        Cán bộ báo cáo",
            "Đã thông báo cho:      Nguyễn Văn An (Cán bộ chuyên trách CNTT); Lê Thị Bình (Lãnh đạo đơn vị)",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        assert!(mail
            .html
            .as_deref()
            .unwrap()
            .contains("<th align=\"left\" valign=\"top\">Mức độ</th><td>Cao</td>"));
    }

    // Still open after the escalation delay: the Sở's on-duty officer, by email and signed webhook.
    let escalation = smtp.wait_for(3, WAIT).await;
    assert_eq!(escalation[2].rcpt_tos, ["truc@stttt.daknong.gov.vn"]);
    assert!(escalation[2]
        .subject
        .as_deref()
        .unwrap()
        .contains("chưa khắc phục sau"));
    let posted = webhook.wait_for(1, WAIT).await;
    let body = &posted[0].body;
    assert_eq!(
        posted[0].header("x-cntt-signature"),
        Some(cntt_collector::jobs::notify::deliver::signature(SECRET, body).as_str()),
        "signed with the shared secret"
    );
    assert!(posted[0].json()["text"]
        .as_str()
        .unwrap()
        .starts_with(&format!("[TBSC] Sự cố {number} chưa khắc phục")));

    // Resolved, then closed: everyone told hears of both, and nobody else.
    act(
        &collector,
        &admin,
        &id,
        "resolve",
        json!({"resolution": "Chặn địa chỉ tấn công"}),
    )
    .await;
    let resolution = smtp.wait_for(6, WAIT).await;
    let told = BTreeSet::from([
        "an@dakmil.daknong.gov.vn".to_owned(),
        "binh@dakmil.daknong.gov.vn".to_owned(),
        "truc@stttt.daknong.gov.vn".to_owned(),
    ]);
    assert_eq!(recipients(&resolution[3..]), told);
    assert!(resolution[3..].iter().all(|mail| mail
        .subject
        .as_deref()
        .unwrap()
        .contains("Đã khắc phục sự cố")));
    act(&collector, &admin, &id, "close", json!({"cause": "Dò mật khẩu", "resolution": "Chặn địa chỉ", "lessons": "Bật xác thực hai lớp"})).await;
    let closing = smtp.wait_for(9, WAIT).await;
    assert_eq!(recipients(&closing[6..]), told);
    for mail in &closing[6..] {
        let text = mail.text.as_deref().unwrap();
        assert!(
            text.contains("BÁO CÁO KẾT THÚC ỨNG CỨU SỰ CỐ")
                && text.contains("Bài học kinh nghiệm:")
                && text.contains("Bật xác thực hai lớp"),
            "{text}"
        );
    }
    webhook.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.messages().len(), 9, "nothing more, nothing twice");
    assert_eq!(webhook.requests().len(), 3);
    // Every notice is in the API, sent; the Sở's leadership was never involved.
    let notices: Value = collector
        .client()
        .get(format!(
            "{}/api/v1/notices?incident={id}",
            collector.base_url
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let notices = notices["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 12);
    assert!(
        notices.iter().all(|notice| notice["state"] == "sent"),
        "{notices:#?}"
    );
    let metrics = collector
        .client()
        .get(format!("{}/metrics", collector.base_url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cntt_collector_notices{state=\"sent\"} 12"),
        "{metrics}"
    );
    // The closing report as a document, referring to the initial report issued when the opening
    // notice went out.
    let report = collector
        .client()
        .get(format!(
            "{}/api/v1/incidents/{id}/report?form=closing",
            collector.base_url
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        report.contains(&format!("Sự cố {number}: "))
            && report.contains("Số báo cáo ban đầu: 01/BC-")
            && report.contains("BÁO CÁO KẾT THÚC"),
        "{report}"
    );
    // The Sở's leader asks for the daily digest: today's arrives at once (digest_at 00:00), once.
    let digest_contact = collector.dir.path().join("digest.csv");
    std::fs::write(&digest_contact, "unit_code,name,role,position,phone,email,webhook,digest\n67.S.TTTT,Phạm Thị Dung,so_leadership,Phó Giám đốc Sở,,dung@stttt.daknong.gov.vn,,yes\n").unwrap();
    cntt_collector::admin::contacts_import(&collector.store, &digest_contact)
        .await
        .unwrap();
    let mails = smtp.wait_for(10, WAIT).await;
    assert_eq!(mails[9].rcpt_tos, ["dung@stttt.daknong.gov.vn"]);
    let subject = mails[9].subject.as_deref().unwrap();
    assert!(
        subject.starts_with("[TBSC] Tổng hợp sự cố ngày ")
            && subject.ends_with(": 1 sự cố, 0 đang xảy ra"),
        "{subject}"
    );
    let text = mails[9].text.as_deref().unwrap();
    assert!(text.contains(&format!("- {number} | Thị trấn Đắk Mil | Sự cố an toàn thông tin | Tấn công dò mật khẩu vào cổng thông tin")), "{text}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(smtp.messages().len(), 10, "one digest a day");
    // `cntt-collector notify test --contact`: a sample notice now, on each of the contact's channels.
    let config = cntt_collector::config::Config::load(&collector.config_path).unwrap();
    let output = cntt_collector::admin::notify_test(
        &collector.store,
        &config.notify,
        "truc@stttt.daknong.gov.vn",
    )
    .await
    .expect("test notice sent");
    assert!(
        output.contains("sent a test notice to truc@stttt.daknong.gov.vn by email"),
        "{output}"
    );
    assert!(
        output.contains("sent a test notice to truc by webhook:truc"),
        "{output}"
    );
    let mails = smtp.wait_for(11, WAIT).await;
    assert_eq!(
        mails[10].subject.as_deref(),
        Some("[TBSC] Thư kiểm tra hệ thống thông báo sự cố")
    );
    let unknown =
        cntt_collector::admin::notify_test(&collector.store, &config.notify, "nobody@example.vn")
            .await;
    assert!(format!("{:#}", unknown.unwrap_err()).contains("contacts list"));
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_flapping_inside_the_grace_period_sends_nothing_and_a_district_outage_of_30_agents_one_notice_per_recipient(
) {
    let db = test_db(Db::Sqlite).await;
    let smtp = smtp_sink().await;
    let webhook = WebhookReceiver::start().await;
    // Agents found silent over about 1.5 s (heartbeats posted one after another): gather 2 s, and
    // a grace of 3 s, so one agent's silence waits 5 s, by when the district outage holds them.
    let inference = "[incidents]\nsilence_intervals = 2\nsilence_min = \"1s\"\nevaluate_every = \"100ms\"\ngather = \"2s\"\nsettle = \"2s\"\n";
    let (collector, _secrets) = collector_with_notices(&db, &smtp, &webhook, "3s", inference).await;
    collector.import_units("code,name,kind,parent_code,valid_from,valid_to,successor_codes,note\n24703,Xã Đắk Lao,commune,663,,,,\n24706,Xã Đắk Gằn,commune,663,,,,\n").await;

    // 30 agents in the district's three communes.
    let mut agents = Vec::new();
    for code in ["24700", "24703", "24706"] {
        for _ in 0..10 {
            agents.push(collector.enroll_agent(code).await);
        }
    }
    // A served portal flaps: its agent detects it down, then up again, inside the grace period.
    let flap = uuid::Uuid::new_v4();
    let phase = |phase: IncidentPhase| Incident {
        incident_id: flap,
        phase,
        kind: IncidentKind::Server,
        source: IncidentSource::Detected,
        severity: Severity::High,
        title: "Cổng thông tin điện tử không phản hồi".into(),
        description: String::new(),
        target: Some("portal".into()),
        started_at: time::OffsetDateTime::now_utc(),
        ended_at: (phase == IncidentPhase::Resolved).then(time::OffsetDateTime::now_utc),
        discovered_at: None,
        systems_affected: vec![],
        evidence: vec![],
        consequences: vec![],
    };
    let now = time::OffsetDateTime::now_utc();
    collector
        .ingest(
            &agents[0],
            vec![Event::new(
                1,
                now,
                &Payload::Incident(Box::new(phase(IncidentPhase::Opened))),
            )],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    collector
        .ingest(
            &agents[0],
            vec![Event::new(
                2,
                time::OffsetDateTime::now_utc(),
                &Payload::Incident(Box::new(phase(IncidentPhase::Resolved))),
            )],
        )
        .await;
    // Then every agent reports once and all fall silent at once.
    for (seq, agent) in agents.iter().enumerate() {
        collector
            .ingest(agent, vec![heartbeat_event(seq as u64 + 3, 1)])
            .await;
    }
    // The district's officer and leader hear of the outage, then (3 s on, the escalation rule)
    // the Sở's on-duty officer: one notice per recipient, none per agent or commune.
    smtp.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = smtp.messages();
    let summary: Vec<_> = mails.iter().map(|m| (&m.rcpt_tos, &m.subject)).collect();
    assert_eq!(mails.len(), 3, "one notice per recipient: {summary:#?}");
    assert_eq!(
        recipients(&mails),
        BTreeSet::from([
            "em@dakmil.daknong.gov.vn".into(),
            "binh@dakmil.daknong.gov.vn".into(),
            "truc@stttt.daknong.gov.vn".into()
        ])
    );
    for mail in &mails {
        let subject = mail.subject.as_deref().unwrap();
        assert!(
            subject.contains("Mất kết nối WAN: Huyện Đắk Mil (3 đơn vị)"),
            "{subject}"
        );
        let text = mail.text.as_deref().unwrap();
        assert!(
            text.contains("(gộp 30 sự cố liên quan, không thông báo riêng)"),
            "{text}"
        );
    }
    let flapped = collector
        .store
        .incident(&flap.to_string())
        .await
        .unwrap()
        .expect("the flap is stored");
    assert_eq!(flapped.state, "resolved");
    assert!(
        collector
            .store
            .notices_list(Some(&flap.to_string()), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "nobody told of the flap"
    );
    collector.stop().await;
}

fn spawn_process(collector: &TestCollector) -> e2e::ChildGuard {
    e2e::spawn_collector_process(
        env!("CARGO_BIN_EXE_collector-under-test"),
        &collector.config_path,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_survive_a_dead_smtp_server_and_killed_collectors_arriving_once_each() {
    let db = test_db(Db::Postgres).await;
    let mut smtp = smtp_sink().await;
    let webhook = WebhookReceiver::start().await;
    let (collector, _secrets) = collector_with_notices(&db, &smtp, &webhook, "1s", "").await;
    let admin = collector.api_token(Role::Admin, None).await;
    // The SMTP server goes down; ten incidents are filed while a second collector process is
    // killed with kill -9 after each has been written and before it could be sent.
    smtp.stop().await;
    let mut process = spawn_process(&collector);
    for round in 0..10 {
        let filed = file_incident(&collector, &admin, &format!("Sự cố thử số {round}")).await;
        let id = filed["id"].as_str().unwrap().to_owned();
        eventually(WAIT, "the notices written", || {
            let (store, id) = (collector.store.clone(), id.clone());
            async move {
                let notices = store.notices_list(Some(&id), None, 10).await.unwrap();
                (notices.len() >= 2).then_some(())
            }
        })
        .await;
        process.kill();
        process = spawn_process(&collector);
    }
    let admin_metrics = || collector.metrics(&admin);
    let metrics = admin_metrics().await;
    assert!(
        metrics.contains("cntt_collector_notify_channel_up{channel=\"email\"} 0"),
        "{metrics}"
    );
    assert!(
        !metrics.contains(
            "cntt_collector_notice_attempts_total{channel=\"email\",result=\"failed\"} 0"
        ),
        "{metrics}"
    );
    // Back up: every notice arrives, once (openings, and the escalations that came due meanwhile).
    smtp.start_again().await;
    // The last incident's escalation comes due 3 s after it was filed: let it be planned first.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let all = eventually(Duration::from_secs(60), "every notice sent", || {
        let store = collector.store.clone();
        async move {
            let all = store.notices_list(None, None, 1000).await.unwrap();
            all.iter()
                .all(|notice| notice.state == "sent")
                .then_some(all)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let emailed: BTreeSet<String> = all
        .iter()
        .filter(|notice| notice.channel == "email")
        .map(|notice| format!("<{}@cntt-collector>", notice.id))
        .collect();
    assert!(
        emailed.len() >= 20,
        "two openings per incident at least: {}",
        emailed.len()
    );
    let mails = smtp.wait_for(emailed.len(), Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails = if smtp.messages().len() > mails.len() {
        smtp.messages()
    } else {
        mails
    };
    let again = collector
        .store
        .notices_list(None, None, 1000)
        .await
        .unwrap();
    assert_eq!(again.len(), all.len(), "no notice planned after the check");
    let ids: Vec<String> = mails
        .iter()
        .map(|mail| mail.message_id.clone().unwrap_or_default())
        .collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), unique.len(), "no notice twice: {ids:#?}");
    assert_eq!(unique, emailed, "every email notice arrived");
    let metrics = admin_metrics().await;
    assert!(
        metrics.contains("cntt_collector_notify_channel_up{channel=\"email\"} 1"),
        "{metrics}"
    );
    process.kill();
    collector.stop().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_repeat_while_open_and_notices_held_by_a_dead_smtp_server_arrive_in_order() {
    let db = test_db(Db::Sqlite).await;
    let mut smtp = smtp_sink().await;
    let webhook = WebhookReceiver::start().await;
    let officer_only = "unit_code,kinds,min_severity,role,after\n,*,low,it_officer,0s\n";
    let (collector, _secrets) = collector_with(
        &db,
        &smtp,
        &webhook,
        &Setup {
            grace: "1s",
            reminder_every: "3s",
            alarm_after: "2s",
            rules: officer_only,
        },
        "",
    )
    .await;
    let admin = collector.api_token(Role::Admin, None).await;
    // Still open 3 s on: the officer told of it is reminded, once per interval.
    let filed = file_incident(&collector, &admin, "Máy chủ thư điện tử không phản hồi").await;
    let number = filed["number"].as_str().unwrap().to_owned();
    let mails = smtp.wait_for(2, WAIT).await;
    assert_eq!(mails[1].rcpt_tos, ["an@dakmil.daknong.gov.vn"]);
    let reminder = mails[1].subject.as_deref().unwrap();
    assert!(
        reminder.starts_with(&format!("[TBSC] Nhắc lại sự cố {number} (đã 3 giây)")),
        "{reminder}"
    );
    assert!(mails[1]
        .text
        .as_deref()
        .unwrap()
        .contains("NHẮC LẠI: SỰ CỐ VẪN ĐANG XẢY RA"));
    act(
        &collector,
        &admin,
        filed["id"].as_str().unwrap(),
        "resolve",
        json!({}),
    )
    .await;
    smtp.wait_for(3, WAIT).await;

    // The SMTP server goes down while three incidents are filed one after another; when it is
    // back, their notices arrive in the order they were written.
    smtp.stop().await;
    let mut numbers = Vec::new();
    for n in 1..=3 {
        let filed = file_incident(
            &collector,
            &admin,
            &format!("Sự cố thứ {n} khi máy chủ thư ngừng"),
        )
        .await;
        numbers.push(filed["number"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = collector
        .client()
        .get(format!("{}/metrics", collector.base_url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cntt_collector_notify_channel_up{channel=\"email\"} 0"),
        "{metrics}"
    );
    // Down for more than 2 s: the Sở's on-duty officer is told through the webhook.
    let alarm = webhook.wait_for(1, WAIT).await;
    let alarm = alarm[0].json();
    assert!(
        alarm["text"]
            .as_str()
            .unwrap()
            .starts_with("[TBSC] Kênh thông báo thư điện tử (email) không gửi được từ"),
        "{alarm}"
    );
    assert!(
        alarm["body"]
            .as_str()
            .unwrap()
            .contains("Lỗi gần nhất: sending by SMTP"),
        "{alarm}"
    );
    smtp.start_again().await;
    let openings = eventually(WAIT, "the three openings", || async {
        let openings: Vec<String> = smtp.messages()[3..]
            .iter()
            .filter_map(|mail| mail.subject.clone())
            .filter(|subject| subject.starts_with("[TBSC] Sự cố "))
            .collect();
        (openings.len() >= 3).then_some(openings)
    })
    .await;
    let expected: Vec<String> = numbers
        .iter()
        .enumerate()
        .map(|(i, number)| {
            format!(
                "[TBSC] Sự cố {number}: Sự cố thứ {} khi máy chủ thư ngừng",
                i + 1
            )
        })
        .collect();
    assert_eq!(
        openings[..3],
        expected[..],
        "in the order they were written: {openings:#?}"
    );
    collector.stop().await;
}

/// Issue 12, item 5: over 22 incidents of several kinds, each recipient hears of each incident in
/// order (opening, then resolution, then closing), including when the resolution and the closing
/// are planned in one round; and with the default routing rules, a critical security incident
/// reaches the Sở's on-duty officer once the grace period has passed, not 30 minutes later, even
/// when it was closed within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_incident_s_notices_arrive_in_order_and_security_reaches_the_so_at_once() {
    let db = test_db(Db::Sqlite).await;
    let smtp = smtp_sink().await;
    let webhook = WebhookReceiver::start().await;
    // No rules imported: the defaults apply.
    let setup = Setup {
        grace: "2s",
        reminder_every: "0s",
        alarm_after: "10m",
        rules: "",
    };
    let (collector, _secrets) = collector_with(&db, &smtp, &webhook, &setup, "").await;
    let admin = collector.api_token(Role::Admin, None).await;
    let file = |kind: &'static str, severity: &'static str, title: String| {
        let collector = &collector;
        let admin = admin.clone();
        async move {
            let response = collector
                .client()
                .post(format!("{}/api/v1/incidents", collector.base_url))
                .bearer_auth(&admin)
                .json(&json!({"unit": "24700", "kind": kind, "severity": severity, "title": title}))
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
    };
    let end = |id: String| {
        let collector = &collector;
        let admin = admin.clone();
        async move {
            act(
                collector,
                &admin,
                &id,
                "resolve",
                json!({"resolution": "Đã xử lý"}),
            )
            .await;
            act(collector, &admin, &id, "close", json!({"cause": "Nguyên nhân đã rõ", "resolution": "Đã xử lý", "lessons": "Rà soát định kỳ"})).await;
        }
    };

    // A critical defacement, still open: the Sở's on-duty officer hears of it right after the
    // grace period (2 s), by email and by the webhook.
    let filed_at = std::time::Instant::now();
    let (defacement, defacement_number) = file(
        "security",
        "critical",
        "Giao diện cổng thông tin bị thay đổi".to_owned(),
    )
    .await;
    let on_duty = "truc@stttt.daknong.gov.vn";
    eventually(
        WAIT,
        "the defacement's notice to the Sở's on-duty officer",
        || {
            let told = smtp.messages().iter().any(|mail| {
                mail.rcpt_tos == [on_duty]
                    && mail.subject.as_deref().is_some_and(|subject| {
                        subject.contains(&format!("Sự cố {defacement_number}:"))
                    })
            });
            async move { told.then_some(()) }
        },
    )
    .await;
    let reached_after = filed_at.elapsed();
    assert!(
        reached_after >= Duration::from_secs(2) && reached_after < Duration::from_secs(10),
        "the Sở's on-duty officer was told {reached_after:?} after filing"
    );

    // A security incident closed within the grace period is still reported once it has passed:
    // opening, resolution and closing, in that order, to the Sở too.
    let (quick, quick_number) = file(
        "security",
        "high",
        "Mã độc trên máy trạm kế toán, đã cô lập".to_owned(),
    )
    .await;
    end(quick.clone()).await;

    // Twenty more incidents of several kinds, each open past the grace period, then resolved and
    // closed at once (so both notices are often planned in one round).
    let kinds = ["wan", "server", "lan", "security", "internet"];
    let mut open = Vec::new();
    for index in 0..20 {
        let kind = kinds[index % kinds.len()];
        let severity = if index % 2 == 0 { "high" } else { "critical" };
        open.push(file(kind, severity, format!("Sự cố thử số {index}")).await);
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    end(defacement.clone()).await;
    for (id, _) in &open {
        end(id.clone()).await;
    }

    // Every incident ends with a closing notice to each person told of it; wait for them all.
    let numbers: Vec<String> = std::iter::once(defacement_number.clone())
        .chain(std::iter::once(quick_number.clone()))
        .chain(open.iter().map(|(_, number)| number.clone()))
        .collect();
    let complete = |mails: &[e2e::mail::ReceivedMail]| {
        numbers.iter().all(|number| {
            let of: Vec<_> = mails
                .iter()
                .filter(|mail| {
                    mail.subject.as_deref().is_some_and(|s| {
                        s.contains(&format!("{number}:")) || s.contains(&format!("{number} "))
                    })
                })
                .collect();
            let openings = of
                .iter()
                .filter(|mail| {
                    mail.subject
                        .as_deref()
                        .is_some_and(|s| s.contains(&format!("Sự cố {number}:")))
                })
                .count();
            let closings = of
                .iter()
                .filter(|mail| {
                    mail.subject
                        .as_deref()
                        .is_some_and(|s| s.starts_with("[TBSC] Kết thúc"))
                })
                .count();
            openings > 0 && closings == openings
        })
    };
    eventually(
        Duration::from_secs(60),
        "every incident's closing notices",
        || {
            let done = complete(&smtp.messages());
            async move { done.then_some(()) }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mails = smtp.messages();

    // For each recipient and incident, the kinds arrive in the order of the lifecycle, each once.
    let stage = |subject: &str| -> u8 {
        if subject.contains("Kết thúc xử lý") {
            3
        } else if subject.contains("Đã khắc phục") {
            2
        } else {
            1
        }
    };
    let mut checked = 0;
    for number in &numbers {
        let mut by_recipient: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
        for mail in &mails {
            let subject = mail.subject.as_deref().unwrap_or_default();
            if !(subject.contains(&format!("{number}:")) || subject.contains(&format!("{number} ")))
            {
                continue;
            }
            for to in &mail.rcpt_tos {
                by_recipient
                    .entry(to.clone())
                    .or_default()
                    .push(stage(subject));
            }
        }
        assert!(!by_recipient.is_empty(), "nobody heard of {number}");
        for (to, stages) in by_recipient {
            assert_eq!(
                stages,
                [1, 2, 3],
                "{number} to {to}: opening, resolution, closing"
            );
            checked += 1;
        }
    }
    assert!(checked >= 44, "only {checked} recipient sequences checked");
    // Both security incidents and the critical ones reached the Sở's on-duty officer.
    for number in [&defacement_number, &quick_number] {
        assert!(
            mails.iter().any(|mail| mail.rcpt_tos == [on_duty]
                && mail
                    .subject
                    .as_deref()
                    .is_some_and(|s| s.contains(&format!("Sự cố {number}:")))),
            "{number} reached the Sở's on-duty officer"
        );
    }
}
