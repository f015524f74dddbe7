//! An agent on a really full disk (issue 13, L2): its state folder on a small tmpfs that another
//! writer keeps full, a real `ENOSPC` for every file the agent writes. Nothing may be lost
//! uncounted: every seq the outbox handed out reached the collector, is still waiting, or is
//! counted as lost (or dropped), and the count reaches the collector in a heartbeat. `status`
//! shows the running agent's true counters meanwhile, and a failed `incident report` leaves no
//! file in `spool/tmp`.
//!
//! Mounting the tmpfs needs root (`scripts/test` runs as root); without it the test fails and
//! says so, it never skips.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cntt_agent::config::Config as AgentConfig;
use cntt_agent::outbox::{Outbox, OutboxConfig};
use cntt_agent::status::Board;
use cntt_common::wire::{Event, Heartbeat, Incident, IncidentKind, IncidentPhase, Payload};
use e2e::targets::{Behaviour, Service};
use e2e::{eventually, spawn_collector, sqlite_db, start_agent, TestAgent, TestCollector};

/// Size of the file system the agent's state folder lives on.
const DISK_SIZE: &str = "4m";

/// How long waits on the full disk may take.
const FULL_WAIT: Duration = Duration::from_secs(60);

/// A small tmpfs mounted on a temporary folder, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().expect("temporary folder");
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={DISK_SIZE},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            output.status.success(),
            "this test mounts a {DISK_SIZE} tmpfs to fill it, which needs root (scripts/test runs \
             as root; run `sudo cargo test -p e2e --test e2e full_disk`): mount said {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Another process filling the disk: writes until `ENOSPC`, and again as soon as room appears.
