//! The spool: how an officer's report reaches the outbox of a running agent.
//!
//! `cntt-agent incident report` runs beside the daemon, which holds the outbox. It writes the event
//! as one file into `spool/new/` (written to `spool/tmp/`, synced, then renamed, so a file in
//! `new/` is always whole), and the daemon moves spooled events into its outbox, oldest first,
//! deleting each file only after the append is durable. A crash between the two re-appends the
//! same event, whose id makes the collector store it once. A file that cannot be read is moved to
//! `spool/bad/`, never lost.
//!
//! A submission that fails (a full disk) removes its file from `spool/tmp/` and says so to the
//! officer; files left there by a crash are removed by the daemon once an hour old (issue 13, L2).
//! A spooled event the outbox cannot take stays in `spool/new/` and is tried again: it is not
//! counted as lost.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use cntt_common::wire::Event;

use crate::outbox::{Class, Outbox};

/// Age after which a file in `spool/tmp/` is a crash's leftover, not a submission in progress.
const STALE_TMP: Duration = Duration::from_secs(3600);

fn dir(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("spool").join(name)
}

/// Writes an event into the spool. Its `seq` is ignored: the outbox assigns one.
///
/// # Errors
///
/// When the spool folder cannot be written; the partly written file is then removed.
pub fn submit(state_dir: &Path, event: &Event) -> anyhow::Result<PathBuf> {
    let (tmp_dir, new_dir) = (dir(state_dir, "tmp"), dir(state_dir, "new"));
    for folder in [&tmp_dir, &new_dir] {
        fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    }
    // The time prefix keeps spooled events in the order they were filed.
    let name = format!("{:020}-{}.json", event.at.unix_timestamp_nanos(), event.id);
    let tmp = tmp_dir.join(&name);
    let bytes = serde_json::to_vec(event).context("encoding event")?;
    let write = || -> anyhow::Result<()> {
        let mut file =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(&bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))
    };
    if let Err(err) = write() {
        // On a full disk the file would stay behind empty (issue 13, L2).
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    let target = new_dir.join(&name);
    if let Err(err) = fs::rename(&tmp, &target) {
        let _ = fs::remove_file(&tmp);
        return Err(err).with_context(|| format!("moving {} into the spool", tmp.display()));
    }
    crate::platform::sync_dir(&new_dir)
        .with_context(|| format!("syncing {}", new_dir.display()))?;
    Ok(target)
}

/// Moves every spooled event into the outbox as a critical record; returns how many.
///
/// # Errors
///
/// When the spool cannot be listed or the outbox refuses a record; events not moved stay spooled.
pub fn drain(state_dir: &Path, outbox: &mut Outbox) -> anyhow::Result<usize> {
    remove_stale_tmp(state_dir, SystemTime::now());
    let new_dir = dir(state_dir, "new");
    let mut names: Vec<PathBuf> = match fs::read_dir(&new_dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err).with_context(|| format!("listing {}", new_dir.display())),
    };
    names.sort();
    let mut moved = 0;
    for path in names {
        let event = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Event>(&bytes).ok());
        let Some(event) = event else {
            let bad = dir(state_dir, "bad");
            fs::create_dir_all(&bad).with_context(|| format!("creating {}", bad.display()))?;
            let target = bad.join(path.file_name().unwrap_or_default());
            fs::rename(&path, &target)
                .with_context(|| format!("setting aside {}", path.display()))?;
            tracing::error!(path = %target.display(), "set aside an unreadable spooled event");
            continue;
        };
        // The file stays spooled if this fails, so the record is not lost: not counted as such.
        outbox
            .append_uncounted(Class::Critical, |seq| {
                serde_json::to_vec(&Event {
                    seq,
                    ..event.clone()
                })
                .expect("wire events always serialize")
            })
            .with_context(|| format!("recording spooled event {}", event.id))?;
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        moved += 1;
    }
    Ok(moved)
}

/// Removes files in `spool/tmp/` last changed before `now` minus [`STALE_TMP`]: submissions cut
/// short by a crash, never renamed into `spool/new/`. Failures are logged.
fn remove_stale_tmp(state_dir: &Path, now: SystemTime) {
    let tmp_dir = dir(state_dir, "tmp");
    let Ok(entries) = fs::read_dir(&tmp_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let modified = entry.metadata().and_then(|meta| meta.modified());
        let stale = modified.is_ok_and(|at| at + STALE_TMP < now);
        if !stale {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => tracing::info!(path = %path.display(), "removed a leftover spool file"),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "could not remove a leftover spool file")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cntt_common::wire::{Heartbeat, HostSnapshot, Payload};

    use super::*;
    use crate::outbox::OutboxConfig;

    fn event(n: i64) -> Event {
        let host = HostSnapshot {
            hostname: format!("h{n}"),
            os_name: String::new(),
            os_version: String::new(),
            kernel_version: String::new(),
            arch: String::new(),
            uptime_seconds: 0,
            cpu_count: 1,
            cpu_usage_percent: 0.0,
            load_average: None,
            memory_total_bytes: 0,
            memory_used_bytes: 0,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            disks: vec![],
            interfaces: vec![],
        };
        let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(n);
        Event::new(
            0,
            at,
            &Payload::Heartbeat(Heartbeat {
                interval_seconds: 1,
                host,
                outbox: None,
            }),
        )
    }

    #[test]
    fn spooled_events_reach_the_outbox_in_order_and_bad_files_are_kept_aside() {
        let state = tempfile::tempdir().unwrap();
        let (first, second) = (event(2), event(1));
        submit(state.path(), &first).unwrap();
        submit(state.path(), &second).unwrap();
        fs::write(
            dir(state.path(), "new").join("00-garbage.json"),
            b"{not json",
        )
        .unwrap();
        let (mut outbox, _) =
            Outbox::open(&state.path().join("outbox"), OutboxConfig::default()).unwrap();
        assert_eq!(drain(state.path(), &mut outbox).unwrap(), 2);
        let records = outbox.peek(10, 1 << 20).unwrap();
        let ids: Vec<uuid::Uuid> = records
            .iter()
            .map(|record| serde_json::from_slice::<Event>(&record.payload).unwrap().id)
            .collect();
        assert_eq!(ids, [second.id, first.id], "filed order, by event time");
        assert!(records.iter().all(|record| record.class == Class::Critical));
        assert_eq!(fs::read_dir(dir(state.path(), "new")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(dir(state.path(), "bad")).unwrap().count(), 1);
        assert_eq!(
            drain(state.path(), &mut outbox).unwrap(),
            0,
            "nothing twice"
        );
    }

    /// A submission that cannot be written leaves no empty file in `spool/tmp/` (issue 13, L2),
    /// and a leftover of a crash is removed once stale, while a fresh one (a submission in
    /// progress) is kept.
    #[test]
    fn failed_submissions_and_crash_leftovers_leave_no_spool_files() {
        let state = tempfile::tempdir().unwrap();
        let event = event(7);
        let name = format!("{:020}-{}.json", event.at.unix_timestamp_nanos(), event.id);
        // A folder where the target file should go makes the rename fail after the write.
        fs::create_dir_all(dir(state.path(), "new").join(&name).join("x")).unwrap();
        let err = submit(state.path(), &event).unwrap_err();
        assert!(format!("{err:#}").contains("moving"), "{err:#}");
        let tmp_files: Vec<_> = fs::read_dir(dir(state.path(), "tmp")).unwrap().collect();
        assert!(tmp_files.is_empty(), "{tmp_files:?}");

        // A folder where the temporary file should go makes the creation fail.
        fs::remove_dir_all(dir(state.path(), "new")).unwrap();
        fs::create_dir_all(dir(state.path(), "tmp").join(&name)).unwrap();
        let err = submit(state.path(), &event).unwrap_err();
        assert!(format!("{err:#}").contains("creating"), "{err:#}");
        fs::remove_dir(dir(state.path(), "tmp").join(&name)).unwrap();

        let leftover = dir(state.path(), "tmp").join("00-crashed.json");
        fs::write(&leftover, b"").unwrap();
        remove_stale_tmp(state.path(), SystemTime::now());
        assert!(
            leftover.exists(),
            "a fresh file may be a submission in progress"
        );
        remove_stale_tmp(state.path(), SystemTime::now() + STALE_TMP * 2);
        assert!(!leftover.exists(), "a stale leftover is removed");
        submit(state.path(), &event).expect("the spool works again");
    }
}