struct Filler {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    /// Turned true by the first write refused for lack of room.
    full: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Filler {
    fn start(path: PathBuf) -> Filler {
        let stop = Arc::new(AtomicBool::new(false));
        let full = Arc::new(AtomicBool::new(false));
        let mut file = std::fs::File::create(&path).expect("creating filler file");
        let thread = std::thread::spawn({
            let (stop, full) = (stop.clone(), full.clone());
            move || {
                let chunk = vec![0xaa_u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    if file.write_all(&chunk).is_err() {
                        full.store(true, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        });
        Filler {
            path,
            stop,
            full,
            thread: Some(thread),
        }
    }

    /// Waits until the disk is full.
    async fn wait_full(&self) {
        eventually(super::WAIT, "the disk full", || async {
            self.full.load(Ordering::Relaxed).then_some(())
        })
        .await;
    }

    /// Stops writing and frees the room.
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("filler thread did not panic");
        }
        std::fs::remove_file(&self.path).expect("removing filler file");
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The agent's config: state on `disk`, a TCP check every 20 ms, a heartbeat every 200 ms, and
/// small segments so that delivered records free room.
fn config(disk: &Path, portal: &Service) -> AgentConfig {
    let text = format!(
        "state_dir = \"{}\"\n[heartbeat]\ninterval = \"200ms\"\n\
         [uplink]\nlinger = \"10ms\"\nmax_backoff = \"200ms\"\n\
         [probes]\ninterval = \"20ms\"\ntimeout = \"200ms\"\n\
         [[target]]\nname = \"portal\"\nkind = \"server\"\ncheck = \"tcp\"\naddress = \"{}\"\n",
        disk.display(),
        portal.address()
    );
    let mut config = AgentConfig::parse(&text).expect("agent config is valid");
    config.outbox = OutboxConfig {
        max_bytes: 1 << 20,
        segment_bytes: 32 << 10,
        ..OutboxConfig::default()
    };
    config
}

/// Seqs of the agent's events the collector stored, and the largest `lost_total` its
/// heartbeats reported.
async fn collected(collector: &TestCollector, agent: &TestAgent) -> (Vec<i64>, u64) {
    let events = collector
        .store
        .events_of_agent(&agent.identity.agent_id.to_string())
        .await
        .expect("reading events");
    let lost_reported = events
        .iter()
        .filter(|event| event.kind == Heartbeat::KIND)
        .filter_map(|event| serde_json::from_str::<Heartbeat>(&event.data).ok()?.outbox)
        .map(|outbox| outbox.lost_total)
        .max()
        .unwrap_or(0);
    (
        events.iter().map(|event| event.seq).collect(),
        lost_reported,
    )
}

/// An officer's report, as `cntt-agent incident report` spools it.
fn officer_report() -> Event {
    let now = time::OffsetDateTime::now_utc();
    let incident = Incident {
        incident_id: uuid::Uuid::new_v4(),
        phase: IncidentPhase::Opened,
        kind: IncidentKind::Security,
        source: cntt_common::wire::IncidentSource::Manual,
        severity: cntt_common::wire::Severity::High,
        title: "Phát hiện mã độc trên máy kế toán".into(),
        description: String::new(),
        target: None,
        started_at: now,
        ended_at: None,
        discovered_at: Some(now),
        systems_affected: vec![],
        evidence: vec![],
        consequences: vec![],
    };
    Event::new(0, now, &Payload::Incident(Box::new(incident)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_nothing_uncounted() {
    let db = sqlite_db();
    let collector = spawn_collector(&db).await;
    let agent = collector.enroll_agent("663").await;
    let disk = SmallDisk::mount();
    for entry in std::fs::read_dir(agent.state.path()).expect("listing the enrolled state") {
        let path = entry.expect("listing the enrolled state").path();
        if path.is_file() {
            std::fs::copy(
                &path,
                disk.path().join(path.file_name().expect("a file name")),
            )
            .expect("copying the enrolled state onto the small disk");
        }
    }
    let portal = Service::start_new(Behaviour::Tcp).await;
    let running = start_agent(config(disk.path(), &portal));
    eventually(
        super::WAIT,
        "the agent delivering before the disk fills",
        || async { (collected(&collector, &agent).await.0.len() >= 30).then_some(()) },
    )
    .await;

    // The disk fills, and stays full while the collector stays reachable.
    let filler = Filler::start(disk.path().join("filler"));
    let mut saw_unsaved = false;
    let board = eventually(FULL_WAIT, "records lost on the full disk", || {
        let board = Board::load(disk.path()).expect("reading the status board");
        let outbox = board.outbox.clone().unwrap_or_default();
        saw_unsaved |= !outbox.state_saved;
        async move { (outbox.lost_total >= 100).then_some(board) }
    })
    .await;
    // The board is kept current on the full disk, and `status` shows its counters.
    let updated_at = board.updated_at.expect("the running agent dates its board");
    assert!(
        time::OffsetDateTime::now_utc() - updated_at < time::Duration::seconds(5),
        "the board is current on a full disk: written {updated_at}"
    );
    let lost_now = board.outbox.as_ref().expect("live counters").lost_total;
    let on_disk = Outbox::inspect(&disk.path().join("outbox")).expect("inspecting the outbox");
    let status = cntt_agent::report::status(&agent.identity, true, &on_disk, &board);
    assert!(
        status.contains(&format!("Đã mất       {lost_now} bản ghi")),
        "{status}"
    );
    assert!(!status.contains("Cảnh báo: tác tử đang chạy"), "{status}");

    // Room again: the acknowledgement is saved, and a heartbeat carries the lost count.
    filler.stop();
    let lost_total = eventually(FULL_WAIT, "the lost count reported in a heartbeat", || {
        let board = Board::load(disk.path()).expect("reading the status board");
        async {
            let outbox = board.outbox?;
            let (_, reported) = collected(&collector, &agent).await;
            let done = outbox.state_saved && outbox.lost_total > 0 && reported == outbox.lost_total;
            done.then_some(outbox.lost_total)
        }
    })
    .await;
    running.stop().await;

    // With the agent stopped (nothing frees room), the disk full again: an officer's report
    // that cannot be spooled fails, and leaves no empty file behind.
    let filler = Filler::start(disk.path().join("filler"));
    let spool_tmp = disk.path().join("spool").join("tmp");
    filler.wait_full().await;
    let err = cntt_agent::spool::submit(disk.path(), &officer_report())
        .expect_err("nothing can be spooled on a full disk");
    assert!(format!("{err:#}").contains("No space left"), "{err:#}");
    let left: Vec<_> = std::fs::read_dir(&spool_tmp)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "files left in spool/tmp: {left:?}");
    let spooled = std::fs::read_dir(disk.path().join("spool").join("new"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(spooled, 0, "nothing was spooled");
    filler.stop();

    // Every seq handed out is stored, waiting, or counted.
    let (outbox, _) = Outbox::open(&disk.path().join("outbox"), OutboxConfig::default())
        .expect("opening the outbox after the agent stopped");
    let stats = outbox.stats();
    assert_eq!(
        stats.lost_total, lost_total,
        "nothing lost after the disk had room"
    );
    let waiting: BTreeSet<u64> = outbox
        .peek(usize::MAX, usize::MAX)
        .expect("reading the outbox")
        .iter()
        .map(|record| record.seq)
        .collect();
    let (stored, _) = collected(&collector, &agent).await;
    let stored_set: BTreeSet<u64> = stored.iter().map(|&seq| seq as u64).collect();
    assert_eq!(stored_set.len(), stored.len(), "no event stored twice");
    let accounted: BTreeSet<u64> = stored_set.union(&waiting).copied().collect();
    let handed_out = stats.next_seq - 1;
    assert!(accounted.iter().all(|&seq| seq <= handed_out));
    assert_eq!(
        accounted.len() as u64 + stats.lost_total + stats.dropped_routine_total,
        handed_out,
        "stored or waiting {} + lost {} + dropped {} = seqs handed out {handed_out}",
        accounted.len(),
        stats.lost_total,
        stats.dropped_routine_total,
    );
    drop(outbox);
    let status = cntt_agent::report::status(
        &agent.identity,
        false,
        &Outbox::inspect(&disk.path().join("outbox")).expect("inspecting the outbox"),
        &Board::load(disk.path()).expect("reading the status board"),
    );
    assert!(
        status.contains(&format!("Đã mất       {lost_total} bản ghi")),
        "{status}"
    );
    eprintln!(
        "full disk: {} seqs, {} stored, {} waiting, {lost_total} lost and reported; an unsaved \
         acknowledgement was {}seen",
        handed_out,
        stored_set.len(),
        waiting.len(),
        if saw_unsaved { "" } else { "not " }
    );
    collector.stop().await;
}
